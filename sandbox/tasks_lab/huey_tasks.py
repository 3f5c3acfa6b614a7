"""Huey's own tasks for chapter 07 (`@task()` from djhuey), on the SqliteHuey queue of settings.HUEY."""

from __future__ import annotations

import os
import time

import huey.contrib.djhuey.tasks_backend  # noqa: F401 - registers `djtasks.run`, which runs django.tasks tasks
from huey.contrib.djhuey import db_task, task

from sandbox.tasks_lab import work


@task()
def add(a: int, b: int) -> int:
    return a + b


@task()
def started_at(i: int) -> float:
    """The wall-clock time the task started: the notebook measures enqueue-to-start latency with it."""
    return time.time()


@task()
def whoami() -> dict:
    return {"process": work.process_name(), "pid": os.getpid()}


@db_task(retries=1, retry_delay=0)  # db_task closes stale database connections around the task, as a request would
def fail_first(key: str) -> str:
    return work.fail_first(key)
