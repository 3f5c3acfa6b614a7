"""The work behind the tasks of every queue in chapter 07, written once so the queues are compared fairly."""

from __future__ import annotations

import os
import time

from sandbox.tasks_lab.models import Event


def process_name() -> str:
    """Which process runs this: chapter 07 starts its workers and servers with TASKS_LAB_PROCESS set."""
    return os.environ.get("TASKS_LAB_PROCESS", "kernel")


def record(label: str) -> int:
    """Write one Event row with the sync ORM, as most real tasks do; returns its id."""
    return Event.objects.create(label=label, source=process_name(), pid=os.getpid(), at=time.time()).pk


def fail_first(key: str) -> str:
    """Fails on the first attempt for `key` and succeeds on the next: what does the queue do after a failure?"""
    attempts = Event.objects.filter(label=key).count() + 1
    record(key)
    if attempts == 1:
        raise ValueError(f"{key}: attempt 1 fails on purpose")
    return f"{key}: succeeded on attempt {attempts}"
