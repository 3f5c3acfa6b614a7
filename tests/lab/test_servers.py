"""Servers started from a cell: the guarantees of DESIGN section 7, each one tried for real."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time

import httpx
import psutil
import pytest
from jupyter_client.manager import start_new_kernel

from sandbox.lab.servers import RUNNING

pytestmark = pytest.mark.slow  # kernels and servers


def _gone(pid: int, timeout: float = 15.0) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def _reply_to(kc, msg_id: str, timeout: float = 20) -> dict:
    """The shell reply to one request (skipping others, such as extra kernel_info replies from start-up)."""
    while (reply := kc.get_shell_msg(timeout=timeout))["parent_header"].get("msg_id") != msg_id:
        pass
    return reply


def _run_cell(kc, code: str, timeout: float = 60) -> str:
    """Execute code in the kernel; return its stdout (fails on an error reply)."""
    msg_id = kc.execute(code)
    out = []
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            raise AssertionError(f"{msg['content']['ename']}: {msg['content']['evalue']}")
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            _reply_to(kc, msg_id, timeout)
            return "".join(out)


@pytest.fixture
def kernel_with_server():
    """A real kernel (as JupyterLab or nbval starts one) that has started a uvicorn server."""
    env = {**os.environ, "JPY_SESSION_NAME": "lifecycle.ipynb"}
    km, kc = start_new_kernel(kernel_name="python3", env=env, stderr=subprocess.DEVNULL)
    out = _run_cell(kc, "from sandbox import lab\nawait lab.boot()\n"
                        "srv = await lab.start_server('uvicorn', quiet=True)\nprint(srv.pid, srv.url)")
    pid, url = out.split()
    yield km, kc, int(pid), url
    kc.stop_channels()
    if km.is_alive():
        km.shutdown_kernel(now=True)
    if psutil.pid_exists(int(pid)):
        os.killpg(int(pid), signal.SIGKILL)


def test_server_survives_an_interrupt_and_goes_with_a_graceful_shutdown(kernel_with_server):
    km, kc, pid, url = kernel_with_server
    msg_id = kc.execute("import time\nprint('sleeping', flush=True)\ntime.sleep(30)")
    while not (msg := kc.get_iopub_msg(timeout=20))["msg_type"] == "stream":  # the cell is really running
        pass
    assert msg["parent_header"]["msg_id"] == msg_id
    # Let the kernel finish sending that output and enter the sleep. Interrupted at once, the kernel once gave no
    # reply within 20 s (1 run in 18, Python 3.13, during a full run); the likeliest moment for that is a SIGINT
    # that lands while its main thread still waits for the IOPub thread to send the output.
    time.sleep(0.5)
    km.interrupt_kernel()
    assert _reply_to(kc, msg_id)["content"]["ename"] == "KeyboardInterrupt"
    assert httpx.get(url + "/whoami/", timeout=5).status_code == 200, "the interrupt reached the server"
    km.shutdown_kernel(now=False)
    assert _gone(pid), "server outlived a graceful kernel shutdown"


def test_server_goes_with_a_kernel_restart(kernel_with_server):
    km, kc, pid, url = kernel_with_server
    km.restart_kernel(now=True)
    assert _gone(pid), "server outlived a kernel restart"


def test_server_goes_with_nbval_teardown(kernel_with_server):
    km, kc, pid, url = kernel_with_server
    km.shutdown_kernel(now=True)  # what nbval does after the last cell
    assert _gone(pid), "server outlived nbval's teardown"


def test_server_goes_when_only_the_kernel_process_is_killed(kernel_with_server):
    km, kc, pid, url = kernel_with_server
    os.kill(km.provisioner.process.pid, signal.SIGKILL)  # a crash or the OOM killer: no cleanup code runs
    assert _gone(pid), "server outlived a SIGKILL of the kernel process"


async def test_a_busy_port_gets_a_clear_error(lab):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(lab.PortInUse, match=f"port {port} on 127.0.0.1 is already in use"):
            await lab.start_server("uvicorn", port=port)


async def test_a_port_lost_to_another_kernel_is_retried_not_reported(lab, monkeypatch):
    """Two kernels may claim the same free port at the same moment: the one whose server cannot bind it starts on a
    new port, and never takes the winner's answers for its own readiness."""
    from sandbox.lab import servers

    winner = await lab.start_server("uvicorn", quiet=True)  # another learner's server, on the port we will lose
    claims = iter([winner.port])
    monkeypatch.setattr(servers, "claim_port", lambda port: next(claims, None) or _free_port())
    try:
        server = await lab.start_server("uvicorn", quiet=True)
        lost, ours, listens, theirs = winner.port, server.port, server.listens(), winner.listens()
    finally:
        lab.stop_all()

    assert ours != lost and listens and theirs


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_a_server_that_fails_shows_its_log_tail(lab):
    with pytest.raises(lab.ServerError, match=r"(?s)exited with code \d+ before it was ready.*no_such_module"):
        await lab.start_server("uvicorn", app="no_such_module:app", quiet=True)


async def test_servers_never_inherit_the_unsafe_escape_hatch(lab):
    """With the variable set in the kernel, the broken view must still fail on the server."""
    with lab.UNSAFE_allow_sync_orm_in_event_loop():
        server = await lab.start_server("daphne", quiet=True)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as c:
            status, log = (await c.get("/catalog/count-wrong/")).status_code, server.log_tail()
    finally:
        server.stop()

    assert status == 500 and "SynchronousOnlyOperation" in log


async def test_stop_is_clean_and_frees_the_port(lab):
    server = await lab.start_server("uvicorn", quiet=True)
    code = server.stop()
    assert code in (0, -signal.SIGTERM), server.log_tail()  # uvicorn re-raises SIGTERM after a clean stop
    assert not server.alive() and server not in RUNNING
    with socket.socket() as again:
        again.bind(("127.0.0.1", server.port))


async def test_wsgi_server_has_the_thread_count_asked_for(lab):
    server = await lab.start_server("wsgi", threads=3, quiet=True)
    try:
        result = await lab.fire(server, "/wait/sync/?s=0.3", 6)
    finally:
        server.stop()

    assert len(result.threads) == 3 and not result.errors
    assert re.fullmatch(r"/wait/sync/\?s=0\.3: 6 requests in .*", result.summary())
