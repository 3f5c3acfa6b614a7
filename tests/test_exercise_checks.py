"""Every exercise check is two-sided: it passes on the solution, reports the stub as not attempted, and fails
on planted wrong answers with feedback that names the mistake.

The stub runs through `course check` itself. The solution and every planted answer run in one real kernel
per chapter: the solution notebook top to bottom, then, for each planted answer, its exercise cell with the
solution block replaced and the exercise's check cell again. (A planted cell that failed to define its name
would leave the solution's definition in place, which passes the check and fails this test: the shared
kernel cannot make a wrong answer look caught.)
"""

from __future__ import annotations

import copy
import re
import textwrap
from pathlib import Path

import nbformat

from sandbox.lab import exercises, grading
from sandbox.lab.notebooks import execute
from tests.planted import PLANTED

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(PLANTED)


def _exercise_cells(nb) -> dict[str, tuple]:
    """{exercise id: (the cell holding its solution block, its check cell)}; blocks come in exercise order."""
    blocks = [c for c in nb.cells if c.cell_type == "code" and "### BEGIN SOLUTION" in c.source]
    checks = [c for c in nb.cells if exercises.CHECK_TAG in c.metadata.get("tags", [])]
    ids = exercises.exercise_ids(nb)
    assert len(blocks) == len(checks) == len(ids), "one solution block and one check cell per exercise"
    return {ex: (block, check) for ex, block, check in zip(ids, blocks, checks, strict=True)}


def _replace_block(source: str, answer: str) -> str:
    return exercises.BLOCK.sub(lambda m: textwrap.indent(answer, m.group(1)) + "\n", source)


def _with_planted(solution, chapter: str):
    """The solution notebook followed by one (exercise cell, check cell) pair per planted answer."""
    nb = copy.deepcopy(solution)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    planted_cells = []
    for ex, (block, check) in _exercise_cells(solution).items():
        for p in PLANTED[chapter].get(ex, []):
            answer, probe = copy.deepcopy(block), copy.deepcopy(check)
            answer.source, answer.outputs, answer.execution_count = _replace_block(block.source, p.code), [], None
            probe.outputs, probe.execution_count = [], None
            nb.cells += [answer, probe]
            planted_cells.append((ex, p, probe))
    return nb, planted_cells


class ChapterChecks:
    """The two-sided tests of one chapter. One class per chapter (made below), so that pytest-xdist's
    loadscope spreads the chapters over its workers."""

    chapter: str

    def test_solution_passes_and_planted_answers_fail_with_the_mistake_named(self, tmp_path):
        solution = nbformat.read(ROOT / "solutions" / f"{self.chapter}.ipynb", as_version=4)
        nb, planted = _with_planted(solution, self.chapter)
        stopped = execute(nb, tmp_path / f"{self.chapter}.ipynb", allow_errors=True, timeout=120)
        assert stopped is None, stopped
        originals = [c for c in nb.cells[: len(solution.cells)] if exercises.CHECK_TAG in c.metadata.get("tags", [])]
        for cell in originals:
            result = grading.outcome(cell)
            assert result.status == "passed", f"the solution of {result.exercise} does not pass: {result}"
        for ex, p, probe in planted:
            result = grading.outcome(probe)
            assert result.status == "failed", f"{ex}: planted '{p.mistake}' was not caught: {result}"
            assert p.expect in result.feedback, f"{ex}: feedback for '{p.mistake}' is {result.feedback!r}"

    def test_stub_is_not_attempted(self, tmp_path):
        path = tmp_path / f"{self.chapter}.ipynb"
        path.write_text((ROOT / "exercises" / f"{self.chapter}.ipynb").read_text())
        results = grading.check(path).results
        assert results and all(r.status == "not attempted" for r in results), results


for _chapter in CHAPTERS:
    _name = f"TestChapter{_chapter.split('-')[0]}"
    globals()[_name] = type(_name, (ChapterChecks,), {"chapter": _chapter})


def test_every_exercise_has_at_least_two_planted_answers():
    for chapter in exercises.chapters():
        ids = exercises.exercise_ids(nbformat.read(ROOT / "solutions" / f"{chapter}.ipynb", as_version=4))
        assert ids, f"{chapter} has no exercise check cells"
        for ex in ids:
            assert len(PLANTED.get(chapter, {}).get(ex, [])) >= 2, f"{chapter}/{ex} needs planted wrong answers"


def test_planted_answers_replace_only_the_solution_block():
    source = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n"
    assert _replace_block(source, "z = 2\nreturn z") == "def f(x):\n    y = 1\n    z = 2\n    return z\n"
    assert re.search("BEGIN", _replace_block(source, "pass")) is None
