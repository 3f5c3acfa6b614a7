"""Running the auction from a notebook: its processes, a WebSocket that watches a lot, bids sent all at once, and
the database's write lock held for a moment (the worst interleaving of concurrent bids, on purpose).

The lesson and the exercise checks share these helpers, so both run the app the same way: daphne serves the
live package's view and consumer, a `db_worker` runs its task, and the two talk through a private Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import sqlite3
import sys
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import httpx
from django.conf import settings

from sandbox.lab.boot import data_dir
from sandbox.lab.servers import Server, start_server
from sandbox.lab.services import start_worker

if TYPE_CHECKING:  # models need Django set up, matplotlib is heavy: both are imported where they are used
    from django_tasks_db.models import DBTaskResult
    from matplotlib.figure import Figure

    from sandbox.capstone.models import Lot

PACKAGE = "auction_live"  # the learner's package, in the notebook's data directory
REFERENCE = "sandbox.capstone.reference"  # the course's reference implementation
SETTINGS = "sandbox.capstone.settings"
HOLD_MARGIN = 0.5  # seconds the write lock stays held after the last fraud check answered: time for every read


def workspace(name: str = PACKAGE) -> Path:
    """Create the learner's package (a folder with an `__init__.py`) in the data directory; return its path.

    The data directory goes on this kernel's `sys.path`, and on the PYTHONPATH of every process `start` starts:
    a worker and a server are other processes, and they can only run code that they can import.
    """
    root = data_dir()
    package = root / name
    package.mkdir(exist_ok=True)
    init = package / "__init__.py"
    if not init.exists():
        init.write_text('"""The live parts of the auction (chapter 09), written from the exercise notebook."""\n')
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return package


def import_fresh(module: str) -> ModuleType:
    """Import the learner's module as it is on disk now (a cell may have rewritten it since the last import)."""
    top = module.split(".")[0]
    for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
        del sys.modules[name]
    importlib.invalidate_caches()
    previous, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no .pyc: a rewrite within the same
    try:  # second, with the same size, would otherwise be read from a stale cache
        return importlib.import_module(module)
    finally:
        sys.dont_write_bytecode = previous


def process_env(package: str, process: str, redis: Server | None) -> dict[str, str]:
    """The environment of one of the app's processes: its settings, the live package, its name, the Redis."""
    path = [str(data_dir()), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    # A coroutine that is never awaited is reported with a RuntimeWarning. daphne, at its default verbosity, hands
    # Python's warnings to Twisted's logger and throws them away; as an error, the warning cannot be routed: it is
    # printed to stderr ("Exception ignored in: <coroutine ...>"), which is the process's log. Nothing else changes.
    warnings = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), "error:coroutine:RuntimeWarning"]))
    env = {"DJANGO_SETTINGS_MODULE": SETTINGS, "CAPSTONE_PACKAGE": package, "CAPSTONE_PROCESS": process,
           "PYTHONPATH": os.pathsep.join(path), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONWARNINGS": warnings}
    if redis is not None:
        env["SANDBOX_REDIS_URL"] = redis.url
    return env


@dataclass
class App:
    """The auction's processes: daphne (HTTP and WebSockets) and the db_worker (tasks); either may be absent."""

    package: str
    server: Server | None = None
    worker: Server | None = None

    def bid_url(self, lot_id: int, *, naive: bool = False) -> str:
        return f"{self._daphne().url}/capstone/lots/{lot_id}/bid{'-naive' if naive else ''}/"

    def feed_url(self, lot_id: int) -> str:
        return f"{self._daphne().ws_url}/ws/capstone/lots/{lot_id}/"

    def _daphne(self) -> Server:
        if self.server is None:
            raise RuntimeError(f"{self!r} has no server: it was started with server=False")
        return self.server

    def logs(self, lines: int = 400) -> str:
        return "\n".join(p.log_tail(lines) for p in (self.server, self.worker) if p is not None)

    def stop(self) -> None:
        for process in (self.worker, self.server):
            if process is not None:
                process.stop()

    def __repr__(self) -> str:
        parts = [f"{p.kind} pid {p.pid}" for p in (self.server, self.worker) if p is not None]
        return f"<auction app {self.package!r}: {', '.join(parts)}>"


async def start_daphne(package: str, *, redis: Server | None, quiet: bool = True) -> Server:
    return await start_server("daphne", app="sandbox.capstone.asgi:application",
                              env=process_env(package, "daphne", redis), quiet=quiet)


async def start_db_worker(package: str, *, redis: Server | None, quiet: bool = True) -> Server:
    # --interval 0.1: poll the task table every 0.1 s; no startup delay, no autoreloader; no system checks (they
    # would import every URLconf, the live package's views included, which a worker never needs).
    return await start_worker("db_worker", ["django", "db_worker", "--interval", "0.1", "--no-startup-delay",
                                            "--no-reload", "--skip-checks"], ready="Starting worker",
                              env=process_env(package, "db_worker", redis), quiet=quiet)


async def start(package: str = REFERENCE, *, redis: Server | None, server: bool = True, worker: bool = True,
                quiet: bool = True) -> App:
    """Start daphne and/or the db_worker for `package`, at once. If one fails, the other is stopped too."""
    starts = [start_daphne(package, redis=redis) if server else None,
              start_db_worker(package, redis=redis) if worker else None]
    started = await asyncio.gather(*(s for s in starts if s is not None), return_exceptions=True)
    failed = [p for p in started if isinstance(p, BaseException)]
    if failed:
        for p in started:
            if isinstance(p, Server):
                p.stop()
        raise failed[0]
    processes = iter([p for p in started if isinstance(p, Server)])
    app = App(package, next(processes) if server else None, next(processes) if worker else None)
    if not quiet:
        for process in (app.server, app.worker):
            if process is not None:
                where = f" on {process.url}" if process.port else ""
                print(f"{process.kind} ready{where} (pid {process.pid}) after {process.ready_after:.2f} s")
    return app


async def new_lot(title: str = "Vintage espresso machine", price: int = 100) -> Lot:
    from sandbox.capstone.models import Lot

    return await Lot.objects.acreate(title=title, current_price=price)


# --- a WebSocket that watches a lot --------------------------------------------------------------------------

@dataclass
class Feed:
    """What a WebSocket watching a lot received, in order; `close_code` once the server closed it."""

    url: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def until(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wait until `count` messages have arrived (or the socket closed, or `timeout` passed); return them all."""
        try:
            async with asyncio.timeout(timeout):
                while len(self.messages) < count and self.close_code is None:
                    self._arrived.clear()
                    await self._arrived.wait()
        except TimeoutError:
            pass
        return list(self.messages)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == kind]


@contextlib.asynccontextmanager
async def watch(url: str, *, timeout: float = 5.0) -> AsyncIterator[Feed]:
    """Open a WebSocket to `url` (with the Origin header a page of the site would send) and record what it
    receives until the block ends. Raises what `websockets` raises when the handshake is refused."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed
    from websockets.typing import Origin

    origin = Origin("http://" + url.split("://", 1)[1].split("/", 1)[0])
    feed = Feed(url)
    async with asyncio.timeout(timeout):
        socket = await connect(url, origin=origin, open_timeout=timeout)

    async def read() -> None:
        try:
            async for text in socket:
                feed.messages.append(json.loads(text))
                feed._arrived.set()
        except ConnectionClosed:
            pass
        feed.close_code = socket.close_code if socket.close_code is not None else 1006
        feed._arrived.set()

    reader = asyncio.create_task(read())
    try:
        yield feed
    finally:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(timeout):
                await socket.close()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


# --- bids ----------------------------------------------------------------------------------------------------

@dataclass
class Placed:
    """One bid's answer, and when it was sent and answered (seconds from the first bid sent)."""

    bidder: str
    amount: int
    status: int | None
    body: dict[str, Any] | str | None = None
    start: float = 0.0
    end: float = 0.0

    @property
    def accepted(self) -> bool:
        return self.status == 201


async def place_bids(url: str, bids: list[tuple[str, int]], *, timeout: float = 30.0) -> list[Placed]:
    """POST every (bidder, amount) to `url` at once, each on its own connection; the answers in the same order."""
    t0 = time.perf_counter()

    async def one(http: httpx.AsyncClient, bidder: str, amount: int) -> Placed:
        start = time.perf_counter() - t0
        try:
            response = await http.post(url, json={"bidder": bidder, "amount": amount})
        except httpx.HTTPError as exc:
            return Placed(bidder, amount, None, f"{type(exc).__name__}: {exc}", start, time.perf_counter() - t0)
        try:
            body = response.json()
        except ValueError:
            body = response.text[:300]
        return Placed(bidder, amount, response.status_code, body, start, time.perf_counter() - t0)

    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as http, asyncio.timeout(timeout + 5):
        return list(await asyncio.gather(*(one(http, b, a) for b, a in bids)))


def plot_bids(placed: list[Placed], title: str) -> Figure:
    """One bar per bid, from when it was sent to when it was answered, labelled with its amount: green when it
    raised the price (201), grey when it was outbid (409), a black edge when it failed. The legend sits outside the
    bars, so it covers none of them."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fig, ax = plt.subplots(figsize=(9, 0.9 + 0.16 * len(placed)))
    colours = {201: "tab:green", 409: "0.7"}
    for i, p in enumerate(placed):
        ax.barh(i, p.end - p.start, left=p.start, color=colours.get(p.status or 0, "white"),
                edgecolor="none" if p.status in colours else "black")
    handles = [Patch(facecolor="tab:green", label="201: raised the price"), Patch(facecolor="0.7", label="409: outbid")]
    if any(p.status not in colours for p in placed):
        handles.append(Patch(facecolor="white", edgecolor="black", label="failed"))
    ax.set_yticks(range(len(placed)), [str(p.amount) for p in placed], fontsize=7)
    ax.set_ylim(-0.7, len(placed) - 0.3)
    ax.invert_yaxis()  # the first bid on top
    ax.set_ylabel("bid (amount in EUR), in the order sent")
    ax.set_xlabel("seconds since the first bid was sent")
    ax.set_xlim(left=0)
    ax.set_title(title, fontsize=10, loc="left")
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    fig.tight_layout()
    plt.close(fig)  # the notebook shows the returned figure once, as the cell's result
    return fig


async def task_result(bid_id: int, package: str = REFERENCE, *, timeout: float = 10.0) -> DBTaskResult:
    """The task table's row of `announce_bid` for one bid, once the worker has finished it."""
    from django_tasks_db.models import DBTaskResult

    async with asyncio.timeout(timeout):
        while True:
            rows = [r async for r in DBTaskResult.objects.filter(task_path=f"{package}.tasks.announce_bid")
                    if r.args_kwargs.get("args") == [bid_id]]
            if rows and rows[-1].status in ("SUCCESSFUL", "FAILED"):
                return rows[-1]
            await asyncio.sleep(0.05)


async def upstream_stats(upstream: Server, *, reset: bool = False) -> dict[str, Any]:
    """The slow upstream's counters: requests served, and the most that were ever in flight at once."""
    async with httpx.AsyncClient(timeout=5) as http:
        return (await http.get(f"{upstream.url}/{'reset' if reset else 'stats'}")).json()


@dataclass
class Held:
    """The held write transaction: statements to run in it just before it commits and releases the lock."""

    statements: list[tuple[str, tuple[object, ...]]] = field(default_factory=list)

    def before_release(self, sql: str, params: tuple[object, ...] = ()) -> None:
        self.statements.append((sql, params))


@contextlib.asynccontextmanager
async def writes_held(timeout: float = 10.0) -> AsyncIterator[Held]:
    """Hold the SQLite database's write lock while the block runs: reads go on (WAL mode), writes wait.

    A busy database, a slow disk or a long transaction elsewhere widens the window between a request's read and
    its write; this widens it on purpose, so that concurrent requests all read before any of them writes. The
    sandbox's connections wait up to 20 s for the lock (the `timeout` option in DATABASES), so nothing fails.
    Yields a `Held`: what it is given with `before_release` is written, and committed, before anyone else writes.
    """
    path = settings.DATABASES["default"]["NAME"]
    acquired, release, failed, held = threading.Event(), threading.Event(), [], Held()

    def hold() -> None:
        try:
            db = sqlite3.connect(path, timeout=20, isolation_level=None)
            try:
                db.execute("BEGIN IMMEDIATE")  # the write lock, taken now rather than at the first write
                acquired.set()
                release.wait(timeout + 20)
                for sql, params in held.statements:
                    db.execute(sql, params)
                db.execute("COMMIT")
            finally:
                db.close()
        except sqlite3.Error as exc:
            failed.append(exc)
            acquired.set()

    thread = threading.Thread(target=hold, name="write-lock", daemon=True)
    thread.start()
    await asyncio.to_thread(acquired.wait, 25)
    if failed:
        raise failed[0]
    try:
        async with asyncio.timeout(timeout):
            yield held
    finally:
        release.set()
        await asyncio.to_thread(thread.join, 5)
    if failed:
        raise failed[0]


async def fraud_checks_answered(upstream: Server, count: int, *, margin: float = HOLD_MARGIN) -> int:
    """Wait until the fraud check has answered `count` requests since its counters were reset, then `margin`
    seconds more: time for every view to read the lot's price. Returns how many it answered; never raises, so a
    race goes on (and shows what happened) even when some bids failed before their check."""
    from sandbox.capstone.auction import FRAUD_CHECK_SECONDS

    served = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(count * FRAUD_CHECK_SECONDS + 3):  # even when the checks ran one at a time
            while (served := (await upstream_stats(upstream))["served"]) < count:
                await asyncio.sleep(0.05)
    await asyncio.sleep(margin)
    return served
