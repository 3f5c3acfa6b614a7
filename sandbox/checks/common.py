"""What every exercise check shares: the failure type, a watch on the event loop, and reporting."""

from __future__ import annotations

import contextlib
import inspect
import threading
import time
from dataclasses import dataclass, field

from sandbox.checks.contract import PASS_MARK, ExerciseFailed
from sandbox.lab.load import periodic

# Seconds the loop may stall before a check calls it blocked. The blocking mistakes of the exercises stall it for 0.4
# s or more, and the watch measures at least the length of the blocking call, so none can pass under this; a machine
# busy with other work has stalled a kernel's loop thread (not the whole process) for up to 0.36 s.
BLOCKED = 0.38
WHOLE_PROCESS = 0.8  # a loop stall the control thread shared for this share of its length stopped the whole process


def passed(exercise: str, detail: str) -> None:
    print(f"{PASS_MARK} Exercise {exercise!r} passed: {detail}")


def not_attempted(exercise: str) -> NotImplementedError:
    return NotImplementedError(f"Exercise {exercise!r} is not attempted yet: replace the "
                               "`raise NotImplementedError` line with your code, then run this cell again.")


@dataclass
class LoopWatch:
    """The longest time the event loop could not run a tiny heartbeat task: a blocking call shows up here.

    A busy machine can also stop the whole process (the operating system runs something else), which is no fault
    of the code. A control thread of the same process, sleeping `interval` at a time, is stopped too, while a
    blocking call on the loop's thread does not stop it (time.sleep and sync I/O release the GIL): a loop stall
    during which the control thread could not run either, nearly all along, is not counted. A shorter hiccup of the
    control thread inside a stall changes nothing: the stall counts whole.
    """

    interval: float
    last: float = 0.0
    gaps: list[tuple[float, float]] = field(default_factory=list)  # when the heartbeat could not run
    starved: list[tuple[float, float]] = field(default_factory=list)  # when the control thread could not run

    def beat(self) -> None:
        now = time.perf_counter()
        if self.last and now - self.last > 2 * self.interval:
            self.gaps.append((self.last + self.interval, now))
        self.last = now

    def control(self, stop: threading.Event) -> None:
        """The control thread: note every time it woke up late, as the interval it could not run."""
        while not stop.is_set():
            start = time.perf_counter()
            time.sleep(self.interval)
            late = time.perf_counter() - start - self.interval
            if late > self.interval:
                self.starved.append((start + self.interval, start + self.interval + late))

    @property
    def max_gap(self) -> float:
        """The longest stall of the loop, leaving out a stall of the whole process."""
        def blocked(a: float, b: float) -> float:
            stopped = sum(max(0.0, min(b, d) - max(a, c)) for c, d in self.starved)
            return 0.0 if stopped >= WHOLE_PROCESS * (b - a) else b - a
        return max((blocked(a, b) for a, b in self.gaps), default=0.0)


@contextlib.asynccontextmanager
async def watch_loop(interval: float = 0.01):
    """Measure event-loop stalls while the block runs, including one still going on when it ends: a heartbeat
    every `interval` seconds, the first before the block starts, the last the moment it ends (before the
    heartbeat's task is stopped, which takes a turn of the loop); minus what a control thread saw as well."""
    watch, stop = LoopWatch(interval), threading.Event()
    control = threading.Thread(target=watch.control, args=(stop,), name="loop-watch-control", daemon=True)
    control.start()
    try:
        async with periodic(interval, watch.beat, last=False):
            try:
                yield watch
            finally:
                watch.beat()
    finally:
        stop.set()
        control.join(1)  # its last stall is noted before anyone reads max_gap


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
