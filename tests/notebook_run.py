"""One execution per notebook, judged twice: nbval compares its stored outputs, and JupyterLab's Run All
semantics require a reply from every cell.

A notebook's code cells are queued all at once in one kernel, as JupyterLab's "Run All" sends them: each with
stop_on_error, except cells tagged `raises-exception`. nbval's cell items then read that one execution through
a `QueuedKernel`, which hands each cell's messages to nbval in order. So:
- nbval judges stored outputs as always (cells tagged `nbval-check-output`, the sanitize file, `raises-exception`);
- a cell that got no reply (a kernel that drops queued cells), was aborted (an earlier cell failed), replied
  "error" without an error message (a mistyped magic), or printed "coroutine ... was never awaited" (the warning
  a course about awaiting must not leave in a lesson, unless the cell is tagged `never-awaited`) fails its own
  item, saying which.

Two more sources feed the same items:
- For a solution notebook, the same kernel then runs the exercise probes of tests/probes.py (stubs, acceptable
  variants, planted wrong answers, isolation); `ExerciseItem`s judge them.
- The notebooks in `jupyterlab.BROWSER_NOTEBOOKS` are run by JupyterLab itself, in Chromium, from the
  README's command (see tests/jupyterlab.py); nbval judges the outputs the page holds.
"""

from __future__ import annotations

import copy
import re
import time
from collections import defaultdict, deque
from queue import Empty

import nbformat
import pytest
from nbval.kernel import CURRENT_ENV_KERNEL_NAME, RunningKernel
from nbval.plugin import IPyNbFile, NbCellError

from course import exercises, grading
from tests import probes

RAISES = "raises-exception"
NEVER_AWAITED = "never-awaited"  # the tag of a cell that shows a coroutine never awaited on purpose


def may_fail(cell) -> bool:
    return RAISES in cell.metadata.get("tags", [])


class QueuedKernel(RunningKernel):
    """nbval's kernel, sent every cell at once as Run All sends them; nbval reads the replies one cell at a time.

    `cells` are the notebook's code cells; `extra` are (source, may_fail) pairs queued after them, which nbval
    never sees (the exercise probes of a solution notebook).
    """

    def __init__(self, cells: list, extra: list[tuple[str, bool]], *, cwd: str, startup_timeout: float):
        self.sources = [(c.source, may_fail(c)) for c in cells] + list(extra)
        self.judged = [NEVER_AWAITED not in c.metadata.get("tags", []) for c in cells]  # probes warn on purpose
        self.ids: list[str] = []
        self.index: dict[str, int] = {}
        self.replies: dict[str, dict] = {}
        self.iopub: dict[str, deque] = defaultdict(deque)
        self.current: str | None = None
        self.asked = 0
        super().__init__(CURRENT_ENV_KERNEL_NAME, cwd=cwd, startup_timeout=startup_timeout)  # starts the kernel

    def queue_all(self) -> None:
        for source, fails in self.sources:
            msg_id = self.kc.execute(source, store_history=True, allow_stdin=False, stop_on_error=not fails)
            self.index[msg_id] = len(self.ids)
            self.ids.append(msg_id)

    def execute_cell_input(self, cell_input, allow_stdin=None):
        """nbval asks for its cells in order; answer with the id the cell was queued under."""
        if not self.ids:
            self.queue_all()
        while self.sources[self.asked][0] != cell_input:  # a cell nbval skips (nbval-skip) still ran
            self.asked += 1
        self.current = self.ids[self.asked]
        self.asked += 1
        return self.current

    def await_reply(self, msg_id, timeout=None):
        if msg_id not in self.index:  # nbval's own kernel_info handshake
            return super().await_reply(msg_id, timeout)
        content = self.reply(msg_id, timeout)
        position = self.index[msg_id]
        source, fails = self.sources[position]
        if content is None:
            raise NbCellError(position, "No reply: the kernel answered a later cell first, so this one was dropped "
                              "(what Run All shows as a cell that never runs)", source)
        if content["status"] == "aborted":
            raise NbCellError(position, "Aborted: an earlier cell failed, and Run All stops at the first error",
                              source)
        if content["status"] == "error" and not fails and content.get("ename") == "UsageError":
            raise NbCellError(position, f"The cell replied with an error and no error output (a mistyped magic?): "
                              f"{content.get('ename')}: {content.get('evalue')}", source)
        if position < len(self.judged) and self.judged[position] and (warning := self.never_awaited(msg_id, timeout)):
            raise NbCellError(position, f"The cell left a coroutine never awaited ({warning}); tag the cell "
                              f"`{NEVER_AWAITED}` if it shows that on purpose", source)

    def never_awaited(self, msg_id: str, timeout: float | None) -> str | None:
        """The never-awaited warning a cell printed, if any: its messages are read up to its end and left queued
        for nbval."""
        queue, end = self.iopub[msg_id], None if timeout is None else time.monotonic() + timeout
        while not any(m["msg_type"] == "status" and m["content"]["execution_state"] == "idle" for m in queue):
            msg = self.receive(self.kc.get_iopub_msg, end)
            self.iopub[msg["parent_header"].get("msg_id")].append(msg)
        text = "".join(m["content"]["text"] for m in queue
                       if m["msg_type"] == "stream" and m["content"]["name"] == "stderr")  # where warnings go
        found = re.search(r"coroutine '[^']*' was never awaited", text)
        return found.group(0) if found else None

    def reply(self, msg_id: str, timeout: float | None) -> dict | None:
        """The shell reply to one queued cell; None when a later cell's reply came first (this one was dropped).
        Raises queue.Empty when nothing came within `timeout` seconds, as nbval expects."""
        end = None if timeout is None else time.monotonic() + timeout
        while msg_id not in self.replies:
            later = [m for m in self.replies if self.index.get(m, -1) > self.index[msg_id]]
            if later:
                return None
            msg = self.receive(self.kc.get_shell_msg, end)
            self.replies[msg["parent_header"].get("msg_id")] = msg["content"]
        return self.replies[msg_id]

    def receive(self, get, end: float | None) -> dict:
        """The next message from `get` (a channel's reader) before `end`: queue.Empty at the deadline, as nbval
        expects, but an error at once when the kernel has died (nothing more will come)."""
        while True:
            left = 1.0 if end is None else min(1.0, end - time.monotonic())
            if left <= 0:
                raise Empty
            try:
                return get(timeout=left)
            except Empty:
                if not self.km.is_alive():
                    raise RuntimeError("the kernel died (the code crashed or exited the process)") from None

    def get_message(self, stream, timeout=None):
        """iopub messages of the cell nbval is reading; those of other cells wait in their own queue."""
        if stream != "iopub" or self.current is None:
            return super().get_message(stream, timeout)
        return self.next_for(self.current, timeout)

    def next_for(self, msg_id: str, timeout: float | None) -> dict:
        queue, end = self.iopub[msg_id], None if timeout is None else time.monotonic() + timeout
        while not queue:
            msg = self.receive(self.kc.get_iopub_msg, end)
            self.iopub[msg["parent_header"].get("msg_id")].append(msg)
        return queue.popleft()

    def outputs_of(self, position: int, timeout: float) -> tuple[list, dict | None]:
        """The outputs (as nbformat nodes) and reply of one queued source, for items nbval does not run."""
        msg_id = self.ids[position]
        self.current = None
        outputs = []
        while True:
            msg = self.next_for(msg_id, timeout)
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content["execution_state"] == "idle":
                break
            if kind == "stream":
                outputs.append(nbformat.v4.new_output("stream", name=content["name"], text=content["text"]))
            elif kind == "error":
                outputs.append(nbformat.v4.new_output("error", ename=content["ename"], evalue=content["evalue"],
                                                      traceback=content["traceback"]))
        return outputs, self.reply(msg_id, timeout)


class NotebookFile(IPyNbFile):
    """nbval's collector of one notebook, in lax mode, with one execution behind all its items."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.compare_outputs = False  # --nbval-lax: compare only cells tagged nbval-check-output

    @property
    def relpath(self) -> str:
        return self.path.relative_to(self.config.rootpath).as_posix()

    def collect(self):
        yield from super().collect()
        if self.path.parent.name == "solutions" and self.path.stem in exercises.chapters():
            first = sum(c.cell_type == "code" for c in self.nb.cells)
            for probe in probes.probes(self.nb, self.path.stem):
                yield ExerciseItem.from_parent(self, name=f"{probe.exercise}: {probe.name}", probe=probe, first=first)
                first += probes.CELLS_PER_STEP * len(probe.steps)

    def probe_sources(self) -> list[tuple[str, bool]]:
        """The cells of every probe of this solution notebook (tests/probes.py), when its probes were selected."""
        if not any(isinstance(i, ExerciseItem) for i in self.session.items if i.parent is self):
            return []
        return [cell for probe in probes.probes(self.nb, self.path.stem) for cell in probes.sources(self.nb, probe)]

    def setup(self):
        from tests import jupyterlab

        option = self.config.option
        code = [c for c in self.nb.cells if c.cell_type == "code"]
        if jupyterlab.runs_in_browser(self.relpath):
            self.kernel = jupyterlab.BrowserKernel(self.relpath, code)
        else:
            self.kernel = QueuedKernel(code, self.probe_sources(), cwd=str(self.path.parent),
                                       startup_timeout=option.nbval_kernel_startup_timeout)
        self.setup_sanitize_files()


class ExerciseItem(pytest.Item):
    """One exercise probe run after a solution notebook (tests/probes.py), judged by what its last check said."""

    def __init__(self, *, probe, first: int, **kwargs):
        super().__init__(**kwargs)
        self.probe, self.first = probe, first  # `first`: the position of its first cell in the kernel's queue

    def runtest(self):
        kernel, probe = self.parent.kernel, self.probe
        if not kernel.ids:
            kernel.queue_all()
        timeout = self.config.option.nbval_cell_timeout
        last = self.first + probes.CELLS_PER_STEP * len(probe.steps) - 1
        for position in range(self.first, last):  # the earlier cells: only the last check is judged
            kernel.outputs_of(position, timeout)
        outputs, reply = kernel.outputs_of(last, timeout)
        if reply is None or reply["status"] == "aborted":
            raise AssertionError(f"{probe.exercise}: this probe never ran: the solution notebook stopped early")
        cells = probes.exercise_cells(self.parent.nb)
        check = copy.deepcopy(cells[probe.exercise][1])
        check.outputs, check.execution_count = outputs, reply.get("execution_count")
        result = grading.outcome(check)
        assert result.status == probe.expected, f"{probe.exercise}: {probe.name} gave {result}"
        if probe.planted is not None:
            assert probe.planted.expect in result.feedback, (
                f"{probe.exercise}: the feedback for '{probe.name}' is {result.feedback!r}; it must name "
                f"{probe.planted.expect!r}")
            quoted = [f for f in probes.solution_fragments(cells[probe.exercise][0].source) if f in result.feedback]
            assert not quoted, (
                f"{probe.exercise}: the feedback for '{probe.name}' quotes the solution: {quoted}")

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, AssertionError):
            return str(excinfo.value).split("\nassert ")[0]  # the verdict, without the plugin's own traceback
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"{self.parent.relpath}::{self.name}"


def pytest_configure(config):
    # This plugin collects notebooks itself; nbval's own collector would run them a second time.
    config.option.nbval = config.option.nbval_lax = False


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".ipynb":
        return NotebookFile.from_parent(parent, path=file_path)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """JupyterLab and its browser go as soon as the last item that uses them is done (tests/scheduling.py runs
    those items together): an idle page still costs CPU."""
    from tests import jupyterlab, scheduling

    try:
        return (yield)
    finally:
        uses = scheduling.scope_of(item.nodeid) == jupyterlab.GROUP
        if uses and (nextitem is None or scheduling.scope_of(nextitem.nodeid) != jupyterlab.GROUP):
            jupyterlab.shutdown()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    """A JupyterLab this test process started goes before the hygiene check looks for leftovers."""
    from tests import jupyterlab

    jupyterlab.shutdown()
