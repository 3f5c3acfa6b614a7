"""Private Redis and task-queue workers: the same lifecycle guarantees as the servers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import psutil
import pytest
from jupyter_client.manager import start_new_kernel

from sandbox.lab import services
from tests.lab.test_servers import _gone, _run_cell
from tests.markers import needs_redis

pytestmark = pytest.mark.slow  # Redis and workers


async def test_redis_answers_and_stops(lab):
    import redis.asyncio as aioredis

    server = await lab.start_redis(quiet=True)
    client = aioredis.from_url(server.url)
    try:
        await client.set("course", "async")
        value = await client.get("course")
    finally:
        await client.aclose()
        server.stop()
    assert value == b"async" and not server.alive()
    assert server.kind == ("redis" if services.shutil.which("redis-server") else "redis (emulated)")


@needs_redis
async def test_a_real_redis_answers_only_those_who_have_its_password(lab, capsys):
    """Learners sharing a machine each get a Redis on a loopback port; another user who finds the port is refused."""
    import redis.asyncio as aioredis
    from redis.exceptions import AuthenticationError

    server = await lab.start_redis()
    printed = capsys.readouterr().out
    stranger = aioredis.Redis(host="127.0.0.1", port=server.port)
    guesser = aioredis.from_url(f"redis://:wrong@127.0.0.1:{server.port}")
    try:
        with pytest.raises(AuthenticationError):
            await stranger.ping()
        with pytest.raises(AuthenticationError):
            await guesser.ping()
        assert await services.redis_probe(server) is False, "a PING without AUTH must not count as ready"
    finally:
        await stranger.aclose()
        await guesser.aclose()
        server.stop()
    password = server.url.split(":", 2)[2].split("@")[0]
    assert len(password) >= 24 and password not in printed and "password-protected" in printed


async def test_without_redis_server_a_lesson_is_told_what_to_install(lab, monkeypatch, capsys):
    monkeypatch.setattr(services.shutil, "which", lambda name: None)
    monkeypatch.setenv("COURSE_REQUIRE_REAL_SERVICES", "1")
    with pytest.raises(lab.ServiceMissing, match="redis-server is not installed. Install it: "):
        await lab.start_redis()
    monkeypatch.delenv("COURSE_REQUIRE_REAL_SERVICES")
    server = await lab.start_redis(quiet=True)
    try:
        assert server.kind == "redis (emulated)" and await services.redis_probe(server)
        assert capsys.readouterr().out.startswith("EMULATED REDIS: redis-server is not installed")
    finally:
        server.stop()


def assert_gone_with_its_kernel(start: str, program: str) -> None:
    """Start a service from a cell of a real kernel (`start` assigns `service`), SIGKILL only the kernel's
    process, and require the service's whole process tree to be gone."""
    env = {**os.environ, "JPY_SESSION_NAME": f"{program}-lifecycle.ipynb"}
    km, kc = start_new_kernel(kernel_name="python3", env=env, stderr=subprocess.DEVNULL)
    try:
        pid = int(_run_cell(kc, f"from sandbox import lab\nawait lab.boot()\n{start}\nprint(service.pid)"))
        tree = [p.pid for p in psutil.Process(pid).children(recursive=True)]
        assert any(program in psutil.Process(p).name() for p in tree), f"no {program} process under {pid}"
        os.kill(km.provisioner.process.pid, signal.SIGKILL)
        assert _gone(pid) and all(_gone(p) for p in tree), f"{program} outlived its kernel"
    finally:
        kc.stop_channels()
        if km.is_alive():
            km.shutdown_kernel(now=True)


@needs_redis
def test_a_real_redis_goes_when_only_the_kernel_process_is_killed():
    assert_gone_with_its_kernel("service = await lab.start_redis(quiet=True)", "redis-server")


async def test_a_worker_that_ignores_sigterm_is_killed_after_its_grace(lab):
    code = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('worker up', flush=True); time.sleep(60)")
    worker = await lab.start_worker("stubborn", [f"exe:{sys.executable}", "-c", code], ready="worker up",
                                    grace=1.0, quiet=True)
    code = worker.stop()
    assert code is not None and not worker.alive()
    assert _gone(worker.pid)


async def test_a_worker_that_never_gets_ready_fails_with_its_log(lab):
    with pytest.raises(lab.ServerError, match=r"(?s)not ready after 2 s.*still booting"):
        await lab.start_worker("slow", [f"exe:{sys.executable}", "-c", "print('still booting', flush=True); "
                                        "import time; time.sleep(30)"], ready="never", timeout=2, quiet=True)
