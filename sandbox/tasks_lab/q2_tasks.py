"""Django-Q2's tasks for chapter 07: plain functions, enqueued by dotted path with `async_task`."""

from __future__ import annotations

import asyncio
import os
import time

from sandbox.tasks_lab import work


def add(a: int, b: int) -> int:
    return a + b


def started_at(i: int) -> float:
    """The wall-clock time the task started, in one of the cluster's worker processes."""
    return time.time()


def whoami() -> dict:
    return {"process": work.process_name(), "pid": os.getpid()}


def fail_first(key: str) -> str:
    return work.fail_first(key)


async def nap(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return f"slept {seconds} s"
