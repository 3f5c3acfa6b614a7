"""`boot()`: the one setup cell of every notebook.

It gives the notebook its own data directory (shared with the servers it starts), sets Django up, migrates
in a worker thread (a notebook cell runs inside an event loop, where the sync ORM refuses to run) and seeds
deterministic rows. It never sets DJANGO_ALLOW_ASYNC_UNSAFE: the course teaches the error that variable hides.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import re
import resource
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from sandbox.paths import DATA_ROOT

SETTINGS = "sandbox.settings"


@dataclass(frozen=True)
class BootInfo:
    notebook: str
    data_dir: Path
    django: str
    items: int
    seconds: float

    def __repr__(self) -> str:
        """The cell's result when `await lab.boot()` ends the setup cell: stable facts only, no timings."""
        return (f"sandbox ready: Django {self.django}, {self.items} catalogue items, "
                f"data in .course-data/{self.notebook}-*")


_booted: BootInfo | None = None


def sized[T](full: T, test: T) -> T:
    """`full`, or `test` during the course's own test run (COURSE_TEST_RUN is set in every process it starts).

    The one switch for heavy measurements: a notebook's committed outputs come from a full-size run, the test run
    repeats the same code at a size that fits a busy machine, and `benchmarks/` reproduces the full-size figures.
    """
    return test if os.environ.get("COURSE_TEST_RUN") else full


def notebook_name() -> str:
    """The notebook's stem: JupyterLab and the test harness pass its path in JPY_SESSION_NAME."""
    session = os.environ.get("JPY_SESSION_NAME", "")
    stem = Path(session).stem if session else "kernel"
    return re.sub(r"[^A-Za-z0-9_.-]", "-", stem) or "kernel"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prune_data_dirs(root: Path = DATA_ROOT) -> list[Path]:
    """Remove data directories whose kernel is gone (nbval SIGKILLs kernels, so they cannot clean up)."""
    removed = []
    for path in root.glob("*-[0-9]*"):
        pid = path.name.rsplit("-", 1)[-1]
        if path.is_dir() and pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _raise_file_limit() -> None:
    """Lift the soft open-files limit to the hard one: the connection demos open a thousand sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))


def migrate() -> None:
    """Migrate the notebook's database. Runs in a worker thread (`asyncio.to_thread`), where the sync ORM is
    allowed; closes that thread's connection after."""
    from django.core.management import call_command
    from django.db import connections

    try:
        call_command("migrate", verbosity=0, interactive=False)
    finally:
        connections.close_all()


SEEDS = ["sandbox.catalog.seed", "sandbox.library.seed"]


async def _seed() -> int:
    """Run every app's idempotent `aseed()`; return the catalogue's item count (the number boot reports)."""
    counts = [await importlib.import_module(name).aseed() for name in SEEDS]
    return counts[0]


async def boot(*, timeout: float = 60) -> BootInfo:
    """Set the sandbox up for this notebook. Idempotent: a second call returns the first call's facts.

    Returns a `BootInfo`, which a notebook shows as the setup cell's result.
    """
    global _booted
    if _booted is not None:
        return _booted
    start = time.perf_counter()
    async with asyncio.timeout(timeout):
        name = notebook_name()
        DATA_ROOT.mkdir(parents=True, exist_ok=True)
        prune_data_dirs()
        data_dir = DATA_ROOT / f"{name}-{os.getpid()}"
        data_dir.mkdir(exist_ok=True)
        os.environ["SANDBOX_DATA_DIR"] = str(data_dir)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
        _raise_file_limit()

        import django

        django.setup()
        await asyncio.to_thread(migrate)
        items = await _seed()
    _booted = BootInfo(name, data_dir, django.get_version(), items, time.perf_counter() - start)
    return _booted


def data_dir() -> Path:
    """This notebook's data directory; `boot()` must have run."""
    if _booted is None:
        raise RuntimeError("the sandbox is not booted yet: run `await lab.boot()` first")
    return _booted.data_dir
