"""Test-run wiring shared by the toolkit tests and nbval's notebook runs.

- Notebooks: one execution each, judged by nbval and by Run All's rules (tests/notebook_run.py); the run is
  spread over the machine's cores, heaviest first (tests/scheduling.py).
- Kernels get plain tracebacks (an IPython profile without colours), abort every queued cell after an error
  (KERNEL_CONFIG), print every coroutine never awaited (which fails its cell unless it is tagged `never-awaited`),
  and the notebook's path in JPY_SESSION_NAME, as JupyterLab gives it, so each notebook boots
  into its own data directory.
- Hygiene: every process the run starts inherits COURSE_TEST_RUN; when the run ends, none may be left, and
  the working tree must be as it was.
- One execution per notebook, counted: every kernel the run starts (nbval's, JupyterLab's, `course check`'s)
  loads the profile below, whose startup file writes the kernel's notebook (JPY_SESSION_NAME) to the run's
  kernel log. When the run ends, each lesson or solution notebook that had tests must have had exactly one kernel.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
pytest_plugins = ["tests.notebook_run", "tests.scheduling"]


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


KERNEL_LOGS = ROOT / ".course-data" / "test-runs"
COUNT_KERNEL = """\
def _course_count_kernel():
    \"\"\"A kernel started by the course's test run writes down its notebook (see conftest.py).\"\"\"
    import os
    run = os.environ.get("COURSE_TEST_RUN")
    if run and os.path.isdir(os.environ.get("COURSE_KERNEL_LOGS", "")):
        with open(os.path.join(os.environ["COURSE_KERNEL_LOGS"], run + ".log"), "a") as log:
            log.write(os.environ.get("JPY_SESSION_NAME", "") + "\\n")


_course_count_kernel()
del _course_count_kernel
"""


SHOW_NEVER_AWAITED = """\
# Every coroutine never awaited is printed, however often its line runs: tests/notebook_run.py fails the cell.
import warnings
warnings.filterwarnings("always", message=r"coroutine .* was never awaited", category=RuntimeWarning)
del warnings
"""


KERNEL_CONFIG = (
    'c.InteractiveShell.colors = "nocolor"\n'
    # Run All queues every cell at once; after an error, ipykernel aborts only the requests that have already
    # arrived (its window is 0 s by default), so on a busy machine a later cell could arrive just after and run.
    # A second's window makes "queued at once" mean queued, as it does on an idle machine.
    "c.Kernel.stop_on_error_timeout = 1.0\n"
)


def _ipython_dir() -> Path:
    """A kernel profile with plain tracebacks, Run All's abort for every queued cell, and a kernel counter, in the
    git-ignored data folder."""
    profile = ROOT / ".course-data" / "ipython" / "profile_default"
    (profile / "startup").mkdir(parents=True, exist_ok=True)
    (profile / "ipython_kernel_config.py").write_text(KERNEL_CONFIG)
    (profile / "startup" / "00-count-kernel.py").write_text(COUNT_KERNEL)
    (profile / "startup" / "01-show-never-awaited.py").write_text(SHOW_NEVER_AWAITED)
    return profile.parent


def kernels_per_notebook(marker: str) -> dict[str, int]:
    """{notebook path relative to the repository: kernels started for it} in the test run `marker`."""
    log = KERNEL_LOGS / f"{marker}.log"
    counts: dict[str, int] = {}
    for line in (log.read_text().splitlines() if log.exists() else []):
        path = Path(line)
        name = path.relative_to(ROOT).as_posix() if path.is_absolute() and path.is_relative_to(ROOT) else line
        counts[name] = counts.get(name, 0) + 1
    return counts


def not_run_once(marker: str, tested: set[str]) -> dict[str, int]:
    """{notebook: kernels started for it} for each tested notebook that did not run in exactly one kernel."""
    kernels = kernels_per_notebook(marker)
    return {path: kernels.get(path, 0) for path in tested if kernels.get(path, 0) != 1}


def pytest_configure(config):
    os.environ["IPYTHONDIR"] = str(_ipython_dir())
    if not hasattr(config, "workerinput"):  # the controller, not an xdist worker
        os.environ.setdefault("COURSE_TEST_RUN", uuid.uuid4().hex)
        KERNEL_LOGS.mkdir(parents=True, exist_ok=True)
        os.environ["COURSE_KERNEL_LOGS"] = str(KERNEL_LOGS)
        config._course_git_status = git_status()


def pytest_runtest_logreport(report):
    """The controller hears of every test, wherever it ran: note the lesson and solution notebooks tested."""
    path = report.nodeid.split("::", 1)[0]
    if path.endswith(".ipynb") and path.split("/")[0] in ("notebooks", "solutions") and report.when == "call":
        _tested.add(path)


_tested: set[str] = set()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before nbval starts a notebook's kernel, tell it which notebook it runs (as JupyterLab would)."""
    if item.path.suffix == ".ipynb":
        path = item.path
        os.environ["JPY_SESSION_NAME"] = str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


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
    wrong = not_run_once(marker, _tested)
    (KERNEL_LOGS / f"{marker}.log").unlink(missing_ok=True)
    if wrong:
        problems.append("each notebook must run exactly once per test run; kernels started: "
                        + ", ".join(f"{path}: {n}" for path, n in sorted(wrong.items())))
    if problems:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        for problem in problems:
            reporter.write_line(f"HYGIENE FAILURE: {problem}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
