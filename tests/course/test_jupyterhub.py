"""The course's JupyterHub (classroom/), for real: a hub and its proxy on free ports, learners who log in, start
their own servers and run a server chapter's code at the same moment through their own kernels.

It uses classroom/jupyterhub_config_local.py (every learner runs as this test's one Unix user, each in a folder of
their own), because the test runs as one user on one machine; the configuration for a class differs only in its
authenticator (PAM) and spawner (one Unix account per learner). JupyterHub (`uv sync --extra classroom`) and
configurable-http-proxy (`npm ci --prefix classroom`) are installed on first use; the test is skipped, saying why,
only on a machine where they cannot be.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import pytest

from conftest import leftover_processes
from course import hub
from sandbox.lab.servers import claim_port

ROOT = Path(__file__).resolve().parents[2]
MARKER_VAR = "COURSE_JUPYTERHUB_TEST"  # every process the hub starts inherits it (the spawner passes it on)
LEARNERS = ("ada", "grace", "linus")
# A server chapter's first steps (chapters 01 and 03): the upstream, uvicorn, and a fan-out under load.
CHAPTER = """\
import json, os, time
from sandbox import lab, paths
began = time.time()
await lab.boot()
up = await lab.start_upstream(quiet=True)
server = await lab.start_server("uvicorn", quiet=True)
run = await lab.fire(server, "/views/dashboard/gather/", 8)
print("RESULT", json.dumps({"repo": str(paths.REPO), "data": str(lab.data_dir()), "ports": [up.port, server.port],
                            "requests": len(run.records), "errors": [str(r.error) for r in run.errors],
                            "began": began, "ended": time.time()}))
"""


def _install() -> str | None:
    """Install what the hub needs, once; the reason it cannot be, or None."""
    if importlib.util.find_spec("jupyterhub") is None:
        uv = shutil.which("uv")
        if not uv:
            return "JupyterHub is not installed and uv is not on PATH to install it (uv sync --extra classroom)"
        done = subprocess.run([uv, "sync", "--inexact", "--extra", "classroom"], cwd=ROOT, capture_output=True,
                              text=True, timeout=300)
        importlib.invalidate_caches()
        if done.returncode or importlib.util.find_spec("jupyterhub") is None:
            return f"JupyterHub could not be installed (uv sync --extra classroom): {done.stderr[-500:]}"
    if not hub.PROXY.exists():
        npm = shutil.which("npm")
        if not npm:
            return "configurable-http-proxy is not installed and npm is not on PATH (npm ci --prefix classroom)"
        done = subprocess.run([npm, "ci", "--prefix", str(ROOT / "classroom"), "--no-audit", "--no-fund"],
                              capture_output=True, text=True, timeout=300)
        if done.returncode or not hub.PROXY.exists():
            return f"configurable-http-proxy could not be installed (npm ci --prefix classroom): {done.stderr[-500:]}"
    return None


class Hub:
    """The hub on free loopback ports, with its database, homes and log in a temporary folder."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="course-hub-"))
        self.marker, self.password = uuid.uuid4().hex, secrets.token_urlsafe(12)
        self.port = claim_port(None)
        self.url = f"http://127.0.0.1:{self.port}"
        passed_on = {MARKER_VAR: self.marker, **{k: os.environ[k] for k in ("COURSE_TEST_RUN",
                                                                            "COURSE_REQUIRE_REAL_SERVICES")
                                                 if k in os.environ}}
        config = self.tmp / "jupyterhub_config.py"
        config.write_text(f"c = get_config()\nload_subconfig({str(ROOT / 'classroom/jupyterhub_config_local.py')!r})\n"
                          f"c.Spawner.environment = {passed_on!r}\n")
        env = {**os.environ, MARKER_VAR: self.marker, "COURSE_HUB_PASSWORD": self.password,
               "COURSE_HUB_DATA": str(self.tmp / "hub"), "COURSE_HUB_HOMES": str(self.tmp / "homes"),
               "COURSE_HUB_URL": self.url}
        self.log = (self.tmp / "hub.log").open("wb")
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "jupyterhub"), "-f", str(config),
             f"--JupyterHub.hub_port={claim_port(None)}",
             f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{claim_port(None)}"],
            cwd=self.tmp, env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)

    def log_tail(self) -> str:
        return (self.tmp / "hub.log").read_text(errors="replace")[-4000:]

    async def wait_up(self, http: httpx.AsyncClient, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"the hub exited ({self.proc.returncode}):\n{self.log_tail()}"
            try:
                if (await http.get(f"{self.url}/hub/api/")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
        raise AssertionError(f"the hub did not answer within {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM, as an instructor's Ctrl-C or systemd would: the hub stops its proxy and any server left."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        deadline = time.monotonic() + 20
        while leftover_processes(self.marker, MARKER_VAR) and time.monotonic() < deadline:
            time.sleep(0.25)


async def log_in(hub_: Hub, name: str) -> str:
    """Log in on the hub's login page (which creates the learner), then ask the REST API for a token with the
    same name and password."""
    async with httpx.AsyncClient(base_url=hub_.url, timeout=30) as browser:
        page = await browser.get("/hub/login")
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
        assert xsrf, page.text[:500]
        answer = await browser.post("/hub/login", data={"username": name, "password": hub_.password,
                                                        "_xsrf": xsrf.group(1)})
        assert answer.status_code in (200, 302), answer.text[:500]
    async with httpx.AsyncClient(base_url=hub_.url, timeout=30) as api:
        reply = await api.post(f"/hub/api/users/{name}/tokens",
                               json={"auth": {"username": name, "password": hub_.password}, "note": "the test"})
        assert reply.status_code == 201, reply.text
        return reply.json()["token"]


async def start_server(hub_: Hub, name: str, token: str) -> None:
    async with httpx.AsyncClient(base_url=hub_.url, timeout=30, headers={"Authorization": f"token {token}"}) as api:
        reply = await api.post(f"/hub/api/users/{name}/server")
        assert reply.status_code in (201, 202), reply.text
        async with asyncio.timeout(120):
            while not (await api.get(f"/hub/api/users/{name}")).json()["servers"].get("", {}).get("ready"):
                await asyncio.sleep(0.25)


async def run_chapter(hub_: Hub, name: str, token: str) -> dict:
    """Start a kernel through the learner's own JupyterLab (its REST API, behind the hub's proxy) and run CHAPTER
    over the kernel's WebSocket, as a notebook page would."""
    import websockets

    headers = {"Authorization": f"token {token}"}
    base = f"{hub_.url}/user/{name}"
    async with httpx.AsyncClient(base_url=base, timeout=60, headers=headers) as api:
        reply = await api.post("/api/sessions", json={"path": "notebooks/hub-run.ipynb", "type": "notebook",
                                                      "name": "hub-run.ipynb", "kernel": {"name": "python3"}})
        assert reply.status_code == 201, reply.text
        kernel = reply.json()["kernel"]["id"]
    msg_id = uuid.uuid4().hex
    request = {"header": {"msg_id": msg_id, "msg_type": "execute_request", "username": name, "session": msg_id,
                          "version": "5.3", "date": ""},
               "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
               "content": {"code": CHAPTER, "silent": False, "store_history": False, "user_expressions": {},
                           "allow_stdin": False, "stop_on_error": True}}
    printed, errors = [], []
    ws_url = base.replace("http://", "ws://") + f"/api/kernels/{kernel}/channels"
    async with websockets.connect(ws_url, additional_headers=headers, max_size=None) as channel:
        await channel.send(json.dumps(request))
        async with asyncio.timeout(180):
            while True:
                message = json.loads(await channel.recv())
                if message.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = message["msg_type"], message["content"]
                if kind == "stream":
                    printed.append(content["text"])
                elif kind == "error":
                    errors.append("\n".join(content["traceback"]))
                elif kind == "status" and content["execution_state"] == "idle":
                    break
    output = "".join(printed)
    assert not errors, f"{name}'s kernel failed:\n{errors[0][-3000:]}\n{output}"
    result = re.search(r"^RESULT (.+)$", output, re.M)
    assert result, f"{name}'s run printed no result:\n{output}"
    return json.loads(result.group(1))


def _learner_processes(marker: str, hub_pid: int) -> list:
    """The marked processes other than the hub and its proxy: learners' servers, kernels and their servers."""
    return [p for p in leftover_processes(marker, MARKER_VAR)
            if p.pid != hub_pid and "configurable-http-proxy" not in " ".join(p.info["cmdline"] or [])]


def test_a_learners_copy_is_made_once_without_anyones_data_and_owned_by_them(tmp_path):
    """The pre-spawn hook's copy (fast tier): the course without the environment or data, never made twice, and
    owned by the learner's account when the hub runs as root (here the `postgres` account stands in for one)."""
    import pwd

    copy = hub.copy_course(tmp_path / "ada")
    assert (copy / "notebooks" / "00-start-here.ipynb").is_file() and (copy / "sandbox" / "paths.py").is_file()
    assert not any((copy / name).exists() for name in (".venv", ".course-data", ".git", "site"))
    (copy / "notebooks" / "mine.txt").write_text("the learner's work")
    assert hub.copy_course(tmp_path / "ada") == copy and (copy / "notebooks" / "mine.txt").exists()
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            return
        owned = hub.copy_course(tmp_path / "grace", (account.pw_uid, account.pw_gid))
        assert {p.stat().st_uid for p in [owned, *owned.rglob("*")]} == {account.pw_uid}


@pytest.mark.slow  # a hub, its proxy, three JupyterLabs, three kernels and their servers
async def test_three_learners_run_a_server_chapter_at_once_each_in_their_own_kernel_copy_and_ports():
    reason = _install()
    if reason:
        pytest.skip(reason)
    hub_ = Hub()
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            await hub_.wait_up(http)
        tokens = dict(zip(LEARNERS, await asyncio.gather(*(log_in(hub_, n) for n in LEARNERS)), strict=True))
        await asyncio.gather(*(start_server(hub_, n, t) for n, t in tokens.items()))
        results = dict(zip(LEARNERS, await asyncio.gather(*(run_chapter(hub_, n, t) for n, t in tokens.items())),
                           strict=True))
        running = _learner_processes(hub_.marker, hub_.proc.pid)
        async with httpx.AsyncClient(base_url=hub_.url, timeout=60) as api:
            for name, token in tokens.items():
                reply = await api.delete(f"/hub/api/users/{name}/server",
                                         headers={"Authorization": f"token {token}"})
                assert reply.status_code in (202, 204), reply.text
            async def servers_left() -> list[str]:
                return [n for n, t in tokens.items() if (await api.get(
                    f"/hub/api/users/{n}", headers={"Authorization": f"token {t}"})).json()["servers"]]

            async with asyncio.timeout(60):
                while await servers_left():
                    await asyncio.sleep(0.25)
        deadline = time.monotonic() + 20
        while (left := _learner_processes(hub_.marker, hub_.proc.pid)) and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
    finally:
        hub_.stop()
        at_the_end = leftover_processes(hub_.marker, MARKER_VAR)
        log = hub_.log_tail()
        shutil.rmtree(hub_.tmp, ignore_errors=True)

    for name, result in results.items():
        copy = hub_.tmp / "homes" / name / hub.COPY_NAME
        assert result["repo"] == str(copy), f"{name}'s kernel imported another copy of the course: {result['repo']}"
        assert result["data"].startswith(str(copy / ".course-data")), result["data"]
        assert result["requests"] == 8 and not result["errors"], f"{name}: {result['errors']}"
    ports = [port for result in results.values() for port in result["ports"]]
    assert len(set(ports)) == len(ports) == 2 * len(LEARNERS), f"learners' servers shared a port: {results}"
    began, ended = max(r["began"] for r in results.values()), min(r["ended"] for r in results.values())
    assert began < ended, "the learners' chapters did not run at the same time"
    assert len(running) >= 4 * len(LEARNERS), f"each learner: JupyterLab, a kernel, uvicorn, the upstream: {running}"
    assert not left, f"processes left after the learners' servers stopped: {[p.info for p in left]}\n{log}"
    assert not at_the_end, f"processes left after the hub stopped: {[p.info for p in at_the_end]}\n{log}"
