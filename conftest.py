"""Test-run wiring shared by the toolkit tests and nbval's notebook runs.

- Kernels get plain tracebacks (an IPython profile without colours) and the notebook's path in
  JPY_SESSION_NAME, as JupyterLab gives it, so each notebook boots into its own data directory.
- Hygiene: every process the run starts inherits COURSE_TEST_RUN; when the run ends, none may be left, and
  the working tree must be as it was.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent


def git_status(*paths: str) -> str:
    """`git status --porcelain`, of the whole tree or of some paths."""
    result = subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=ROOT, capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else ""


def leftover_processes(marker: str, variable: str = "COURSE_TEST_RUN") -> list:
    """Processes other than this one that carry `marker` in the environment variable `variable`."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if proc.pid == os.getpid():
            continue
        try:
            if proc.environ().get(variable) == marker:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def _ipython_dir() -> Path:
    """A kernel profile with plain tracebacks, in the git-ignored data folder (IPython writes into it)."""
    profile = ROOT / ".course-data" / "ipython" / "profile_default"
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "ipython_kernel_config.py").write_text('c.InteractiveShell.colors = "nocolor"\n')
    return profile.parent


def pytest_configure(config):
    os.environ["IPYTHONDIR"] = str(_ipython_dir())
    if not hasattr(config, "workerinput"):  # the controller, not an xdist worker
        os.environ.setdefault("COURSE_TEST_RUN", uuid.uuid4().hex)
        config._course_git_status = git_status()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before nbval starts a notebook's kernel, tell it which notebook it runs (as JupyterLab would)."""
    if item.path.suffix == ".ipynb":
        os.environ["JPY_SESSION_NAME"] = str(item.path.relative_to(ROOT))


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if hasattr(config, "workerinput") or not hasattr(config, "_course_git_status"):
        return
    marker = os.environ["COURSE_TEST_RUN"]
    # Kernels and servers get a moment to exit after their last test; a test of this guard shortens it.
    deadline = time.time() + float(os.environ.get("COURSE_HYGIENE_GRACE", "10"))
    while (left := leftover_processes(marker)) and time.time() < deadline:
        time.sleep(0.25)
    problems = []
    if left:
        problems.append("processes left running: " + "; ".join(
            f"{p.pid} {' '.join(p.info['cmdline'] or [])[:120]}" for p in left))
        for p in left:
            p.kill()
    if git_status() != config._course_git_status:
        problems.append("the working tree changed during the run:\n" + git_status())
    if problems:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        for problem in problems:
            reporter.write_line(f"HYGIENE FAILURE: {problem}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
