"""`course check`: run a learner's exercise notebook in a fresh kernel and report each exercise.

The learner's file is read, never written: the run happens on a copy in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import nbformat

from course.exercises import SOLUTIONS, chapters, exercise_ids
from course.notebooks import NotebookError, execute, read
from sandbox.checks.contract import FAIL_MARK, PASS_MARK, ExerciseFailed, exercise_of, feedback_of

STATUS_MARK = {"passed": PASS_MARK, "failed": FAIL_MARK, "not attempted": "\u2026", "not run": "\u26a0",
               "missing": "\u26a0"}


@dataclass
class Result:
    exercise: str
    status: str  # passed | failed | not attempted | not run | missing
    feedback: str = ""


@dataclass
class Report:
    path: Path
    chapter: str
    results: list[Result]
    stopped: str | None = None

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.status == "passed" for r in self.results)

    def render(self) -> str:
        lines = [f"{self.path}  (chapter {self.chapter})"]
        if self.stopped:
            lines.append(f"  the run stopped early: {self.stopped}")
        for r in self.results:
            feedback = f": {r.feedback}" if r.feedback else ""
            lines.append(f"  {STATUS_MARK[r.status]} {r.exercise:<22} {r.status}{feedback}")
        done = sum(r.status == "passed" for r in self.results)
        lines.append(f"  {done} of {len(self.results)} exercises passed")
        return "\n".join(lines)


def chapter_of(path: Path, nb: nbformat.NotebookNode | None = None) -> str:
    """The chapter a notebook belongs to: by its file name (learners may keep copies like `01-...-mine`), else by
    the exercises its check cells name (an upload system may rename a hand-in to `carol.ipynb`)."""
    for stem in chapters():
        if path.stem.startswith(stem):
            return stem
    held = set(exercise_ids(nb)) if nb is not None else set()
    overlap = {stem: len(held & set(ids)) for stem, ids in chapter_exercises().items()}
    best = max(overlap, key=lambda stem: overlap[stem], default=None)
    if best and overlap[best]:
        return best
    known = ", ".join(chapters()) or "none yet"
    raise NotebookError(f"{path}: not an exercise notebook of this course (its name should start with one of: "
                        f"{known}, or its check cells name no exercise of the course)")


@cache
def chapter_exercises() -> dict[str, tuple[str, ...]]:
    """{chapter: its exercise ids}, from the solution notebooks."""
    return {stem: tuple(exercise_ids(nbformat.read(SOLUTIONS / f"{stem}.ipynb", as_version=4)))
            for stem in chapters()}


def outcome(cell: nbformat.NotebookNode) -> Result:
    """What one executed check cell says about its exercise."""
    ex = exercise_of(cell)
    if ex is None:
        raise ValueError("not a check cell: its metadata names no exercise")
    if cell.get("execution_count") is None:
        return Result(ex, "not run", "this check cell never ran: an earlier cell stopped the run")
    for out in cell.outputs:
        if out.output_type == "error":
            if out.ename == "NotImplementedError":
                return Result(ex, "not attempted", "the stub still raises NotImplementedError")
            if out.ename == ExerciseFailed.__name__:
                return Result(ex, "failed", feedback_of(out.evalue))
            return Result(ex, "failed", f"{out.ename}: {out.evalue}")
    text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
    if PASS_MARK in text:
        return Result(ex, "passed")
    return Result(ex, "failed", "the check cell ran but did not report a pass (was it edited?)")


def check(path: Path, timeout: int = 120) -> Report:
    path = Path(path)
    nb = read(path)
    chapter = chapter_of(path, nb)
    expected = list(chapter_exercises()[chapter])
    for cell in nb.cells:  # judge only what this run produces, never outputs saved in the file
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    stopped = execute(nb, path.resolve(), allow_errors=True, timeout=timeout)
    cells = {ex: c for c in nb.cells if (ex := exercise_of(c))}
    results = [outcome(cells[ex]) if ex in cells else
               Result(ex, "missing", "its check cell is gone; `course reset` restores the notebook")
               for ex in expected]
    if stopped:
        results = [r if r.status != "not run" else Result(r.exercise, "not run", stopped) for r in results]
    return Report(path, chapter, results, stopped)
