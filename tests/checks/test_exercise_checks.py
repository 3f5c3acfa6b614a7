"""Every exercise check is held to the same bar (issue 12): it enforces every requirement its exercise states,
passes the solution and the acceptable variants, reports the stub as not attempted, and rejects at least four
plausible wrong answers (two of them beyond the async mechanics) with feedback that names the mistake and never
quotes the solution.

The probes themselves run inside each solution notebook's one execution (tests/probes.py, tests/notebook_run.py);
this module checks what the probes cannot: that every exercise has its requirements table for its current text,
its two folded hints, and enough planted answers of each kind.
"""

from __future__ import annotations

import re

import nbformat
import pytest

from course import exercises
from sandbox.paths import REPO
from tests.planted import ACCEPTABLE, PLANTED
from tests.probes import replace_block

ROOT = REPO
CHAPTERS = sorted(PLANTED)


def test_planted_answers_replace_only_the_solution_block():
    source = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n"
    assert replace_block(source, "z = 2\nreturn z") == "def f(x):\n    y = 1\n    z = 2\n    return z\n"
    assert re.search("BEGIN", replace_block(source, "pass")) is None


def _check_module(chapter: str):
    """The check module a chapter's solution notebook imports (tests/planted names its modules the same)."""
    import importlib

    from tests import planted

    name = next(m for m, c in planted.MODULES.items() if c == chapter)
    return importlib.import_module(f"sandbox.checks.{name}")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_exercise_states_its_requirements_for_its_current_text(chapter):
    from sandbox.checks.harness import Requirements

    nb = nbformat.read(ROOT / "solutions" / f"{chapter}.ipynb", as_version=4)
    table = getattr(_check_module(chapter), "REQUIREMENTS", {})
    for ex, task in exercises.tasks(nb).items():
        assert isinstance(table.get(ex), Requirements), f"{chapter}/{ex}: no REQUIREMENTS entry"
        assert table[ex].task == exercises.task_hash(task), (
            f"{chapter}/{ex}: the exercise's text changed since its requirements table was written (its fingerprint "
            f"is now {exercises.task_hash(task)}): bring the table up to date, then its `task`")
        assert len(table[ex].rows) >= 2 and all(len(row) == 2 and all(row) for row in table[ex].rows), ex


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_exercise_has_a_nudge_and_then_the_api_folded(chapter):
    nb = nbformat.read(ROOT / "solutions" / f"{chapter}.ipynb", as_version=4)
    for ex, folded in exercises.hints(nb).items():
        assert len(folded) >= 2, f"{chapter}/{ex}: two hints in <details> blocks (a nudge, then the API)"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_exercise_has_four_wrong_answers_two_beyond_async_and_an_acceptable_variant(chapter):
    nb = nbformat.read(ROOT / "solutions" / f"{chapter}.ipynb", as_version=4)
    for ex in exercises.exercise_ids(nb):
        wrong = PLANTED.get(chapter, {}).get(ex, [])
        assert len(wrong) >= 4, f"{chapter}/{ex}: {len(wrong)} planted wrong answers, at least 4"
        beyond = [p for p in wrong if p.about != "async"]
        assert len(beyond) >= 2, f"{chapter}/{ex}: {len(beyond)} wrong answers beyond the async mechanics, at least 2"
        assert ACCEPTABLE.get(chapter, {}).get(ex), f"{chapter}/{ex}: no acceptable variant"
