"""A real load generator from a cell: locust, headless, against one URL; and a side-by-side comparison of servers.

`lab.fire` (load.py) sends a fixed batch of requests and records each one; this module measures a server the
way a load test does: N users in a closed loop for a few seconds, then requests per second and latency
percentiles, read from locust's own CSV report. Locust runs as a child process tied to the kernel, like the
servers, and on the same machine as the server: on a 2-core laptop the two compete for the CPU, so the numbers
are comparisons between servers measured the same way, not capacity figures.
"""

from __future__ import annotations

import asyncio
import csv
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from sandbox.lab.boot import data_dir
from sandbox.lab.load import sample
from sandbox.lab.servers import ServerError, child_env, spawn, start_server

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
COMPARED = ("daphne", "uvicorn", "hypercorn", "granian", "wsgi")  # every server kind but the slow upstream


@dataclass(frozen=True)
class LoadResult:
    server: str
    users: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    requests: int
    failures: int
    threads: int = 0  # the most threads the server's processes held during the window (0: not sampled)

    def __str__(self) -> str:
        return (f"{self.server:<10} {self.users:>5} users  {self.rps:8.1f} req/s  p50 {self.p50_ms:6.0f} ms  "
                f"p95 {self.p95_ms:6.0f} ms  p99 {self.p99_ms:6.0f} ms  {self.failures} failed of {self.requests}")


def _read_report(prefix: Path, server: str, users: int) -> LoadResult:
    with open(f"{prefix}_stats.csv", newline="") as report:
        row = next(r for r in csv.DictReader(report) if r["Name"] == "Aggregated")
    number = lambda key: float(row[key]) if row[key] not in ("", "N/A") else float("nan")  # noqa: E731
    return LoadResult(server, users, number("Requests/s"), number("50%"), number("95%"), number("99%"),
                      int(row["Request Count"]), int(row["Failure Count"]))


async def _wait_for(proc: subprocess.Popen[bytes], log: Path, text: str, deadline: float) -> None:
    """Until `text` is in locust's log; a clear error when locust exits first or the deadline passes."""
    while text not in (log.read_text(errors="replace") if log.exists() else ""):
        if proc.poll() is not None:
            raise ServerError(f"locust exited (code {proc.returncode}) before it started:\n{log.read_text()[-2000:]}")
        if time.perf_counter() > deadline:
            raise ServerError(f"locust did not start its users in time:\n{log.read_text()[-2000:]}")
        await asyncio.sleep(0.05)


async def locust(url: str, *, users: int = 16, seconds: float = 2.0, label: str = "",
                 timeout: float = 60.0) -> LoadResult:
    """Run locust against `url` (a full URL): `users` concurrent users, no think time, for `seconds` measured
    from the moment all have started (locust resets its statistics then). Returns a LoadResult; its `rps` is
    locust's: the requests completed divided by the time from that reset to the last of them.

    The window is timed here, not with locust's `-t`: its run time counts from the launch of the program, so on
    a busy machine a slow start-up ate the whole of a short run (measured: `-t 2s` reported 70 ms of requests
    while a test suite ran). When the window is over, SIGTERM makes locust stop and write its report.
    """
    if seconds <= 0:
        raise ValueError(f"seconds={seconds}: a load test needs a window of time")
    target = urlsplit(url)
    path = target.path + (f"?{target.query}" if target.query else "")
    folder = data_dir() / "load"
    folder.mkdir(parents=True, exist_ok=True)
    prefix = folder / f"{label or 'run'}-{users}-{time.monotonic_ns()}"
    # a program of its own (exe:), not a module run inside the tie process: gevent must patch before any thread
    command = [f"exe:{sys.executable}", "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
               "--reset-stats", "-u", str(users), "-r", str(max(users, 1) * 10), "--stop-timeout", "2",
               "--host", f"{target.scheme}://{target.netloc}", "--csv", str(prefix), "--loglevel", "INFO"]
    log = prefix.with_suffix(".log")
    proc = spawn(command, log, child_env({"COURSE_LOAD_PATH": path or "/"}))
    deadline = time.perf_counter() + timeout
    try:
        await _wait_for(proc, log, "All users spawned", deadline)
        await asyncio.sleep(seconds)
        proc.send_signal(signal.SIGTERM)  # the tie process passes it on; locust then writes its report
        while proc.poll() is None:
            if time.perf_counter() > deadline:
                raise ServerError(f"locust did not stop within {timeout} s")
            await asyncio.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    if not Path(f"{prefix}_stats.csv").exists():
        raise ServerError(f"locust wrote no report (exit code {proc.returncode}):\n{log.read_text()[-2000:]}")
    return _read_report(prefix, label or target.netloc, users)


async def compare_servers(path: str, *, kinds: Sequence[str] = COMPARED,
                          users: Sequence[int] = (1, 16, 64), seconds: float = 1.5, threads: int = 4,
                          quiet: bool = False) -> list[LoadResult]:
    """Serve the sandbox with each server in turn and load `path` at each concurrency level with locust; while
    locust runs, sample the server's threads (its whole process tree) and keep the peak in each row's `threads`.

    One server runs at a time (they would compete for the CPU); each is stopped before the next starts. Unless
    `quiet`, one line is printed per server once its levels are done.
    """
    rows = []
    for kind in kinds:
        server = await start_server(kind, threads=threads, quiet=True)
        try:
            for n in users:
                async with sample(server, every=0.1) as usage:
                    result = await locust(server.url + path, users=n, seconds=seconds, label=kind)
                rows.append(replace(result, threads=usage.peak_threads))
            if not quiet:
                print(f"{kind}: " + ", ".join(f"{r.users} users {r.rps:.0f} req/s" for r in rows if r.server == kind))
        finally:
            server.stop()
    return rows


def compare_table(rows: Sequence[LoadResult]) -> str:
    """One line per server: requests per second, 95th-percentile latency and peak server threads at each
    concurrency level, then the failures (when any)."""
    levels = sorted({r.users for r in rows})
    by = {(r.server, r.users): r for r in rows}
    width = 7 * len(levels)
    out = [f"{'':10} {'requests per second':>{width}}   {'p95 latency (ms)':>{width}}   {'server threads':>{width}}",
           f"{'users':<10} " + "   ".join("".join(f"{n:>7}" for n in levels) for _ in range(3))]
    for server in dict.fromkeys(r.server for r in rows):
        cells = [by.get((server, n)) for n in levels]

        def column(value: Callable[[LoadResult], str], cells: list[LoadResult | None] = cells) -> str:
            return "".join(f"{value(c):>7}" if c else f"{'-':>7}" for c in cells)

        out.append(f"{server:<10} " + "   ".join((column(lambda c: f"{c.rps:.0f}"),
                                                  column(lambda c: f"{c.p95_ms:.0f}"),
                                                  column(lambda c: str(c.threads or "-")))))
    failed = [r for r in rows if r.failures]
    out.append("failed: " + (", ".join(f"{r.server} at {r.users} users {r.failures} of {r.requests}" for r in failed)
                             if failed else f"none of {sum(r.requests for r in rows)} requests"))
    return "\n".join(out)
