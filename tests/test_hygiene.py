"""Hygiene: a test run leaves no process behind and the working tree as it found it.

The run-level guard lives in the root conftest (it checks after every run); these tests prove it works: a run
that leaks a process is failed by it, and a notebook run twice is reported. (A notebook that starts a server and
never stops it leaves nothing behind: tests/test_notebook_run.py.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conftest import KERNEL_LOGS, not_run_once

ROOT = Path(__file__).resolve().parents[1]


def _pytest(*args: str, marker: str, grace: str = "10") -> subprocess.CompletedProcess:
    env = {**os.environ, "COURSE_TEST_RUN": marker, "COURSE_HYGIENE_GRACE": grace}
    env.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow  # pytest in a child process
def test_the_guard_fails_a_run_that_leaks_a_process(tmp_path):
    leaky = tmp_path / "test_leaky.py"
    leaky.write_text("import subprocess, sys\n\ndef test_leak():\n"
                     "    subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n")
    result = _pytest("-p", "conftest", "-n0", str(leaky), marker=uuid.uuid4().hex, grace="1")
    assert result.returncode == 1
    assert "HYGIENE FAILURE: processes left running" in result.stdout


def test_a_notebook_run_twice_or_never_is_reported():
    marker = uuid.uuid4().hex
    log = KERNEL_LOGS / f"{marker}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    started = ["notebooks/01-a.ipynb", str(ROOT / "notebooks/02-b.ipynb"), "notebooks/02-b.ipynb",
               "exercises/02-b.ipynb"]  # the same notebook twice (once by its full path); an exercise, not counted
    log.write_text("".join(f"{line}\n" for line in started))
    try:
        tested = {"notebooks/01-a.ipynb", "notebooks/02-b.ipynb", "solutions/03-c.ipynb"}
        assert not_run_once(marker, tested) == {"notebooks/02-b.ipynb": 2, "solutions/03-c.ipynb": 0}
    finally:
        log.unlink()
