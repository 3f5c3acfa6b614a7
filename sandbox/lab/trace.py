"""A tracer that shows which thread ran each step: the event loop's thread, or a worker thread."""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
import time
from dataclasses import dataclass, field


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

    def traced(self, fn):
        """Wrap a sync or async function so every call records where it ran."""
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*args, **kwargs):
                self.mark(fn.__name__)
                return await fn(*args, **kwargs)
            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
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
