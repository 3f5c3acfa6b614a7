"""Measure the concurrency claims the course's notebooks make, with the same toolkit the notebooks use.

Run it as `uv run python benchmarks/concurrency.py [--markdown-out PATH]`. Progress goes to stderr, a
Markdown table (what, measured, target or claim, met) and the machine it ran on go to stdout. Every server is
a fresh `lab.start_server(...)` on loopback, so each row starts from a clean baseline; every await has a
timeout, and `lab.stop_all()` runs however the script ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx

from sandbox import lab

REPO = Path(__file__).resolve().parents[1]

# Run in a fresh interpreter: the boot a notebook pays in its first cell, imports included.
BOOT_PROBE = """
import asyncio, os, time
t0 = time.perf_counter()
os.environ["JPY_SESSION_NAME"] = "benchmark-boot"
from sandbox import lab
info = asyncio.run(lab.boot())
print(info.seconds, time.perf_counter() - t0)
"""


@dataclass
class Row:
    """One line of the table: a measured value against the claim the course makes about it."""

    what: str
    measured: str
    target: str
    met: bool | None = None


@dataclass
class Fanout:
    """Wall seconds of one fan-out request per view, and how many upstream calls overlapped in each."""

    async_seconds: float
    sync_seconds: float
    async_overlap: int
    sync_overlap: int


@dataclass
class Held:
    """Server usage while connections are held open: idle baseline and peak, plus what the load reported."""

    idle_threads: int
    idle_rss_mb: float
    peak_threads: int
    peak_rss_mb: float
    ok: int
    wall: float


def progress(message: str) -> None:
    """Progress on stderr, so stdout carries only the table and can be redirected into a page."""
    print(f"[benchmark] {message}", file=sys.stderr, flush=True)


def measure_boot(timeout: float = 60) -> tuple[float, float]:
    """`lab.boot()` in a fresh Python process: (boot's own seconds, the whole process's seconds)."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", BOOT_PROBE], cwd=REPO, capture_output=True, text=True,
                            timeout=timeout, check=True)
    boot_seconds, _ = map(float, result.stdout.split()[-2:])
    return boot_seconds, time.perf_counter() - start


async def measure_start(kind: str) -> float:
    """Seconds until a fresh server of `kind` answers HTTP (`Server.ready_after`); the server is stopped."""
    server = await lab.start_server(kind, quiet=True)
    try:
        return server.ready_after
    finally:
        server.stop()


async def _one_request(server, path: str, timeout: float) -> float:
    """Wall seconds of one request; a failed request is an error here, not a fast result."""
    run = await lab.fire(server, path, 1, timeout=timeout)
    if run.errors:
        raise RuntimeError(f"{path} failed: {run.errors[0]}\n{server.log_tail()}")
    return run.wall


async def _upstream_overlap(upstream, server, path: str, timeout: float) -> tuple[float, int]:
    """One request to `path`, and the most upstream calls that were in flight at once meanwhile."""
    async with httpx.AsyncClient(base_url=upstream.url, timeout=5) as client:
        await client.get("/reset")
        seconds = await _one_request(server, path, timeout)
        stats = (await client.get("/stats")).json()
    return seconds, stats["max_in_flight"]


async def measure_fanout(n: int = 5, seconds: float = 1.0) -> Fanout:
    """One request that makes `n` upstream calls of `seconds` each: gathered (async) vs in turn (sync)."""
    upstream = await lab.start_upstream(quiet=True)
    server = await lab.start_server("uvicorn", quiet=True)  # after the upstream: it inherits its URL
    timeout = n * seconds + 30
    try:
        for view in ("async", "sync"):  # the first call of each pays one-off imports and setup: not measured
            await _one_request(server, f"/fanout/{view}/?n=1&s=0", timeout)
        query = f"?n={n}&s={seconds}"
        fast, fast_overlap = await _upstream_overlap(upstream, server, "/fanout/async/" + query, timeout)
        slow, slow_overlap = await _upstream_overlap(upstream, server, "/fanout/sync/" + query, timeout)
    finally:
        server.stop()
        upstream.stop()
    return Fanout(fast, slow, fast_overlap, slow_overlap)


async def measure_held_requests(view: str, n: int, seconds: float = 4.0) -> Held:
    """`n` requests in flight at once to `/wait/<view>/` on a fresh uvicorn, sampled while they wait."""
    server = await lab.start_server("uvicorn", quiet=True)
    try:
        idle = server.usage()
        async with lab.sample(server) as samples:
            task = asyncio.create_task(lab.fire(server, f"/wait/{view}/?s={seconds}", n, timeout=60))
            run = await task
        ok = len(run.records) - len(run.errors)
        return Held(idle.threads, idle.rss_mb, samples.peak_threads, samples.peak_rss_mb, ok, run.wall)
    finally:
        server.stop()


async def _receive_all(conns, timeout: float = 10) -> list:
    """The next message on every connection (an exception in place of a message that did not come)."""
    return await asyncio.gather(*(asyncio.wait_for(c.recv(), timeout) for c in conns), return_exceptions=True)


def _count(messages: list, key: str, value) -> int:
    return sum(1 for m in messages if isinstance(m, str) and json.loads(m).get(key) == value)


async def measure_websockets(n: int) -> Held:
    """`n` open WebSockets on the Channels consumer (daphne), then one broadcast: who received it."""
    server = await lab.start_server("daphne", quiet=True)
    try:
        idle = server.usage()
        start = time.perf_counter()
        url = server.ws_url + "/ws/hold/"
        async with lab.sample(server) as samples, lab.hold_websockets(url, n) as conns:
            hellos = _count(await _receive_all(conns), "hello", True)
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
                (await client.get("/broadcast/?text=x")).raise_for_status()
            received = _count(await _receive_all(conns), "broadcast", "x")
        if hellos != n:
            progress(f"only {hellos} of {n} WebSockets got their hello")
        return Held(idle.threads, idle.rss_mb, samples.peak_threads, samples.peak_rss_mb, received,
                    time.perf_counter() - start)
    finally:
        server.stop()


@dataclass
class Crowd:
    """Chapter 06's crowd: `n` chat connections of one user, one message to all of them, then all of them gone."""

    opened_seconds: float
    received: int
    idle_threads: int
    held_threads: int
    peak_threads: int
    idle_rss_mb: float
    held_rss_mb: float
    gone_seconds: float


async def measure_crowd(n: int) -> Crowd:
    """Chapter 06's 1,000 chat connections as its notebook opens them (`sandbox.lab.experiments.chat_clients`), on
    a fresh daphne."""
    from sandbox.lab.experiments import chat_clients as clients

    server = await lab.start_server("daphne", quiet=True)
    try:
        crowd, idle = await clients.login_cookie("crowd"), server.usage()
        start = time.perf_counter()
        async with lab.sample(server) as samples, clients.hold_chats(server, "stadium", crowd, n) as tabs:
            opened, held = time.perf_counter() - start, server.usage()
            await tabs[0].send(json.dumps({"text": "GOAL!"}))
            heard = await asyncio.gather(*(clients.next_event(ws, "message", timeout=30) for ws in tabs),
                                         return_exceptions=True)
        gone = await clients.wait_until_empty("stadium", timeout=300)
        received = sum(isinstance(h, dict) and h.get("text") == "GOAL!" for h in heard)
        return Crowd(opened, received, idle.threads, held.threads, samples.peak_threads, idle.rss_mb, held.rss_mb,
                     gone)
    finally:
        server.stop()


async def measure_blocking(n: int = 5, seconds: float = 0.5) -> tuple[float, float]:
    """`n` concurrent requests to an async view calling time.sleep, and to one that awaits: wall seconds."""
    server = await lab.start_server("uvicorn", quiet=True)
    try:
        blocking = await lab.fire(server, f"/wait/blocking/?s={seconds}", n, timeout=n * seconds + 30)
        awaiting = await lab.fire(server, f"/wait/async/?s={seconds}", n, timeout=seconds + 30)
        for run in (blocking, awaiting):
            if run.errors:
                raise RuntimeError(f"{run.label} failed: {run.errors[0]}")
        return blocking.wall, awaiting.wall
    finally:
        server.stop()


def held_row(label: str, held: Held, n: int, target: str, met: bool) -> Row:
    """A held-connections result as a row: peak against idle, and how many connections completed."""
    measured = (f"peak {held.peak_threads:,} threads, {held.peak_rss_mb:.0f} MB RSS "
                f"(idle {held.idle_threads} threads, {held.idle_rss_mb:.0f} MB); "
                f"{held.ok:,}/{n:,} ok in {held.wall:.1f} s")
    return Row(label, measured, target, met)


def spread(values: list[float]) -> str:
    """Median and range: the machine may be shared, so one run of a 1-2 s timing is not enough."""
    if len(values) == 1:
        return f"{values[0]:.2f} s"
    return f"{statistics.median(values):.2f} s (median of {len(values)}; {min(values):.2f}-{max(values):.2f})"


async def boot_and_start_rows(repeat: int) -> list[Row]:
    """Boot in a fresh process, then the start time of each server kind, one at a time (2 cores)."""
    progress(f"boot() in a fresh Python process, {repeat} time(s)")
    boots = [await asyncio.to_thread(measure_boot) for _ in range(repeat)]
    boot_seconds = [b for b, _ in boots]
    process = statistics.median(p for _, p in boots)
    rows = [Row("`lab.boot()` in a fresh process (`BootInfo.seconds`)",
                f"{spread(boot_seconds)}; whole process with imports {process:.2f} s",
                "≤ 1 s", statistics.median(boot_seconds) <= 1.0)]
    for kind in ("daphne", "uvicorn", "wsgi"):
        progress(f"start time of {kind}, {repeat} time(s)")
        ready = [await measure_start(kind) for _ in range(repeat)]
        rows.append(Row(f"{kind} start (`Server.ready_after`)", spread(ready), "≤ 2 s",
                        statistics.median(ready) <= 2.0))
    return rows


async def fanout_rows() -> list[Row]:
    """The one place async wins within a single request: overlapping upstream calls."""
    progress("fan-out: 5 upstream calls of 1 s in one request, async vs sync (uvicorn)")
    f = await measure_fanout(5, 1.0)
    return [
        Row("fan-out, async view: 1 request, 5 upstream calls × 1 s",
            f"{f.async_seconds:.2f} s ({f.async_overlap} calls at once)", "≤ 1.3 s", f.async_seconds <= 1.3),
        Row("fan-out, sync view: 1 request, 5 upstream calls × 1 s",
            f"{f.sync_seconds:.2f} s ({f.sync_overlap} call at a time)", "≥ 5 s", f.sync_seconds >= 5.0),
    ]


async def held_rows(n: int) -> list[Row]:
    """Threads and memory per long-lived connection: Django requests vs a Channels consumer."""
    rows = []
    for view in ("async", "sync"):
        progress(f"{n} in-flight requests to /wait/{view}/?s=4 (uvicorn)")
        held = await measure_held_requests(view, n)
        rows.append(held_row(f"{n:,} in-flight requests, {view} view `/wait/{view}/?s=4` (uvicorn)", held, n,
                             "one thread per in-flight request (Django's ASGI handler)",
                             held.peak_threads >= n and held.ok == n))
    progress(f"{n} open WebSockets on /ws/hold/ (daphne) and one broadcast")
    ws = await measure_websockets(n)
    row = held_row(f"{n:,} open WebSockets, Channels consumer `/ws/hold/` (daphne)", ws, n,
                   "a few threads for all connections; the broadcast reaches every one",
                   ws.peak_threads <= 10 and ws.ok == n)
    row.measured = row.measured.replace(" ok in", " received the broadcast; opened and broadcast in")
    return [*rows, row]


async def chapter_rows(n: int) -> list[Row]:
    """The full-size figures of cells that the course's own test run repeats smaller (`lab.sized`)."""
    progress("chapter 01: 400 in-flight requests to /wait/async/?s=3 (uvicorn)")
    held = await measure_held_requests("async", 400, seconds=3)
    rows = [held_row("chapter 01: 400 in-flight requests, async view `/wait/async/?s=3` (uvicorn)", held, 400,
                     "one thread per in-flight request", held.peak_threads >= 400 and held.ok == 400)]
    progress(f"chapter 06: {n} chat connections on one daphne, one message, then all leave")
    c = await measure_crowd(n)
    per_connection = (c.held_rss_mb - c.idle_rss_mb) * 1024 / n
    rows.append(Row(f"chapter 06: {n:,} chat connections of one user (daphne)",
                    f"opened in {c.opened_seconds:.1f} s; {c.received:,}/{n:,} received the message; threads idle "
                    f"{c.idle_threads}, open {c.held_threads}, peak {c.peak_threads}; +{per_connection:.0f} KB per "
                    f"connection; every presence row gone {c.gone_seconds:.1f} s after they left",
                    "every connection hears the message, on a few threads; presence cleared",
                    c.received == n and c.peak_threads <= 10))
    return rows


async def blocking_rows() -> list[Row]:
    """time.sleep in an async view blocks the event loop: concurrent requests run one after another."""
    progress("5 concurrent requests: time.sleep(0.5) in an async view vs await asyncio.sleep(0.5) (uvicorn)")
    blocking, awaiting = await measure_blocking(5, 0.5)
    return [
        Row("5 concurrent requests, `time.sleep(0.5)` in an async view", f"{blocking:.2f} s",
            "serialised: ≈ 2.5 s", blocking >= 2.4),
        Row("5 concurrent requests, `await asyncio.sleep(0.5)`", f"{awaiting:.2f} s", "concurrent: ≈ 0.5 s",
            awaiting <= 1.0),
    ]


def machine() -> str:
    """Where the numbers come from: they mean little without the machine."""
    import django
    import psutil

    try:
        os_name = platform.freedesktop_os_release()["PRETTY_NAME"]
    except (OSError, AttributeError, KeyError):
        os_name = platform.platform()
    return (f"{os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.1f} GiB RAM, {os_name} "
            f"({platform.machine()}), Python {platform.python_version()}, Django {django.get_version()}, "
            f"run {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")


def markdown(rows: list[Row], seconds: float) -> str:
    """The table, then the machine line and the run's duration."""
    mark = {True: "yes", False: "**no**", None: ""}
    lines = ["| What | Measured | Target / claim | Met |", "|---|---|---|---|"]
    lines += [f"| {r.what} | {r.measured} | {r.target} | {mark[r.met]} |" for r in rows]
    lines += ["", f"Machine: {machine()}. The benchmark took {seconds:.0f} s."]
    return "\n".join(lines) + "\n"


async def main(argv: list[str] | None = None) -> str:
    """Boot, measure every claim in turn, print the table; servers are stopped whatever happens."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown-out", type=Path, help="also write the table (with the machine) here")
    parser.add_argument("--connections", type=int, default=1000, help="long-lived connections per case")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each boot and start timing")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    os.environ["JPY_SESSION_NAME"] = "benchmark"
    try:
        with contextlib.redirect_stdout(sys.stderr):  # stdout is for the table only
            await lab.boot()
        rows = await boot_and_start_rows(args.repeat)
        rows += await fanout_rows()
        rows += await held_rows(args.connections)
        rows += await blocking_rows()
        rows += await chapter_rows(args.connections)
    finally:
        lab.stop_all()
    text = markdown(rows, time.perf_counter() - start)
    print(text, end="")
    if args.markdown_out:
        args.markdown_out.write_text(text)
        progress(f"wrote {args.markdown_out}")
    return text


if __name__ == "__main__":
    asyncio.run(main())
