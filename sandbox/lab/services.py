"""Private back-end services and workers started from a notebook: Redis, and task-queue workers.

They share the servers' lifecycle (see `sandbox.lab.servers`): loopback only, a free port, the log's tail on
failure, alive across an interrupt, gone with the kernel. When redis-server is missing, a lesson can fall back
to an emulated Redis (fakeredis) and says so in a banner; CI sets COURSE_REQUIRE_REAL_SERVICES=1, which turns
the fallback into an error.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil

from sandbox.lab.programs import install_hint
from sandbox.lab.servers import HOST, Server, ServerError, claim_port, launch


class ServiceMissing(ServerError):
    """A program the lesson needs is not installed; the message says how to install it."""


def _resp(*words: str) -> bytes:
    """One command in RESP, Redis's wire format (which the emulated server understands too)."""
    return f"*{len(words)}\r\n".encode() + b"".join(f"${len(w)}\r\n{w}\r\n".encode() for w in words)


async def redis_probe(server: Server, password: str | None = None) -> bool:
    """Ready when the server answers PING (after AUTH, when it has a password)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, server.port), 1)
    except (OSError, TimeoutError):
        return False
    try:
        if password:
            writer.write(_resp("AUTH", password))
            await writer.drain()
            if not (await asyncio.wait_for(reader.readline(), 1)).startswith(b"+OK"):
                return False
        writer.write(_resp("PING"))
        await writer.drain()
        return (await asyncio.wait_for(reader.readline(), 1)).startswith(b"+PONG")
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()


def require_real() -> bool:
    """CI's switch: never fall back to an emulation."""
    return os.environ.get("COURSE_REQUIRE_REAL_SERVICES") == "1"


async def start_redis(*, emulate_if_missing: bool = True, timeout: float = 15.0, quiet: bool = False) -> Server:
    """A private redis-server on a free loopback port, with nothing saved to disk and a password of its own.

    The password is in `server.url` (`redis://:<password>@127.0.0.1:<port>`), which the kernel hands to the
    processes it starts; another user of the machine who finds the port cannot use it. The printed line leaves it
    out.

    Without redis-server: an emulated Redis (fakeredis) when `emulate_if_missing`, announced in a banner; else,
    and always under COURSE_REQUIRE_REAL_SERVICES=1, a `ServiceMissing` error that says what to install.
    """
    port, password = claim_port(None), None
    binary = shutil.which("redis-server")
    hint = install_hint("redis-server", "redis", "redis-server")
    if binary:
        password = secrets.token_urlsafe(24)
        command = [f"exe:{binary}", "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no",
                   "--requirepass", password]
        kind = "redis"
    elif emulate_if_missing and not require_real():
        command, kind = ["sandbox.lab.fake_redis", str(port)], "redis (emulated)"
        print(f"EMULATED REDIS: redis-server is not installed, so this lesson uses fakeredis, a Python imitation.\n"
              f"It is enough to follow along; for the real thing install it: {hint}")
    else:
        raise ServiceMissing(f"redis-server is not installed. Install it: {hint}")
    server = await launch(kind, command, port=port, env=None, timeout=timeout, scheme="redis",
                          probe=lambda s: redis_probe(s, password))
    if password:
        server.address = f"redis://:{password}@{HOST}:{port}"
    if not quiet:
        print(f"{kind} ready on redis://{HOST}:{port} (pid {server.pid}{', password-protected' if password else ''}) "
              f"after {server.ready_after:.2f} s")
    return server


async def start_worker(kind: str, command: list[str], *, ready: str, env: dict[str, str] | None = None,
                       timeout: float = 30.0, grace: float = 5.0, quiet: bool = False) -> Server:
    """Start a task-queue worker (`command` is `module args...`, run as `python -m module args...`).

    ready: a regular expression; the worker is ready when its log matches it (workers have no port to probe).
    grace: seconds between SIGTERM and SIGKILL when it is stopped.
    """
    pattern = re.compile(ready)

    async def logged_ready(server: Server) -> bool:
        return bool(pattern.search(server.log_tail(400)))

    server = await launch(kind, command, port=None, env=env, timeout=timeout, probe=logged_ready)
    server.grace = grace
    if not quiet:
        print(f"{kind} worker ready (pid {server.pid}) after {server.ready_after:.2f} s")
    return server
