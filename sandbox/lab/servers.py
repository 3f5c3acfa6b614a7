"""Real servers started from a notebook cell: daphne, uvicorn, a threaded WSGI server, and the slow upstream.

What the runtime findings asked for: loopback only, on a free port (or a clear error for a busy one); ready
on any HTTP response; logs in a file, with the tail shown when a server fails; alive across a kernel
interrupt, gone with the kernel (see `sandbox.lab.child`), and never given DJANGO_ALLOW_ASYNC_UNSAFE.
"""

from __future__ import annotations

import asyncio
import atexit
import errno
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from sandbox.lab.boot import data_dir
from sandbox.paths import REPO

HOST = "127.0.0.1"
ASGI_APP = "sandbox.asgi:application"
KINDS = ("daphne", "uvicorn", "hypercorn", "granian", "wsgi", "upstream")


class ServerError(RuntimeError):
    """A server did not start; the message carries the end of its log."""


class PortInUse(ServerError):
    """The port asked for is taken."""


def _command(kind: str, port: int, threads: int, app: str | None) -> list[str]:
    if kind == "daphne":
        return ["daphne", "-b", HOST, "-p", str(port), app or ASGI_APP]
    if kind == "uvicorn":
        return ["uvicorn", app or ASGI_APP, "--host", HOST, "--port", str(port), "--no-access-log"]
    if kind == "hypercorn":
        return ["hypercorn", "-b", f"{HOST}:{port}", "-w", "1", app or ASGI_APP]
    if kind == "granian":  # asginl: ASGI without the lifespan protocol, which Django does not speak
        return ["granian", "--interface", "asginl", "--host", HOST, "--port", str(port), "--workers", "1",
                "--no-ws", "--log-level", "warning", app or ASGI_APP]
    if kind == "wsgi":  # gunicorn, one process, a fixed pool of threads: the classic WSGI limit
        return ["gunicorn", "-b", f"{HOST}:{port}", "-w", "1", "-k", "gthread", "--threads", str(threads),
                "--graceful-timeout", "2", app or "sandbox.wsgi:application"]
    if kind == "upstream":  # its slow calls (some hang for seconds on purpose) need not finish when it stops
        return ["uvicorn", "sandbox.upstream:app", "--host", HOST, "--port", str(port), "--no-access-log",
                "--timeout-graceful-shutdown", "1"]
    raise ValueError(f"unknown server kind {kind!r}: choose {', '.join(KINDS)}")


PORT_ATTEMPTS = 3
LOST_PORT = re.compile(r"address already in use|errno 98|connection in use", re.I)


def claim_port(port: int | None) -> int:
    """A free loopback port, or a clear error when the one asked for is taken."""
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port or 0))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(f"port {port} on {HOST} is already in use (by another program, or a server from "
                                "an earlier run). Stop that one, or leave out port= to get a free port.") from None
            raise
        return sock.getsockname()[1]


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The kernel's environment for a child, minus the unsafe escape hatch and with the server settings."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(DJANGO_SETTINGS_MODULE="sandbox.settings_server", SANDBOX_DATA_DIR=str(data_dir()),
               PYTHONUNBUFFERED="1", COURSE_LAB_CHILD=str(os.getpid()))
    env.update(extra or {})
    return env


@dataclass
class Usage:
    threads: int
    rss_mb: float


@dataclass(eq=False)
class Server:
    """A process started from the kernel: a server (with a port) or a worker (port None)."""

    kind: str
    port: int | None
    proc: subprocess.Popen[bytes]
    log_path: Path
    scheme: str = "http"
    grace: float = 5.0  # seconds between SIGTERM and SIGKILL (Django-Q2's cluster ignores SIGTERM for longer)
    started: float = field(default_factory=time.perf_counter)
    ready_after: float | None = None
    cleanup: list[Callable[[], object]] = field(default_factory=list)  # run after the process stops (a cluster's files)
    address: str | None = None  # a URL with more than scheme, host and port (PostgreSQL's: user and database)

    @property
    def url(self) -> str:
        return self.address or f"{self.scheme}://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def listens(self) -> bool:
        """Whether this server's own process tree holds its port: another kernel's server may answer on a port
        that ours lost to it in a race."""
        import psutil

        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
            return any(c.laddr and c.laddr.port == self.port and c.status == psutil.CONN_LISTEN
                       for p in procs for c in p.net_connections(kind="inet"))
        except psutil.Error:
            return False

    def usage(self) -> Usage:
        """Threads and resident memory of the server's whole process tree (gunicorn forks a worker)."""
        import psutil

        root = psutil.Process(self.pid)
        procs = [root, *root.children(recursive=True)]
        return Usage(sum(p.num_threads() for p in procs), sum(p.memory_info().rss for p in procs) / 2**20)

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM, wait, then SIGKILL. uvicorn's -15 after SIGTERM is a clean stop."""
        if self.alive():
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(self.grace if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(5)
        while self.cleanup:
            self.cleanup.pop()()
        if self in RUNNING:
            RUNNING.remove(self)
        if self.kind == "upstream":
            _forget_upstream(self.url)
        return self.proc.returncode

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)  # the server leads its own session: this reaches its workers too
        except ProcessLookupError:
            pass

    def __repr__(self) -> str:
        state = "running" if self.alive() else f"stopped ({self.proc.returncode})"
        shown = re.sub(r"//([^:@/]*):[^@/]*@", r"//\1@", self.url).replace("//@", "//")  # never a password
        return f"<{self.kind} server on {shown}, pid {self.pid}, {state}>"


RUNNING: list[Server] = []
Probe = Callable[[Server], Awaitable[bool]]  # says whether a starting process is ready


def stop_all(quiet: bool = True) -> int:
    """Stop every server this kernel started, newest first (a server before the database it uses); safe to call
    twice. Returns how many were stopped."""
    stopped = 0
    for server in list(reversed(RUNNING)):
        server.stop()
        stopped += 1
    if not quiet:
        print(f"stopped {stopped} server(s)")
    return stopped


atexit.register(stop_all)


def spawn(module_args: list[str], log_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start `python -m <module> ...` (or `exe:<program> ...`) under `sandbox.lab.child`, in a new session,
    logging to a file."""
    tie = "pdeathsig" if threading.current_thread() is threading.main_thread() else "watchdog"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "sandbox.lab.child", str(os.getpid()), tie, *module_args],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, env=env, cwd=REPO,
        )


async def http_probe(server: Server) -> bool:
    """Ready means any HTTP response at all (a lesson may serve a 500 on purpose) from a server that holds its port
    itself."""
    if not server.listens():
        return False
    try:
        async with httpx.AsyncClient(timeout=1.0) as probe:
            await probe.get(server.url + "/")
        return True
    except httpx.TransportError:
        return False


async def wait_ready(server: Server, timeout: float, probe: Probe) -> None:
    """Poll `probe(server)` until it says ready; on an early exit or a timeout, fail with the log's tail."""
    deadline = time.perf_counter() + timeout
    while True:
        if not server.alive():
            raise ServerError(f"{server.kind} exited with code {server.proc.returncode} before it was ready. "
                              f"Last lines of {server.log_path.name}:\n{server.log_tail()}")
        if await probe(server):
            server.ready_after = time.perf_counter() - server.started
            return
        if time.perf_counter() > deadline:
            server.stop()
            raise ServerError(f"{server.kind} was not ready after {timeout} s. "
                              f"Last lines of {server.log_path.name}:\n{server.log_tail()}")
        await asyncio.sleep(0.05)


async def launch(kind: str, command: list[str], *, port: int | None, env: dict[str, str] | None, timeout: float,
                 probe: Probe, scheme: str = "http") -> Server:
    """Spawn `command` tied to this kernel, register it for `stop_all`, and wait until `probe` says ready."""
    slug = re.sub(r"[^a-z0-9]+", "-", kind.lower()).strip("-")
    log_path = data_dir() / "logs" / f"{slug}-{port or 'worker'}-{time.monotonic_ns()}.log"
    server = Server(kind, port, spawn(command, log_path, child_env(env)), log_path, scheme)
    RUNNING.append(server)
    await wait_ready(server, timeout, probe)
    return server


async def start_server(kind: str = "daphne", *, threads: int = 4, port: int | None = None, app: str | None = None,
                       env: dict[str, str] | None = None, timeout: float = 20.0, quiet: bool = False) -> Server:
    """Start a real server on 127.0.0.1 and wait until it answers.

    kind: "daphne", "uvicorn", "hypercorn" or "granian" (ASGI, one process each), "wsgi" (gunicorn, one process
    with `threads` threads), "upstream" (the slow API).
    """
    for attempt in range(PORT_ATTEMPTS):
        chosen = claim_port(port)
        try:
            server = await launch(kind, _command(kind, chosen, threads, app), port=chosen, env=env, timeout=timeout,
                                  probe=http_probe)
            break
        except ServerError as exc:  # a free port another process took before ours bound it: a new port, not a failure
            if port is not None or attempt == PORT_ATTEMPTS - 1 or not LOST_PORT.search(str(exc)):
                raise
    if not quiet:
        extra = f", {threads} thread{'s' * (threads != 1)}" if kind == "wsgi" else ""
        print(f"{kind} ready on {server.url} (pid {server.pid}{extra}) after {server.ready_after:.2f} s")
    return server


def _point_at_upstream(url: str) -> None:
    """The fan-out views read settings.UPSTREAM_URL; servers started later read the environment."""
    from django.conf import settings

    if url:
        os.environ["SANDBOX_UPSTREAM_URL"] = url
    else:
        os.environ.pop("SANDBOX_UPSTREAM_URL", None)
    settings.UPSTREAM_URL = url


def _forget_upstream(url: str) -> None:
    if os.environ.get("SANDBOX_UPSTREAM_URL") == url:
        _point_at_upstream("")


async def start_upstream(*, quiet: bool = False, timeout: float = 20.0) -> Server:
    """Start the slow upstream API and point the sandbox (kernel and later servers) at it."""
    server = await start_server("upstream", quiet=quiet, timeout=timeout)
    _point_at_upstream(server.url)
    return server
