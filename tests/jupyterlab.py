"""The course as a learner meets it: JupyterLab started with the README's command, driven in Debian's Chromium.

One JupyterLab per test process, started on first use and shut down when the process's tests end. The
notebooks in BROWSER_NOTEBOOKS are executed by it, through the UI's "Run All" (`notebook:run-all-cells`), and
that run is the one nbval judges: `BrowserKernel` hands nbval the outputs the page holds, cell by cell. A cell
that JupyterLab's Run All left unexecuted fails its item.

Nothing is saved: autosave is off through a private settings directory, every Jupyter directory points into a
temporary folder, and the test process's hygiene check (conftest.py) sees the server and its kernels gone.
Without chromium the browser part is skipped and these notebooks run in a plain kernel instead, except under
COURSE_REQUIRE_REAL_SERVICES=1 (CI), where the browser must run.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from nbval.plugin import NbCellError

from sandbox.lab import services
from sandbox.lab.servers import claim_port

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium")
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
BROWSER_NOTEBOOKS = ("notebooks/00-start-here.ipynb", "notebooks/05-async-middleware.ipynb")
GROUP = "jupyterlab"  # the scheduling group (tests/scheduling.py) of everything that uses this JupyterLab
MARKER_VAR = "COURSE_JUPYTERLAB_BROWSER_TEST"  # every process this JupyterLab starts inherits it
RUN_DEADLINE = 300.0  # seconds for one notebook's Run All, on a busy machine

# JavaScript run in the page; `jupyterapp` is exposed by --LabApp.expose_app_in_browser.
FIND_PANEL = """path => {
    for (const w of window.jupyterapp.shell.widgets('main')) {
        if (w.context && w.context.path === path && w.content) { return w; }
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
    const outputs = [];
    const cells = w.content.model.cells;
    for (let i = 0; i < cells.length; i++) {{
        const cell = cells.get(i);
        if (cell.type !== 'code') {{ continue; }}
        const outs = [];
        for (let j = 0; j < cell.outputs.length; j++) {{ outs.push(cell.outputs.get(j).toJSON()); }}
        outputs.push(outs);
    }}
    return {{prompts, outputs, kernel: kernel ? kernel.status : 'none'}};
}}"""
CLOSE = f"""async path => {{
    const w = ({FIND_PANEL})(path);
    if (w) {{ await w.sessionContext.shutdown(); w.dispose(); }}
}}"""


def available() -> bool:
    """Can this machine run the browser tests? CI must (it installs chromium), a learner's machine may not."""
    return bool(CHROMIUM) or services.require_real()


def runs_in_browser(relpath: str) -> bool:
    return relpath in BROWSER_NOTEBOOKS and available()


def readme_command() -> list[str]:
    """The README's first command (the one that opens the course), as the words a learner types.

    Without uv on PATH the `uv run` prefix is dropped, as the README tells conda users to do.
    """
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"^## Quick start$.*?^```\n(.+?)\n```", readme, re.S | re.M)
    assert block, "README.md has no command block under '## Quick start'"
    words = shlex.split(block.group(1).strip())
    if words[:2] == ["uv", "run"] and not shutil.which("uv"):
        words = words[2:]
    return words


def _prompt_ran(prompt: str) -> bool:
    return prompt[1:-2].strip().isdigit()  # "[12]:"


class JupyterLab:
    """JupyterLab from the README's command on a free loopback port, and one Chromium page on it."""

    def __init__(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="course-jupyterlab-"))
        self.port, self.token, self.marker = claim_port(None), secrets.token_hex(16), secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = self.tmp / "jupyterlab.log"
        self.proc = self._start()
        self.playwright = self.browser = self.page = self.loop = None
        self.opened = None
        try:
            self._wait_until_up()
            self._open_browser()
        except BaseException:
            self.close()
            raise

    def _start(self) -> subprocess.Popen:
        settings = self.tmp / "lab-settings"
        for plugin, values in {"docmanager-extension/plugin": {"autosave": False},
                               "notebook-extension/tracker": {"windowingMode": "none"}}.items():
            file = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(json.dumps(values))
        env = {**os.environ, MARKER_VAR: self.marker, "JUPYTERLAB_SETTINGS_DIR": str(settings),
               "JUPYTER_CONFIG_DIR": str(self.tmp / "config"), "JUPYTER_DATA_DIR": str(self.tmp / "data"),
               "JUPYTER_RUNTIME_DIR": str(self.tmp / "runtime")}
        env.pop("JPY_SESSION_NAME", None)  # JupyterLab sets it per notebook for its kernels
        # The README's command, plus what a test needs: no browser of its own, a known port and token, root
        # allowed (CI runs as root), nothing written into the repository, and the app reachable from the page.
        command = [*readme_command(), "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
                   "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
                   "--ServerApp.allow_root=True", f"--FileCheckpoints.checkpoint_dir={self.tmp / 'checkpoints'}",
                   f"--LabApp.workspaces_dir={self.tmp / 'workspaces'}", "--LabApp.news_url=None",
                   "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                   "--LabApp.expose_app_in_browser=True"]
        with self.log.open("wb") as out:
            return subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    def _wait_until_up(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"JupyterLab exited ({self.proc.returncode}):\n{self.log_tail()}"
            try:
                with urllib.request.urlopen(f"{self.base}/api/status?token={self.token}", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.25)
        raise AssertionError(f"JupyterLab did not answer within {timeout} s:\n{self.log_tail()}")

    def opening_url(self) -> str:
        """The address JupyterLab opens in the learner's browser (it writes it to a file for the browser)."""
        runtime = self.tmp / "runtime"
        opening = [*runtime.glob("jpserver-file-to-run-*-open.html"), *runtime.glob("jpserver-*-open.html")]
        assert opening, f"JupyterLab wrote no page to open:\n{self.log_tail()}"
        html = opening[0].read_text()
        url = re.search(r'href="([^"]+)"', html).group(1).replace("&amp;", "&")
        return url if "token=" in url else f"{url}{'&' if '?' in url else '?'}token={self.token}"

    def _call(self, coroutine, timeout: float = RUN_DEADLINE + 60):
        """Run a coroutine on the browser's own event loop thread: Playwright's sync API would claim this
        thread's event loop, and every later `asyncio.run` in this test process would fail."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def _open_browser(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="playwright", daemon=True).start()
        self._call(self._launch())

    async def _launch(self) -> None:
        from playwright.async_api import async_playwright

        assert CHROMIUM, "chromium is not installed (CI must install it: apt-get install chromium)"
        self.playwright = await async_playwright().start()
        self.browser = await self.playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=60_000)
        self.page = await (await self.browser.new_context()).new_page()
        await self.page.goto(self.opening_url(), timeout=120_000)
        await self.page.wait_for_function("() => !!window.jupyterapp", timeout=120_000)
        await self.page.evaluate("async () => { await window.jupyterapp.restored; }")
        # What the learner sees first: the document JupyterLab opened.
        self.opened = await (await self.page.wait_for_function(
            "() => { const w = window.jupyterapp.shell.currentWidget; return w && w.context && w.context.path; }",
            timeout=120_000, polling=250)).json_value()

    def top_folder(self) -> list[str]:
        """Click the file browser's top breadcrumb (the course's folder) and return the names listed there."""
        async def listing():
            await self.page.locator(".jp-FileBrowser .jp-BreadCrumbs-home").first.click(timeout=30_000)
            names = await self.page.wait_for_function(
                """() => { const names = Array.from(document.querySelectorAll(
                               '.jp-FileBrowser .jp-DirListing-itemText')).map(e => e.textContent.trim());
                           return names.includes('exercises') ? names : null; }""", timeout=30_000, polling=250)
            return await names.json_value()
        return self._call(listing())

    def open(self, path: str) -> None:
        """Open a notebook (if it is not open yet) and wait for its kernel to be idle."""
        self._call(self._open(path))

    async def _open(self, path: str) -> None:
        await self.page.evaluate(
            "async path => { await window.jupyterapp.commands.execute('docmanager:open', {path}); }", path)
        await self.page.wait_for_function(PANEL_READY, arg=path, timeout=120_000, polling=250)

    def click_link(self, href_part: str, then_open: str) -> None:
        """Click the first link in an open notebook whose address contains `href_part`, and wait until the
        notebook `then_open` is open with an idle kernel."""
        async def click():
            link = self.page.locator(f'.jp-NotebookPanel a[href*="{href_part}"]').first
            await link.scroll_into_view_if_needed(timeout=30_000)
            await link.click(timeout=30_000)
            await self.page.wait_for_function(PANEL_READY, arg=then_open, timeout=120_000, polling=250)
        self._call(click())

    def run_all(self, path: str) -> dict:
        """Open `path`, Run All through the UI, and wait until the run is over; return the page's state."""
        return self._call(self._run_all(path))

    async def _run_all(self, path: str) -> dict:
        await self._open(path)
        await self.page.evaluate(RUN_ALL, path)
        deadline, previous, stable, started = time.monotonic() + RUN_DEADLINE, None, 0, False
        while True:
            state = await self.page.evaluate(STATE, path)
            prompts = state["prompts"]
            if prompts and all(_prompt_ran(p) for p in prompts) and state["kernel"] == "idle":
                return state  # every code cell shows [n]:
            started = started or any(p[1:-2].strip() for p in prompts)  # some cell queued ([*]) or run ([n])
            # Stopped early (an error aborted the queue): nothing queued or running, the kernel idle, for 2 s.
            quiet = started and state["kernel"] == "idle" and not any("*" in p for p in prompts)
            stable = stable + 1 if quiet and state == previous else 0
            if stable >= 8 or time.monotonic() > deadline:
                return state
            previous = state
            await asyncio.sleep(0.25)

    def close_notebook(self, path: str) -> None:
        """Shut a notebook's kernel down and close its tab, so its servers go before the next notebook runs."""
        if self.page is not None:
            self._call(self.page.evaluate(CLOSE, path))

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def close(self) -> None:
        """Close the browser and shut JupyterLab down, waiting for its kernels and their servers to go (any that
        stay are the run's hygiene check's to report)."""
        if self.loop is not None:
            for step in (self.browser and self.browser.close, self.playwright and self.playwright.stop):
                try:
                    step and self._call(step(), timeout=30)
                except Exception:  # a browser that already died: the server's shutdown matters more
                    pass
            self.loop.call_soon_threadsafe(self.loop.stop)
        try:
            request = urllib.request.Request(f"{self.base}/api/shutdown?token={self.token}", method="POST")
            urllib.request.urlopen(request, timeout=10).close()
        except OSError:
            pass
        from conftest import leftover_processes

        deadline = time.monotonic() + 30
        while (self.proc.poll() is None or leftover_processes(self.marker, MARKER_VAR)) and time.monotonic() < deadline:
            time.sleep(0.25)
        shutil.rmtree(self.tmp, ignore_errors=True)


_lab: JupyterLab | None = None


def lab() -> JupyterLab:
    """This test process's JupyterLab, started on first use."""
    global _lab
    if _lab is None:
        _lab = JupyterLab()
    return _lab


def shutdown() -> None:
    """Stop this process's JupyterLab, if it started one."""
    global _lab
    if _lab is not None:
        _lab.close()
    _lab = None


def _as_message(output: dict, parent: str) -> dict:
    """One output of the page's notebook model as the iopub message the kernel sent for it."""
    def text(value):
        return "".join(value) if isinstance(value, list) else value

    kind = output["output_type"]
    if kind == "stream":
        content = {"name": output["name"], "text": text(output["text"])}
    elif kind == "error":
        content = {k: output[k] for k in ("ename", "evalue", "traceback")}
    else:
        content = {"data": {k: text(v) for k, v in output.get("data", {}).items()},
                   "metadata": output.get("metadata", {}), "execution_count": output.get("execution_count")}
    return {"msg_type": kind, "content": content, "parent_header": {"msg_id": parent}}


class BrowserKernel:
    """What nbval's cell items talk to for a notebook that JupyterLab runs: the first cell triggers the UI's Run
    All; then each cell's outputs, as the page holds them, are replayed to nbval as the kernel's messages."""

    def __init__(self, path: str, cells: list):
        self.path, self.cells = path, cells
        self.state: dict | None = None
        self.messages: list[dict] = []
        self.asked = 0
        self.alive = True

    def execute_cell_input(self, cell_input, allow_stdin=None):
        if self.state is None:
            self.state = lab().run_all(self.path)
            if len(self.state["prompts"]) != len(self.cells):
                raise NbCellError(0, f"the page shows {len(self.state['prompts'])} code cells, the file has "
                                  f"{len(self.cells)}", "")
        while self.cells[self.asked].source != cell_input:  # a cell nbval skips still ran
            self.asked += 1
        index, self.asked = self.asked, self.asked + 1
        parent = f"{self.path}:{index}"
        prompt = self.state["prompts"][index]
        if not _prompt_ran(prompt):
            raise NbCellError(index, f"JupyterLab's Run All left this cell unexecuted (prompt {prompt!r}): an earlier "
                              "cell failed, or the kernel dropped it", cell_input)
        self.messages = [_as_message(o, parent) for o in self.state["outputs"][index]]
        self.messages.append({"msg_type": "status", "content": {"execution_state": "idle"},
                              "parent_header": {"msg_id": parent}})
        return parent

    def await_reply(self, msg_id, timeout=None):
        return None

    def await_idle(self, parent_id, timeout):
        self.messages.clear()

    def get_message(self, stream, timeout=None):
        return self.messages.pop(0)

    def is_alive(self) -> bool:
        return self.alive

    def interrupt(self) -> None:
        pass

    def stop(self) -> None:
        self.alive = False
        if _lab is not None:
            _lab.close_notebook(self.path)
