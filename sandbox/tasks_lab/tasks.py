"""The django.tasks tasks of chapter 07.

They live in a module, not in a notebook cell: a worker in another process finds a task by its dotted path
(`sandbox.tasks_lab.tasks.add`), and a function defined in a cell has the path `__main__.add`, which only the
kernel that ran the cell can import.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time

from django.conf import settings
from django.tasks import task

from sandbox.tasks_lab import work
from sandbox.tasks_lab.models import Order
from sandbox.tasks_lab.work import process_name


@task
def add(a: int, b: int) -> int:
    return a + b


@task
def whoami(label: str) -> dict:
    """Where and when it ran: the process, its pid and thread, and the wall-clock time it started."""
    return {"label": label, "process": process_name(), "pid": os.getpid(),
            "thread": threading.current_thread().name, "started": time.time()}


@task
def log_event(label: str) -> int:
    """Writes a row with the sync ORM, as most real tasks do (save a result, mark an email as sent)."""
    return work.record(label)


@task
async def nap(seconds: float) -> str:
    """An `async def` task: django.tasks accepts coroutine functions, where the backend supports them."""
    await asyncio.sleep(seconds)
    return f"slept {seconds} s in {process_name()}"


@task
def fail(message: str) -> None:
    """Always raises: a failure is recorded in the result (status FAILED, `errors`), not raised at enqueue."""
    raise ValueError(message)


@task(takes_context=True)
def attempt(context) -> int:
    """A task that asks for its context (the first argument must be named `context`)."""
    return context.attempt


@task
def confirm_order(order_id: int) -> str:
    """Reads the order a view has just saved. Raises Order.DoesNotExist when it cannot see the row."""
    order = Order.objects.get(pk=order_id)
    return f"confirmed: {order.item}"


@task
def started_at(i: int) -> float:
    """The wall-clock time the task started: the notebook measures enqueue-to-start latency with it."""
    return time.time()


@task
def fail_first(key: str) -> str:
    return work.fail_first(key)


@task
def count_words(text: str) -> int:
    return len(text.split())


# `run_huey` (Huey's consumer) imports each installed app's `tasks` module: this import makes it load the
# Huey tasks too, and the task that runs django.tasks tasks through HueyBackend.
if "huey.contrib.djhuey" in settings.INSTALLED_APPS:
    from sandbox.tasks_lab import huey_tasks  # noqa: E402, F401
