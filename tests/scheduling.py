"""How one test run shares the machine: which items must run together, and which start first.

- Workers: one more than cores on an idle machine, one per core on a busy one (`pytest_xdist_auto_num_workers`).
- Scopes: every item of one file runs on one pytest-xdist worker (a notebook's cells share its kernel), and
  everything that drives the shared JupyterLab (tests/jupyterlab.py) runs on one worker, which starts it once.
- Order: the heaviest scopes start first, so that no long notebook is left to run alone at the end. A scope weighs
  what WEIGHTS says (seconds measured in a test run on a 2-core machine); a notebook without a line there weighs
  what its committed run took (nbclient stores each cell's start and end in its metadata), a test module 1.
- Markers: notebooks are `slow` (they start kernels, and most start servers), so `pytest -m "not slow"` is a
  fast tier for authors.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from functools import cache
from pathlib import Path

import pytest
from xdist.scheduler import LoadScopeScheduling

from tests import jupyterlab

ROOT = Path(__file__).resolve().parents[1]
KERNEL_START = 3.0  # seconds a notebook costs before its first cell (a kernel and the setup cell's imports)
LOADED = 1.4  # a notebook's committed run had the machine to itself; in the test run it shares it
WEIGHTS = {  # seconds on a 2-core machine under the test run's own load, from `--durations=0`: the heavy scopes
    "solutions/03-async-views.ipynb": 64,  # its exercise probes wait out deadlines and event intervals
    "solutions/09-capstone.ipynb": 58,  # its exercise probes start daphne and a worker each
    "solutions/08-key-considerations.ipynb": 37,
    "solutions/01-sync-vs-async.ipynb": 34,
    "notebooks/01-sync-vs-async.ipynb": 30,
    "tests/course/test_jupyterhub.py": 30,  # a hub, its proxy, three learners' JupyterLabs, kernels and servers
    "tests/lab/test_loadgen.py": 20,
    "tests/sandbox/test_considerations.py": 19,
    "solutions/06-channels-websockets.ipynb": 19,
    "notebooks/08-key-considerations.ipynb": 18,
    "tests/course/test_classroom.py": 18,  # grades two notebooks at a time
    "solutions/05-async-middleware.ipynb": 17,
    "tests/course/test_cli.py": 16,
    "solutions/07-background-tasks.ipynb": 16,
    "notebooks/06-channels-websockets.ipynb": 15,
    "tests/lab/test_postgres.py": 15,
    "tests/lab/test_servers.py": 13,
    "notebooks/09-capstone.ipynb": 12,
    "notebooks/07b-task-queues-compared.ipynb": 11,
    "notebooks/08c-servers-and-testing.ipynb": 10,
    "notebooks/07-background-tasks.ipynb": 9,
    "tests/course/test_site.py": 9,
    "tests/sandbox/test_asyncviews.py": 9,
    "tests/test_notebook_run.py": 8,
    "tests/test_benchmark.py": 7,
    "solutions/04-async-orm.ipynb": 7,
    "solutions/02-djangos-async-support.ipynb": 7,
    "tests/sandbox/test_chat.py": 6,
    "tests/lab/test_services.py": 6,
    "tests/sandbox/test_capstone.py": 5,
}


def scope_of(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    if path in jupyterlab.BROWSER_NOTEBOOKS or path == "tests/test_jupyterlab_browser.py":
        return jupyterlab.GROUP
    return path


@cache
def notebook_seconds(path: Path) -> float:
    """What the committed run of a notebook took, from its cells' execution metadata."""
    total = KERNEL_START
    for cell in json.loads(path.read_text())["cells"]:
        stamps = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in stamps and "shell.execute_reply" in stamps:
            start, end = (datetime.fromisoformat(stamps[k]) for k in ("iopub.execute_input", "shell.execute_reply"))
            total += (end - start).total_seconds()
    return total


def weight_of(scope: str, path: Path) -> float:
    """What a scope costs; `path` is the file of one of its items."""
    if scope in WEIGHTS:
        return WEIGHTS[scope]
    if scope == jupyterlab.GROUP:  # JupyterLab and Chromium start, then the two notebooks run through the UI
        return 30 + LOADED * sum(notebook_seconds(ROOT / p) for p in jupyterlab.BROWSER_NOTEBOOKS)
    if path.suffix == ".ipynb":
        return LOADED * notebook_seconds(path)
    return 1


class CourseScheduling(LoadScopeScheduling):
    """pytest-xdist's scope scheduling, with the course's scopes, in the order collection left them."""

    def _split_scope(self, nodeid: str) -> str:
        return scope_of(nodeid)


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_auto_num_workers(config) -> int:
    """One worker more than cores on a machine that is otherwise idle, one per core on a busy one.

    Most of a run waits (deadlines, event intervals, servers starting): with one worker per core about half of the
    CPU stays idle, and the verdicts count rather than time. Measured on 2 cores: 313 s with 2 workers, 269 s with
    3. But 3 workers beside another busy process left the kernels' event loops stalled by the operating system for
    0.3 s and more, so the extra worker is taken only when the machine is free when the run starts.
    """
    import psutil

    cores = os.cpu_count() or 1
    in_use = psutil.cpu_percent(interval=0.5) * cores / 100  # cores other processes keep busy right now
    return cores + 1 if in_use < 0.5 else cores


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    config.option.loadscopereorder = False  # keep the heaviest-first order of pytest_collection_modifyitems
    return CourseScheduling(config, log)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by the markers added here
def pytest_collection_modifyitems(session, config, items):
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)
    weights = {}
    for item in items:
        scope = scope_of(item.nodeid)
        if scope not in weights:
            weights[scope] = weight_of(scope, item.path)
    # Heaviest scope first; within the JupyterLab scope its tests (which see JupyterLab as it opened) before its
    # notebooks. The sort is stable: the cells of a notebook keep their order.
    items.sort(key=lambda item: (-weights[scope_of(item.nodeid)], scope_of(item.nodeid), item.path.suffix == ".ipynb"))
