"""What every exercise check shares: the failure type, a watch on the event loop, and reporting."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from dataclasses import dataclass

PASS_MARK = "\u2705"
BLOCKED = 0.25  # seconds the loop may stall before a check calls it blocked: well above scheduling noise on a busy
#                 machine, well below the 0.4-0.5 s that the blocking mistakes in the exercises stall it for


class ExerciseFailed(AssertionError):
    """The learner's answer is not right yet; the message says which async mistake it makes."""

    def __init__(self, exercise: str, message: str):
        super().__init__(f"[{exercise}] {message}")
        self.exercise, self.feedback = exercise, message

    def _render_traceback_(self) -> list[str]:
        """IPython shows this instead of a traceback: the feedback is the point, not the check's internals."""
        return [f"\u274c Exercise {self.exercise!r} is not passed yet:", f"   {self.feedback}"]


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
    """Measure event-loop stalls while the block runs, including one still going on when it ends."""
    watch = LoopWatch(interval)

    async def heartbeat():
        while True:
            watch.beat()
            await asyncio.sleep(interval)

    task = asyncio.create_task(heartbeat())
    await asyncio.sleep(0)
    try:
        yield watch
    finally:
        watch.beat()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


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
