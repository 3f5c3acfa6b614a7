"""Load from a cell: N concurrent requests or WebSocket connections, each one's start, end and thread recorded,
and a sampler for a server's threads and memory while the load runs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field

import httpx


@dataclass
class Record:
    """One request: seconds from the start of the run, and the server thread that answered (if it said)."""

    index: int
    start: float
    end: float
    status: int | None
    thread: str | None = None
    error: str | None = None
    at: float | None = None  # the server's clock when its view answered, if the view says (`_who`)

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class Run:
    label: str
    records: list[Record]
    wall: float

    @property
    def threads(self) -> set[str]:
        return {r.thread for r in self.records if r.thread}

    @property
    def errors(self) -> list[Record]:
        return [r for r in self.records if r.error or (r.status or 0) >= 400]

    def at_once(self, seconds: float) -> int:
        """The most views provably running at the same moment, when each spent at least `seconds` before answering.

        A view that answered at time t was running during [t - seconds, t]; the most of those intervals that share
        a moment is a lower bound of how many ran together. It counts, it does not time: a busy machine can delay
        every answer, but it cannot make views that ran one after another (answers at least `seconds` apart) look
        as if they overlapped. The server's clock is used when the views report it, else the client's (in-process,
        where the client's clock is the server's).
        """
        ends = sorted(r.at if r.at is not None else r.end for r in self.records if not r.error)
        return max((sum(1 for e in ends if t - seconds < e <= t) for t in ends), default=0)

    def summary(self) -> str:
        n = len(self.records)
        return (f"{self.label}: {n} request{'s' * (n != 1)} in {self.wall:.2f} s, "
                f"{len(self.threads)} server thread(s), {len(self.errors)} error(s)")


def _facts_of(response: httpx.Response) -> tuple[str | None, float | None]:
    """The thread that answered and the server's clock at the answer, when the view says (`_who`)."""
    try:
        body = response.json()
        return body.get("thread"), body.get("at")
    except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
        return None, None


async def fire(target, path: str, n: int, *, label: str | None = None, timeout: float = 60.0) -> Run:
    """Send `n` GET requests to `path` at once and wait for all of them (at most `timeout` seconds).

    target: a Server (real HTTP over loopback) or an httpx client (for example `lab.client()`, in-process).
    A request that fails or is still open at the deadline is recorded with its error, not raised.
    """
    own = not isinstance(target, httpx.AsyncClient)
    client = target if not own else httpx.AsyncClient(
        base_url=target.url, timeout=timeout, limits=httpx.Limits(max_connections=None, max_keepalive_connections=0))
    t0 = time.perf_counter()
    records = [Record(i, 0.0, 0.0, None, error="TimeoutError: no answer before the deadline") for i in range(n)]

    async def one(i: int) -> None:
        records[i].start = time.perf_counter() - t0
        try:
            response = await client.get(path)
            records[i].status, records[i].error = response.status_code, None
            records[i].thread, records[i].at = _facts_of(response)
        except Exception as exc:  # a load test records failures instead of stopping at the first one
            records[i].error = f"{type(exc).__name__}: {exc}"
        records[i].end = time.perf_counter() - t0

    tasks = [asyncio.create_task(one(i)) for i in range(n)]
    try:
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    finally:
        if own:
            await client.aclose()
    wall = time.perf_counter() - t0
    for r in records:
        r.end = r.end or wall
    return Run(label or path, records, wall)


@contextlib.asynccontextmanager
async def hold_websockets(url: str, n: int, *, timeout: float = 60.0, batch: int = 100):
    """Open `n` WebSockets to `url` and keep them open inside the `async with` block.

    Sends an Origin header for the server's own host: Channels' AllowedHostsOriginValidator refuses
    connections without one. Yields the list of open connections.
    """
    from websockets.asyncio.client import connect

    origin = "http://" + url.split("://", 1)[1].split("/", 1)[0]
    conns = []
    try:
        async with asyncio.timeout(timeout):
            for first in range(0, n, batch):  # in batches: the server's accept backlog is finite
                opened = await asyncio.gather(
                    *(connect(url, origin=origin, open_timeout=timeout) for _ in range(first, min(n, first + batch))),
                    return_exceptions=True)
                conns += [c for c in opened if not isinstance(c, BaseException)]
                failed = [c for c in opened if isinstance(c, BaseException)]
                if failed:
                    raise failed[0]
        yield conns
    finally:
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)


@dataclass
class Samples:
    """What a sampler saw: (seconds, threads, rss MB) triples, and their peaks."""

    rows: list[tuple[float, int, float]] = field(default_factory=list)

    @property
    def peak_threads(self) -> int:
        return max((r[1] for r in self.rows), default=0)

    @property
    def peak_rss_mb(self) -> float:
        return max((r[2] for r in self.rows), default=0.0)


@contextlib.asynccontextmanager
async def sample(server, every: float = 0.1):
    """Sample the server's thread count and memory every `every` seconds while the block runs."""
    samples, t0 = Samples(), time.perf_counter()

    import psutil

    def take() -> None:
        with contextlib.suppress(psutil.NoSuchProcess):  # a server that died: its error matters more
            usage = server.usage()
            samples.rows.append((time.perf_counter() - t0, usage.threads, usage.rss_mb))

    async def loop():
        while True:
            take()
            await asyncio.sleep(every)

    task = asyncio.create_task(loop())
    try:
        yield samples
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        take()
