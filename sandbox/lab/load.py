"""Load from a cell: N concurrent requests or WebSocket connections, each one's start, end and thread recorded,
and a sampler for a server's threads and memory while the load runs."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import httpx

from sandbox.lab.servers import Server

if TYPE_CHECKING:  # websockets loads when the first connection opens, not with the toolkit
    from websockets.asyncio.client import ClientConnection


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
    began: float | None = None  # the server's clock when its view started, if the view is `stamped`

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class Run:
    label: str
    records: list[Record]
    wall: float
    clock: float = 0.0  # time.time() when the run started: maps the server's stamps onto the run's seconds

    def stamps(self, r: Record) -> tuple[float, float] | None:
        """When `r`'s view started and ended on the run's clock, if the view said (a `stamped` view)."""
        if r.began is None or r.at is None:
            return None
        return r.began - self.clock, r.at - self.clock

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


def _facts_of(response: httpx.Response) -> tuple[str | None, float | None, float | None]:
    """The thread that answered and the server's clock at the view's start and answer, when the view says."""
    try:
        body = response.json()
        return body.get("thread"), body.get("at"), body.get("began")
    except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
        return None, None, None


async def fire(target: Server | httpx.AsyncClient, path: str, n: int, *, label: str | None = None,
               timeout: float = 60.0) -> Run:
    """Send `n` GET requests to `path` at once and wait for all of them (at most `timeout` seconds).

    target: a Server (real HTTP over loopback) or an httpx client (for example `lab.client()`, in-process).
    A request that fails or is still open at the deadline is recorded with its error, not raised.
    """
    if isinstance(target, httpx.AsyncClient):
        client, own = target, False
    else:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
        client, own = httpx.AsyncClient(base_url=target.url, timeout=timeout, limits=limits), True
    t0, clock = time.perf_counter(), time.time()
    records = [Record(i, 0.0, 0.0, None, error="TimeoutError: no answer before the deadline") for i in range(n)]

    async def one(i: int) -> None:
        records[i].start = time.perf_counter() - t0
        try:
            response = await client.get(path)
            records[i].status, records[i].error = response.status_code, None
            records[i].thread, records[i].at, records[i].began = _facts_of(response)
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
    return Run(label or path, records, wall, clock)


class Closable(Protocol):
    """A connection `hold` can close: a WebSocket, a chat tab, anything with an awaitable `close()`."""

    def close(self) -> Awaitable[object]: ...


@contextlib.asynccontextmanager
async def hold[C: Closable](n: int, open_one: Callable[[], Awaitable[C]], *, timeout: float = 60.0,
                            batch: int = 100) -> AsyncIterator[list[C]]:
    """Open `n` connections with `open_one()` and keep them open inside the `async with` block; yields the list.

    In batches (a server's accept backlog is finite); the first connection that fails to open fails the block, and
    every connection opened is closed at its end.
    """
    conns: list[C] = []
    try:
        async with asyncio.timeout(timeout):
            for first in range(0, n, batch):
                opened = await asyncio.gather(*(open_one() for _ in range(first, min(n, first + batch))),
                                              return_exceptions=True)
                conns += [c for c in opened if not isinstance(c, BaseException)]
                failed = [c for c in opened if isinstance(c, BaseException)]
                if failed:
                    raise failed[0]
        yield conns
    finally:
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)


@contextlib.asynccontextmanager
async def hold_websockets(url: str, n: int, *, timeout: float = 60.0,
                          batch: int = 100) -> AsyncIterator[list[ClientConnection]]:
    """Open `n` WebSockets to `url` and keep them open inside the `async with` block; yields the list.

    Sends an Origin header for the server's own host: Channels' AllowedHostsOriginValidator refuses
    connections without one.
    """
    from websockets.asyncio.client import connect
    from websockets.typing import Origin

    origin = Origin("http://" + url.split("://", 1)[1].split("/", 1)[0])
    async with hold(n, lambda: connect(url, origin=origin, open_timeout=timeout), timeout=timeout,
                    batch=batch) as conns:
        yield conns


@contextlib.asynccontextmanager
async def periodic(every: float, call: Callable[[], object], *, last: bool = True) -> AsyncIterator[None]:
    """Call `call()` (sync, or async and awaited) every `every` seconds while the block runs, and once more at its
    end when `last`: the loop behind every sampler and heartbeat of the course."""
    async def once() -> None:
        result = call()
        if inspect.isawaitable(result):
            await result

    async def loop() -> None:
        while True:
            await once()
            await asyncio.sleep(every)

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)  # the first call happens before the block's first step
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if last:
            await once()


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
async def sample(server: Server, every: float = 0.1) -> AsyncIterator[Samples]:
    """Sample the server's thread count and memory every `every` seconds while the block runs."""
    import psutil

    samples, t0 = Samples(), time.perf_counter()

    def take() -> None:
        with contextlib.suppress(psutil.NoSuchProcess):  # a server that died: its error matters more
            usage = server.usage()
            samples.rows.append((time.perf_counter() - t0, usage.threads, usage.rss_mb))

    async with periodic(every, take):
        yield samples
