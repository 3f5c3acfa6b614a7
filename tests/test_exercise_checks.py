"""Every exercise check is two-sided: it passes on the solution, reports the stub as not attempted, and fails
on planted wrong answers with feedback that names the mistake. Each variant runs through `course check`'s
own path: a real kernel, the whole notebook."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import nbformat
import pytest

from sandbox.lab import exercises, grading
from tests.planted import PLANTED

ROOT = Path(__file__).resolve().parents[1]


def _plant(solution, answers: dict[str, str]):
    """The solution notebook with the solution block of each exercise in `answers` replaced."""
    nb = nbformat.from_dict(solution)
    order = exercises.exercise_ids(nb)
    blocks = iter(order)
    for cell in nb.cells:
        if cell.cell_type != "code" or "### BEGIN SOLUTION" not in cell.source:
            continue
        ex = next(blocks)

        def swap(match: re.Match, ex=ex) -> str:
            return textwrap.indent(answers[ex], match.group(1)) + "\n"

        if ex in answers:
            cell.source = exercises.BLOCK.sub(swap, cell.source)
    return nb


def _check(tmp_path: Path, chapter: str, nb) -> dict[str, grading.Result]:
    path = tmp_path / f"{chapter}.ipynb"
    nbformat.write(nb, path)
    report = grading.check(path)
    return {r.exercise: r for r in report.results}


CHAPTERS = sorted(PLANTED)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_solution_passes_every_check(tmp_path, chapter):
    results = _check(tmp_path, chapter, nbformat.read(ROOT / "solutions" / f"{chapter}.ipynb", as_version=4))
    assert {ex: r.status for ex, r in results.items()} == dict.fromkeys(results, "passed"), results


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_stub_is_not_attempted(tmp_path, chapter):
    results = _check(tmp_path, chapter, nbformat.read(ROOT / "exercises" / f"{chapter}.ipynb", as_version=4))
    assert results and all(r.status == "not attempted" for r in results.values()), results


@pytest.mark.parametrize(("chapter", "k"), [(c, k) for c in CHAPTERS
                                            for k in range(max(len(a) for a in PLANTED[c].values()))])
def test_planted_wrong_answers_fail_with_the_mistake_named(tmp_path, chapter, k):
    """Round k plants the k-th wrong answer of every exercise at once (one kernel per round)."""
    planted = {ex: answers[k] for ex, answers in PLANTED[chapter].items() if len(answers) > k}
    solution = nbformat.read(ROOT / "solutions" / f"{chapter}.ipynb", as_version=4)
    results = _check(tmp_path, chapter, _plant(solution, {ex: p.code for ex, p in planted.items()}))
    for ex, p in planted.items():
        assert results[ex].status == "failed", f"{ex}: planted '{p.mistake}' was not caught: {results[ex]}"
        assert p.expect in results[ex].feedback, f"{ex}: feedback for '{p.mistake}' is {results[ex].feedback!r}"


def test_every_exercise_has_at_least_two_planted_answers():
    for chapter in exercises.chapters():
        ids = exercises.exercise_ids(nbformat.read(ROOT / "solutions" / f"{chapter}.ipynb", as_version=4))
        assert ids, f"{chapter} has no exercise check cells"
        for ex in ids:
            assert len(PLANTED.get(chapter, {}).get(ex, [])) >= 2, f"{chapter}/{ex} needs planted wrong answers"
