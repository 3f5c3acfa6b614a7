"""One execution per notebook, judged twice: nbval compares its stored outputs, and JupyterLab's Run All
semantics require a reply from every cell.

A notebook's code cells are queued all at once in one kernel, as JupyterLab's "Run All" sends them: each with
stop_on_error, except cells tagged `raises-exception`. nbval's cell items then read that one execution through
a `QueuedKernel`, which hands each cell's messages to nbval in order. So:
- nbval judges stored outputs as always (cells tagged `nbval-check-output`, the sanitize file, `raises-exception`);
- a cell that got no reply (a kernel that drops queued cells), was aborted (an earlier cell failed), or replied
  "error" without an error message (a mistyped magic) fails its own item, saying which.

Two more sources feed the same items:
- For a solution notebook, the same kernel then runs each exercise's stub and planted wrong answers (the
  exercise cell with its solution block replaced, then the check cell again); `ExerciseItem`s judge them.
- The notebooks in `jupyterlab.BROWSER_NOTEBOOKS` are run by JupyterLab itself, in Chromium, from the
  README's command (see tests/jupyterlab.py); nbval judges the outputs the page holds.
"""

from __future__ import annotations

import ast
import copy
import textwrap
import time
from collections import defaultdict, deque
from queue import Empty

import nbformat
import pytest
from nbval.kernel import CURRENT_ENV_KERNEL_NAME, RunningKernel
from nbval.plugin import IPyNbFile, NbCellError

from sandbox.lab import exercises, grading

RAISES = "raises-exception"
PROBE_CELLS = 3  # queued per exercise probe: forget the exercise's names, the answer, the check


def may_fail(cell) -> bool:
    return RAISES in cell.metadata.get("tags", [])


class QueuedKernel(RunningKernel):
    """nbval's kernel, sent every cell at once as Run All sends them; nbval reads the replies one cell at a time.

    `cells` are the notebook's code cells; `extra` are (source, may_fail) pairs queued after them, which nbval
    never sees (the exercise probes of a solution notebook).
    """

    def __init__(self, cells: list, extra: list[tuple[str, bool]], *, cwd: str, startup_timeout: float):
        self.sources = [(c.source, may_fail(c)) for c in cells] + list(extra)
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


def _exercise_cells(nb) -> dict[str, tuple]:
    """{exercise id: (the cell holding its solution block, its check cell)}, in exercise order."""
    blocks = [c for c in nb.cells if c.cell_type == "code" and "### BEGIN SOLUTION" in c.source]
    checks = [c for c in nb.cells if exercises.CHECK_TAG in c.metadata.get("tags", [])]
    ids = exercises.exercise_ids(nb)
    assert len(blocks) == len(checks) == len(ids), "one solution block and one check cell per exercise"
    return {ex: (block, check) for ex, block, check in zip(ids, blocks, checks, strict=True)}


def replace_block(source: str, answer: str) -> str:
    """The exercise cell with its solution block replaced by `answer`, at the block's indentation."""
    return exercises.BLOCK.sub(lambda m: textwrap.indent(answer, m.group(1)) + "\n", source)


def probes(nb, chapter: str) -> list[tuple[str, str, str, object]]:
    """(exercise, name, expected status, planted answer or None): every exercise's stub, then every planted
    answer. The stubs come first, while no failed check has left anything behind in the kernel."""
    from tests.planted import PLANTED

    ids = list(_exercise_cells(nb))
    stubs = [(ex, "stub", "not attempted", None) for ex in ids]
    return stubs + [(ex, p.mistake, "failed", p) for ex in ids for p in PLANTED.get(chapter, {}).get(ex, [])]


def forget(source: str) -> str:
    """Code that removes the names a cell defines at its top level, so that a probe of an exercise meets none of
    an earlier answer's definitions (a stub that raises before it defines its class must leave no class at all,
    as in a learner's fresh notebook)."""
    try:
        tree = compile(source, "<cell>", "exec", ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    except SyntaxError:  # a cell magic (%%writefile): it defines files, not names
        return ""
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return "".join(f"globals().pop({name!r}, None)\n" for name in sorted(names))


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
            for position, (ex, name, status, planted) in enumerate(probes(self.nb, self.path.stem)):
                yield ExerciseItem.from_parent(self, name=f"{ex}: {name}", position=position, exercise=ex,
                                               expected=status, planted=planted)

    def probe_sources(self) -> list[tuple[str, bool]]:
        """For each probe, PROBE_CELLS cells: forget the exercise's names, run the exercise cell with the probe's
        answer, run the check cell again."""
        if not any(isinstance(i, ExerciseItem) for i in self.session.items if i.parent is self):
            return []
        cells = _exercise_cells(self.nb)
        sources = []
        for ex, _name, _status, planted in probes(self.nb, self.path.stem):
            block, check = cells[ex]
            answer = exercises.stub(block.source) if planted is None else replace_block(block.source, planted.code)
            sources += [(forget(block.source), True), (answer, True), (check.source, True)]
        return sources

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
    """One exercise probe run after a solution notebook: the stub must be reported as not attempted, and each
    planted wrong answer must fail with feedback that names its mistake."""

    def __init__(self, *, position: int, exercise: str, expected: str, planted, **kwargs):
        super().__init__(**kwargs)
        self.position, self.exercise, self.expected, self.planted = position, exercise, expected, planted

    def runtest(self):
        kernel, cells = self.parent.kernel, self.parent.nb.cells
        first = sum(c.cell_type == "code" for c in cells) + PROBE_CELLS * self.position
        if not kernel.ids:
            kernel.queue_all()
        timeout = self.config.option.nbval_cell_timeout
        for position in range(first, first + PROBE_CELLS - 1):  # forgetting, and the answer: the check judges them
            kernel.outputs_of(position, timeout)
        outputs, reply = kernel.outputs_of(first + PROBE_CELLS - 1, timeout)
        if reply is None or reply["status"] == "aborted":
            raise AssertionError(f"{self.exercise}: this probe never ran: the solution notebook stopped early")
        check = copy.deepcopy(_exercise_cells(self.parent.nb)[self.exercise][1])
        check.outputs, check.execution_count = outputs, (reply or {}).get("execution_count")
        result = grading.outcome(check)
        what = "the stub" if self.planted is None else f"planted '{self.planted.mistake}'"
        assert result.status == self.expected, f"{self.exercise}: {what} gave {result}"
        if self.planted is not None:
            assert self.planted.expect in result.feedback, (
                f"{self.exercise}: feedback for {what} is {result.feedback!r}; it must name {self.planted.expect!r}")

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
