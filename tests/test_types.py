"""The runtime (`sandbox/lab`) and the course's tools (`course/`) type-check: mypy, configured in pyproject.toml.

mypy keeps its cache in .course-data/mypy-cache (git-ignored): a run after the first reads only what changed, so
this stays in the fast tier (half a second warm, a few seconds cold).
"""

from __future__ import annotations

import subprocess
import sys

from sandbox.paths import REPO


def test_mypy_passes_on_the_runtime_and_the_course_tools():
    done = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"mypy found type errors (run `mypy` from the repository):\n{done.stdout}{done.stderr}"
