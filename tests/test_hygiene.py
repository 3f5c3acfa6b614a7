"""Hygiene: a test run leaves no process behind and the working tree as it found it.

The run-level guard lives in the root conftest (it checks after every run); these tests prove it works:
a clean notebook run passes it, and a run that leaks a process is failed by it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from conftest import git_status, leftover_processes

ROOT = Path(__file__).resolve().parents[1]


def _pytest(*args: str, marker: str, grace: str = "10") -> subprocess.CompletedProcess:
    env = {**os.environ, "COURSE_TEST_RUN": marker, "COURSE_HYGIENE_GRACE": grace}
    env.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_a_server_starting_notebook_leaves_nothing_behind():

    marker, before = uuid.uuid4().hex, git_status()
    result = _pytest("-n0", "solutions/01-sync-vs-async.ipynb", marker=marker)
    assert result.returncode == 0, result.stdout[-2000:]
    assert leftover_processes(marker) == []
    assert git_status() == before


def test_the_guard_fails_a_run_that_leaks_a_process(tmp_path):
    leaky = tmp_path / "test_leaky.py"
    leaky.write_text("import subprocess, sys\n\ndef test_leak():\n"
                     "    subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n")
    result = _pytest("-p", "conftest", "-n0", str(leaky), marker=uuid.uuid4().hex, grace="1")
    assert result.returncode == 1
    assert "HYGIENE FAILURE: processes left running" in result.stdout
