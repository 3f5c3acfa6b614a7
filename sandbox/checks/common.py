"""What every exercise check shares: the failure type, a watch on the event loop, and reporting."""

from __future__ import annotations

import contextlib
import inspect
import time
from dataclasses import dataclass

from sandbox.checks.contract import PASS_MARK, ExerciseFailed
from sandbox.lab.load import periodic

BLOCKED = 0.25  # seconds the loop may stall before a check calls it blocked: well above scheduling noise on a busy
#                 machine, well below the 0.4-0.5 s that the blocking mistakes in the exercises stall it for


def passed(exercise: str, detail: str) -> None:
    print(f"{PASS_MARK} Exercise {exercise!r} passed: {detail}")


def not_attempted(exercise: str) -> NotImplementedError:
    return NotImplementedError(f"Exercise {exercise!r} is not attempted yet: replace the "
                               "`raise NotImplementedError` line with your code, then run this cell again.")


@dataclass
class LoopWatch:
    """The longest time the event loop could not run a tiny heartbeat task: a blocking call shows up here."""

    interval: float
    last: float = 0.0
    max_gap: float = 0.0

    def beat(self) -> None:
        now = time.perf_counter()
        if self.last:
            self.max_gap = max(self.max_gap, now - self.last - self.interval)
        self.last = now


@contextlib.asynccontextmanager
async def watch_loop(interval: float = 0.01):
    """Measure event-loop stalls while the block runs, including one still going on when it ends: a heartbeat
    every `interval` seconds, the first before the block starts, the last the moment it ends (before the
    heartbeat's task is stopped, which takes a turn of the loop)."""
    watch = LoopWatch(interval)
    async with periodic(interval, watch.beat, last=False):
        try:
            yield watch
        finally:
            watch.beat()


def require_async_function(exercise: str, fn, name: str) -> None:
    if not callable(fn):
        raise ExerciseFailed(exercise, f"{name} should be a function, got {type(fn).__name__}")
    if not inspect.iscoroutinefunction(fn):
        raise ExerciseFailed(exercise, f"{name} is a sync function (`def`): write it as `async def {name}(...)` "
                                       "so it can await without holding a thread")


def reject_coroutine(exercise: str, value, what: str) -> None:
    """A coroutine object where a result belongs means an `await` is missing."""
    values = value if isinstance(value, list | tuple) else [value]
    if any(inspect.iscoroutine(v) for v in values):
        for v in values:
            if inspect.iscoroutine(v):
                v.close()  # silence "never awaited": the feedback already says it
        raise ExerciseFailed(exercise, f"{what} is a coroutine that was never awaited: a missing `await` "
                                       "(calling an async function only creates the coroutine; nothing runs)")
