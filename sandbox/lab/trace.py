"""Where code runs: a tracer of which thread ran each step (the event loop's, or a worker thread), and a counter
of the hops between the two (every sync_to_async / async_to_sync call) and of the SQL queries."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import AsyncToSync, SyncToAsync


def where() -> str:
    """'event loop' when called on a thread running an asyncio loop, else 'worker thread'."""
    try:
        asyncio.get_running_loop()
        return "event loop"
    except RuntimeError:
        return "worker thread"


@dataclass
class Tracer:
    """Record steps with `tracer.mark("label")` or by decorating functions with `@tracer.traced`."""

    steps: list[tuple[float, str, str, str]] = field(default_factory=list)
    t0: float = field(default_factory=time.perf_counter)

    def mark(self, label: str) -> None:
        self.steps.append((time.perf_counter() - self.t0, label, threading.current_thread().name, where()))

    def traced(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap a sync or async function so every call records where it ran."""
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                self.mark(fn.__name__)
                return await fn(*args, **kwargs)
            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.mark(fn.__name__)
            return fn(*args, **kwargs)
        return wrapper

    def threads(self) -> dict[str, str]:
        """Label -> thread name, for checks."""
        return {label: thread for _, label, thread, _ in self.steps}

    def table(self, times: bool = False) -> str:
        width = max((len(s[1]) for s in self.steps), default=4)
        rows = [f"{'step':<{width}}  {'kind':<13}  thread"]
        for t, label, thread, kind in self.steps:
            rows.append(f"{label:<{width}}  {kind:<13}  {thread}" + (f"  (+{t:.3f} s)" if times else ""))
        return "\n".join(rows)

    def show(self, times: bool = False) -> None:
        print(self.table(times))


def _short_name(fn: object) -> str:
    fn = getattr(fn, "func", fn)  # functools.partial
    qualname = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return qualname.replace(".<locals>", "")


@dataclass
class Hops:
    """What one `count_hops()` block saw: the functions run through each adapter, and the SQL queries."""

    to_thread: list[str] = field(default_factory=list)  # sync_to_async calls: loop -> worker thread -> loop
    to_loop: list[str] = field(default_factory=list)  # async_to_sync calls: thread -> event loop -> thread
    queries: list[tuple[str, str]] = field(default_factory=list)  # (thread name, SQL), when DEBUG logs queries

    @property
    def total(self) -> int:
        return len(self.to_thread) + len(self.to_loop)

    def summary(self) -> str:
        return f"{len(self.to_thread)} sync_to_async + {len(self.to_loop)} async_to_sync = {self.total} hops"

    def table(self) -> str:
        rows = [f"  sync_to_async  {n} x {name}" for name, n in Counter(self.to_thread).items()]
        rows += [f"  async_to_sync  {n} x {name}" for name, n in Counter(self.to_loop).items()]
        return "\n".join([self.summary(), *rows])


class Records(logging.Handler):
    """Keeps what a logger says (`records`), with the thread that said it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[tuple[str, logging.LogRecord]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((threading.current_thread().name, record))


@contextlib.contextmanager
def capture_log(name: str, handler: logging.Handler | None = None) -> Iterator[logging.Handler]:
    """Send every record the logger `name` emits while the block runs, at DEBUG level and from any thread, to
    `handler` (by default a `Records`, which keeps (thread name, record) pairs), and yield it; nothing is printed
    meanwhile. Level and propagation are restored after."""
    logger, handler = logging.getLogger(name), handler or Records()
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def sql_of(record: logging.LogRecord) -> str:
    """The SQL of a `django.db.backends` record (Django logs each query there when DEBUG is on)."""
    return str(getattr(record, "sql", record.getMessage()))


@contextlib.contextmanager
def count_hops() -> Iterator[Hops]:
    """Count every `sync_to_async` / `async_to_sync` call, and every SQL query with its thread, in the block.

    A measuring instrument for lessons, not something for real code: it wraps asgiref's two adapters and
    listens to the `django.db.backends` logger (Django logs each query there when DEBUG is on).
    """
    hops = Hops()
    s2a_call, a2s_call = SyncToAsync.__call__, AsyncToSync.__call__

    async def counted_s2a(self: SyncToAsync[..., Any], *args: Any, **kwargs: Any) -> Any:
        hops.to_thread.append(_short_name(self.func))
        return await s2a_call(self, *args, **kwargs)

    def counted_a2s(self: AsyncToSync[..., Any], *args: Any, **kwargs: Any) -> Any:
        hops.to_loop.append(_short_name(self.awaitable))
        return a2s_call(self, *args, **kwargs)

    # mypy forbids assigning to a method; the instrument swaps asgiref's two for the block only, on purpose
    SyncToAsync.__call__, AsyncToSync.__call__ = counted_s2a, counted_a2s  # type: ignore[method-assign]
    kept = Records()
    try:
        with capture_log("django.db.backends", kept):
            yield hops
    finally:
        SyncToAsync.__call__, AsyncToSync.__call__ = s2a_call, a2s_call  # type: ignore[method-assign]
        hops.queries += [(thread, sql_of(record)) for thread, record in kept.records]


class InFlight:
    """Counts the calls inside a `with` block at the same moment, and the most there ever were (`peak`).

    Wrap the body of a handler you study (`with at_once: ...`, in sync or async code alike) to see whether its
    calls ran together or one after another: a count, which a busy machine cannot fake the way it can skew a time.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = self.peak = 0

    def __enter__(self) -> InFlight:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.now -= 1

    def reset(self) -> None:
        with self._lock:
            self.now = self.peak = 0
