"""Every exercise check is two-sided: it passes on the solution, reports the stub as not attempted, and fails
on planted wrong answers with feedback that names the mistake.

The proof runs inside each solution notebook's one execution (tests/notebook_run.py): nbval's items show that
every check cell passes on the solution; after the notebook's last cell the same kernel runs, for each
exercise, its stub and then each planted answer (the exercise cell with the solution block replaced, then the
check cell again), and one `ExerciseItem` per probe judges the check's verdict. A planted cell that failed to
define its name would leave an earlier definition in place, which the check would pass: the shared kernel
cannot make a wrong answer look caught.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from sandbox.lab import exercises
from tests.notebook_run import replace_block
from tests.planted import PLANTED

ROOT = Path(__file__).resolve().parents[1]


def test_every_exercise_has_at_least_two_planted_answers():
    for chapter in exercises.chapters():
        ids = exercises.exercise_ids(nbformat.read(ROOT / "solutions" / f"{chapter}.ipynb", as_version=4))
        assert ids, f"{chapter} has no exercise check cells"
        for ex in ids:
            assert len(PLANTED.get(chapter, {}).get(ex, [])) >= 2, f"{chapter}/{ex} needs planted wrong answers"


def test_planted_answers_replace_only_the_solution_block():
    source = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n"
    assert replace_block(source, "z = 2\nreturn z") == "def f(x):\n    y = 1\n    z = 2\n    return z\n"
    assert re.search("BEGIN", replace_block(source, "pass")) is None
