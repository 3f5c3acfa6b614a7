"""Celery tasks for chapter 07; the first one is the source document's example, as written."""

from __future__ import annotations

import asyncio
import os
import time

from celery import shared_task

from sandbox.tasks_lab import work


@shared_task
def async_task():
    return "Task Completed"


@shared_task
def whoami() -> dict:
    return {"process": work.process_name(), "pid": os.getpid()}


@shared_task
def started_at(i: int) -> float:
    """The wall-clock time the task started: the notebook measures enqueue-to-start latency with it."""
    return time.time()


@shared_task
def confirm_order(order_id: int) -> str:
    """Reads the order a view has just saved. Raises Order.DoesNotExist when it cannot see the row."""
    from sandbox.tasks_lab.models import Order

    order = Order.objects.get(pk=order_id)
    return f"confirmed: {order.item}"


@shared_task(autoretry_for=(ValueError,), max_retries=1, default_retry_delay=0)
def fail_first(key: str) -> str:
    return work.fail_first(key)


@shared_task
async def nap(seconds: float) -> str:
    """Celery 5.7 has no async tasks: the worker calls this, gets a coroutine back, and never awaits it."""
    await asyncio.sleep(seconds)
    return f"slept {seconds} s"
