"""The course as a learner meets it: JupyterLab in Debian's Chromium, "Run All" clicked through the UI.

A headless JupyterLab on a free loopback port serves the repository; Playwright drives the system's Chromium
(never `playwright install`) to open the start-here notebook and a chapter that starts real servers, runs
`notebook:run-all-cells` in each, and waits for every code cell to get its execution count. Like JupyterLab's
own Run All, an error in a cell not tagged `raises-exception` stops the run, so a cell left unexecuted fails
the test as surely as an error output does.

Nothing is saved: autosave is off through a private settings directory, every Jupyter directory points into
`tmp_path`, and the test checks that `git status` is unchanged and that the server and its kernels are gone.
Without chromium the test is skipped, except under COURSE_REQUIRE_REAL_SERVICES=1 (CI), where it must run.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from conftest import git_status, leftover_processes
from sandbox.lab import services
from sandbox.lab.servers import claim_port

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium")
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NOTEBOOKS = ["notebooks/00-start-here.ipynb", "notebooks/05-async-middleware.ipynb"]
MARKER_VAR = "COURSE_JUPYTERLAB_BROWSER_TEST"  # every process the test's JupyterLab starts inherits it
RUN_DEADLINE = 120.0  # seconds for one notebook's Run All

pytestmark = pytest.mark.skipif(
    not CHROMIUM and not services.require_real(),
    reason="needs Debian's chromium (apt-get install chromium); CI installs it and never skips this")

# JavaScript run in the page; `jupyterapp` is exposed by --LabApp.expose_app_in_browser.
FIND_PANEL = """path => {
    for (const w of window.jupyterapp.shell.widgets('main')) {
        if (w.context && w.context.path === path && w.content && w.content.model) { return w; }
    }
    return null;
}"""
PANEL_READY = f"""path => {{
    const w = ({FIND_PANEL})(path);
    const kernel = w && w.sessionContext.session && w.sessionContext.session.kernel;
    return !!(w && w.context.isReady && kernel && kernel.status === 'idle'
              && w.node.querySelector('.jp-Notebook .jp-CodeCell'));
}}"""
RUN_ALL = f"""path => {{
    const w = ({FIND_PANEL})(path);
    window.jupyterapp.shell.activateById(w.id);
    void window.jupyterapp.commands.execute('notebook:run-all-cells');  // resolves when the run ends: poll instead
}}"""
STATE = f"""path => {{
    const w = ({FIND_PANEL})(path);
    const kernel = w.sessionContext.session && w.sessionContext.session.kernel;
    const prompts = Array.from(w.node.querySelectorAll('.jp-CodeCell .jp-InputPrompt'))
        .map(p => p.textContent.trim());
    const errors = [];
    const cells = w.content.model.cells;
    let code = 0;
    for (let i = 0; i < cells.length; i++) {{
        const cell = cells.get(i);
        if (cell.type !== 'code') {{ continue; }}
        for (let j = 0; j < cell.outputs.length; j++) {{
            const out = cell.outputs.get(j).toJSON();
            if (out.output_type === 'error') {{ errors.push([code, out.ename + ': ' + out.evalue]); }}
        }}
        code++;
    }}
    return {{prompts, errors, kernel: kernel ? kernel.status : 'none', codeCells: code}};
}}"""


def _git_status() -> str:
    """The status of the notebook folders JupyterLab serves and could save into; the rest of the tree is covered
    by the session-end hygiene check in conftest.py."""
    return git_status("notebooks", "solutions")


def _marked_processes(marker: str) -> list:
    return leftover_processes(marker, MARKER_VAR)


def _may_fail(path: str) -> list[bool]:
    """For each code cell on disk, in order: is it tagged `raises-exception`?"""
    cells = json.loads((ROOT / path).read_text())["cells"]
    return ["raises-exception" in c.get("metadata", {}).get("tags", []) for c in cells if c["cell_type"] == "code"]


def _start_jupyterlab(tmp_path: Path, port: int, token: str, marker: str) -> tuple[subprocess.Popen, Path]:
    settings = tmp_path / "lab-settings"
    for plugin, values in {"docmanager-extension/plugin": {"autosave": False},
                           "notebook-extension/tracker": {"windowingMode": "none"}}.items():
        file = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(json.dumps(values))
    env = {**os.environ, MARKER_VAR: marker, "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_DATA_DIR": str(tmp_path / "data"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    env.pop("JPY_SESSION_NAME", None)  # JupyterLab sets it per notebook for its kernels
    log = tmp_path / "jupyterlab.log"
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
               f"--ServerApp.token={token}", "--ServerApp.password=", "--ServerApp.open_browser=False",
               "--ServerApp.allow_root=True", f"--ServerApp.root_dir={ROOT}",
               "--ServerApp.disable_check_xsrf=False",
               f"--FileCheckpoints.checkpoint_dir={tmp_path / 'checkpoints'}",  # no .ipynb_checkpoints/ in the repo
               f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
               f"--LanguageServerManager.virtual_documents_dir={tmp_path / 'virtual_documents'}",
               "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LabApp.expose_app_in_browser=True"]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    return proc, log


def _wait_until_up(proc: subprocess.Popen, base: str, token: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"JupyterLab exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"JupyterLab did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


async def _run_all(page, path: str) -> dict:
    """Open `path`, wait for an idle kernel, Run All, and wait until the run is over; return the final state."""
    await page.evaluate("async path => { await window.jupyterapp.commands.execute('docmanager:open', {path}); }", path)
    await page.wait_for_function(PANEL_READY, arg=path, timeout=60_000, polling=250)
    await page.evaluate(RUN_ALL, path)
    deadline, previous, stable, started = time.monotonic() + RUN_DEADLINE, None, 0, False
    while True:
        state = await page.evaluate(STATE, path)
        prompts = state["prompts"]
        if prompts and all(p[1:-2].strip().isdigit() for p in prompts) and state["kernel"] == "idle":
            return state  # every code cell shows [n]:
        started = started or any(p[1:-2].strip() for p in prompts)  # some cell queued ([*]) or run ([n])
        # Stopped early (an error aborted the queue): nothing queued or running, the kernel idle, for 1.5 s.
        quiet = started and state["kernel"] == "idle" and not any("*" in p for p in prompts)
        stable = stable + 1 if quiet and state == previous else 0
        if stable >= 6 or time.monotonic() > deadline:
            return state
        previous = state
        await asyncio.sleep(0.25)


def _problems(path: str, state: dict) -> list[str]:
    may_fail = _may_fail(path)
    problems = []
    if len(state["prompts"]) != len(may_fail) or state["codeCells"] != len(may_fail):
        problems.append(f"{path}: {len(state['prompts'])} code cells in the page, "
                        f"{state['codeCells']} in the model, {len(may_fail)} on disk")
    for index, prompt in enumerate(state["prompts"]):
        if not prompt[1:-2].strip().isdigit():
            problems.append(f"{path}: code cell {index} not executed (prompt {prompt!r})")
    for index, error in state["errors"]:
        if index >= len(may_fail) or not may_fail[index]:
            problems.append(f"{path}: code cell {index} (not tagged raises-exception) raised {error}")
    return problems


def _stop(proc: subprocess.Popen, base: str, token: str, marker: str) -> list[str]:
    """Shut JupyterLab down through its REST API; return the processes that outlived it (then killed)."""
    try:
        request = urllib.request.Request(f"{base}/api/shutdown?token={token}", method="POST")
        urllib.request.urlopen(request, timeout=10).close()
    except OSError:
        pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + 15
    while (left := _marked_processes(marker)) and time.monotonic() < deadline:
        time.sleep(0.25)
    survivors = [f"{p.pid} {' '.join(p.info['cmdline'] or [])[:120]}" for p in left]
    if proc.poll() is None:
        survivors.append(f"{proc.pid} jupyter lab (server)")
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
    for p in left:
        try:
            p.kill()
        except Exception:  # psutil.NoSuchProcess: gone meanwhile
            pass
    return survivors


def test_run_all_in_jupyterlab_leaves_no_cell_unexecuted_and_no_unexpected_error(tmp_path):
    from playwright.async_api import async_playwright

    assert CHROMIUM, "chromium is not installed (CI must install it: apt-get install chromium)"
    status_before = _git_status()
    port, token, marker = claim_port(None), secrets.token_hex(16), uuid.uuid4().hex
    base = f"http://127.0.0.1:{port}"
    proc, log = _start_jupyterlab(tmp_path, port, token, marker)

    async def scenario() -> dict[str, dict]:
        states = {}
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=30_000)
            try:
                page = await (await browser.new_context()).new_page()
                await page.goto(f"{base}/lab/tree/{NOTEBOOKS[0]}?token={token}", timeout=60_000)
                await page.wait_for_function("() => !!window.jupyterapp", timeout=60_000)
                await page.evaluate("async () => { await window.jupyterapp.restored; }")
                for path in NOTEBOOKS:
                    states[path] = await _run_all(page, path)
            finally:
                await browser.close()
        return states

    try:
        _wait_until_up(proc, base, token, log)
        states = asyncio.run(scenario())
    finally:
        survivors = _stop(proc, base, token, marker)

    problems = [problem for path, state in states.items() for problem in _problems(path, state)]
    assert not problems, "\n".join(problems) + f"\n--- JupyterLab log (tail):\n{log.read_text()[-3000:]}"
    assert not survivors, f"processes outlived JupyterLab's shutdown: {survivors}"
    assert _git_status() == status_before, "the working tree changed:\n" + _git_status()
