"""Probes for chapter 05: count the thread hops a request makes, and catch Django's "adapted" debug log.

`count_hops()` wraps asgiref's two adapters for the length of a `with` block and records every call:
each `sync_to_async(...)` call is one trip from the event loop to a worker thread and back, each
`async_to_sync(...)` call one trip from a thread back to the event loop. Nothing else changes.
`adapted_log()` switches the `django.request` logger to DEBUG for the block and keeps what it logs.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from dataclasses import dataclass, field

from asgiref.sync import AsyncToSync, SyncToAsync


def _name(fn) -> str:
    fn = getattr(fn, "func", fn)  # functools.partial
    qualname = getattr(fn, "__qualname__", None)
    if qualname is None:
        qualname = type(fn).__qualname__
    return qualname.replace(".<locals>", "")


@dataclass
class Hops:
    """What one `count_hops()` block saw: the functions run through each adapter, in order."""

    to_thread: list[str] = field(default_factory=list)  # sync_to_async calls: loop -> worker thread -> loop
    to_loop: list[str] = field(default_factory=list)  # async_to_sync calls: thread -> event loop -> thread

    @property
    def total(self) -> int:
        return len(self.to_thread) + len(self.to_loop)

    def summary(self) -> str:
        return f"{len(self.to_thread)} sync_to_async + {len(self.to_loop)} async_to_sync = {self.total} hops"

    def table(self) -> str:
        rows = [f"  sync_to_async  {n} x {name}" for name, n in Counter(self.to_thread).items()]
        rows += [f"  async_to_sync  {n} x {name}" for name, n in Counter(self.to_loop).items()]
        return "\n".join([self.summary(), *rows])


@contextlib.contextmanager
def count_hops():
    """Count every sync_to_async / async_to_sync call made while the block runs (in this process)."""
    hops = Hops()
    s2a_call, a2s_call = SyncToAsync.__call__, AsyncToSync.__call__

    async def counted_s2a(self, *args, **kwargs):
        hops.to_thread.append(_name(self.func))
        return await s2a_call(self, *args, **kwargs)

    def counted_a2s(self, *args, **kwargs):
        hops.to_loop.append(_name(self.awaitable))
        return a2s_call(self, *args, **kwargs)

    SyncToAsync.__call__, AsyncToSync.__call__ = counted_s2a, counted_a2s
    try:
        yield hops
    finally:
        SyncToAsync.__call__, AsyncToSync.__call__ = s2a_call, a2s_call


class _Keep(logging.Handler):
    def __init__(self, lines: list[str]):
        super().__init__(logging.DEBUG)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def adapted_log():
    """Keep what the `django.request` logger says at DEBUG level while the block runs (a list of lines).

    Django logs "Synchronous handler adapted for ..." and "Asynchronous handler adapted for ..." when it
    builds the middleware chain (only with settings.DEBUG = True): build a fresh handler inside the block.
    The lines are kept, not printed (an error logged meanwhile lands in the list too).
    """
    logger, lines = logging.getLogger("django.request"), []
    handler, level, propagate = _Keep(lines), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
