"""What one learner costs a shared machine, chapter by chapter: the figure a teacher plans a JupyterHub on.

Run it as `uv run python benchmarks/classroom.py [notebooks/06*.ipynb ...]`. It runs each lesson notebook once, one
at a time, top to bottom in a fresh kernel (as Run All would), while a sampler reads the kernel's whole process tree
every 0.2 s: the kernel and every server, worker, Redis and PostgreSQL it starts. Per chapter it prints the wall
time, the CPU seconds the tree used (user + system, each process counted at its last sample, so a process that
lived less than 0.2 s is missed) and the peak memory (the largest sum of the tree's resident set sizes at one
sample; shared pages are counted once per process, so the figure errs high). Last, the memory of an idle
JupyterLab server, which every learner on a hub has besides their kernels.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient

from sandbox.paths import REPO

EVERY = 0.2  # seconds between samples


@dataclass
class Usage:
    """What one chapter's process tree used."""

    wall: float = 0.0
    peak_rss: int = 0
    peak_processes: int = 0
    cpu: dict[int, float] = field(default_factory=dict)  # pid: CPU seconds at its last sample
    error: str = ""

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu.values())


def sample(root: psutil.Process, usage: Usage) -> None:
    """One look at the tree under `root`: memory now, CPU so far per process."""
    try:
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    rss = 0
    for proc in tree:
        try:
            with proc.oneshot():
                rss += proc.memory_info().rss
                times = proc.cpu_times()
                usage.cpu[proc.pid] = times.user + times.system
        except psutil.Error:
            continue
    usage.peak_rss = max(usage.peak_rss, rss)
    usage.peak_processes = max(usage.peak_processes, len(tree))


async def measure(path: Path) -> Usage:
    """Run one notebook in a fresh kernel, sampling its process tree until the kernel is gone."""
    nb = nbformat.read(path, as_version=4)
    os.environ["JPY_SESSION_NAME"] = str(path.relative_to(REPO))  # its own data directory, as JupyterLab gives it
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    usage = Usage()
    done = asyncio.Event()

    async def sampler() -> None:
        while not done.is_set():
            process = getattr(getattr(client.km, "provisioner", None), "process", None)
            if process is not None:
                try:
                    sample(psutil.Process(process.pid), usage)
                except psutil.NoSuchProcess:
                    pass
            await asyncio.sleep(EVERY)

    task = asyncio.create_task(sampler())
    t0 = time.perf_counter()
    try:
        await client.async_execute()
    except Exception as exc:  # a failed cell is reported in the table, not raised: the other chapters still run
        usage.error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1][:80]}"
    finally:
        usage.wall = time.perf_counter() - t0
        done.set()
        await task
    return usage


def idle_jupyterlab_mb(seconds: float = 8.0) -> float:
    """The resident memory of a JupyterLab server with no kernel, after it has settled."""
    proc = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.port=0",
                             "--ServerApp.ip=127.0.0.1", "--ServerApp.allow_root=True",
                             f"--ServerApp.root_dir={REPO}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(seconds)
        return psutil.Process(proc.pid).memory_info().rss / 2**20
    finally:
        proc.terminate()
        proc.wait(30)


def main(argv: list[str]) -> int:
    paths = [Path(p).resolve() for p in argv] or sorted((REPO / "notebooks").glob("*.ipynb"))
    print(f"{psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.1f} GB; one notebook at a time\n")
    print("| Chapter | Wall (s) | CPU (s) | Peak memory (MB) | Peak processes | |")
    print("|---|---:|---:|---:|---:|---|")
    for path in paths:
        usage = asyncio.run(measure(path))
        print(f"| {path.stem} | {usage.wall:.0f} | {usage.cpu_seconds:.0f} | {usage.peak_rss / 2**20:.0f} | "
              f"{usage.peak_processes} | {usage.error} |", flush=True)
    print(f"\nAn idle JupyterLab server (one per learner on a hub): {idle_jupyterlab_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
