"""Waiting for tasks, and timing every queue of chapter 07 the same way.

Each queue runs the same tiny task, `started_at(i)`, which returns the wall-clock time it started. Latency is
that time minus the time just before the enqueue (one task at a time, the median of a few); "100 tasks" is
the start of the last of 100 tasks minus the time before the first enqueue. Every await has a timeout.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.tasks import TaskResult

FINISHED = ("SUCCESSFUL", "FAILED")


async def wait_finished(result: TaskResult, timeout: float = 10, interval: float = 0.02) -> TaskResult:
    """Refresh a django.tasks result until it has finished (the backend must support get_result)."""
    async with asyncio.timeout(timeout):
        while not result.is_finished:
            await asyncio.sleep(interval)
            await result.arefresh()
    return result


async def wait_all(results: list[TaskResult], timeout: float = 30, interval: float = 0.05) -> list[TaskResult]:
    """Wait until every result of the database backend has finished: one query per poll, then refresh all."""
    from django_tasks_db.models import DBTaskResult

    ids = [r.id for r in results]
    async with asyncio.timeout(timeout):
        while await DBTaskResult.objects.filter(id__in=ids, status__in=FINISHED).acount() < len(ids):
            await asyncio.sleep(interval)
    for r in results:
        await r.arefresh()
    return results


@dataclass
class Timing:
    system: str
    latency: float  # median seconds from just before enqueue to the task's start, one task at a time
    hundred: float  # seconds from just before the first of 100 enqueues to the start of the last one
    n: int = 100

    def __str__(self) -> str:
        return f"{self.system}: latency {self.latency * 1000:.1f} ms, {self.n} tasks in {self.hundred:.2f} s"


async def timing(system: str, one: Callable[[int], Awaitable[float]],
                 many: Callable[[int], Awaitable[list[float]]], n: int = 100, rounds: int = 5) -> Timing:
    """`one(i)` enqueues one `started_at` task and returns its start time; `many(n)` does n and returns theirs."""
    latencies = []
    for i in range(rounds):
        before = time.time()
        latencies.append(await one(i) - before)
    before = time.time()
    starts = await many(n)
    assert len(starts) == n, f"{system}: {len(starts)} of {n} tasks ran"
    return Timing(system, statistics.median(latencies), max(starts) - before, n)


# One adapter per queue: enqueue with that queue's own API, wait with a timeout, return the start times.

async def django_tasks_one(backend: str, i: int) -> float:
    from sandbox.tasks_lab.tasks import started_at

    result = await started_at.using(backend=backend).aenqueue(i)
    if not result.is_finished:
        await wait_finished(result)
    return result.return_value


async def django_tasks_many(backend: str, n: int) -> list[float]:
    from sandbox.tasks_lab.tasks import started_at

    task = started_at.using(backend=backend)
    results = [await task.aenqueue(i) for i in range(n)]
    if backend == "db":
        await wait_all(results)
    return [r.return_value for r in results]


async def huey_one(i: int) -> float:
    from sandbox.tasks_lab import huey_tasks

    result = await asyncio.to_thread(huey_tasks.started_at, i)  # Huey's API is sync: enqueue in a thread
    return await asyncio.to_thread(result.get, blocking=True, timeout=10, backoff=1, max_delay=0.02)


async def huey_many(n: int) -> list[float]:
    from sandbox.tasks_lab import huey_tasks

    results = await asyncio.to_thread(lambda: [huey_tasks.started_at(i) for i in range(n)])
    return await asyncio.to_thread(
        lambda: [r.get(blocking=True, timeout=30, backoff=1, max_delay=0.02) for r in results])


async def celery_one(i: int) -> float:
    from sandbox.tasks_lab import celery_tasks

    result = await asyncio.to_thread(celery_tasks.started_at.delay, i)  # Celery has no async API
    return await asyncio.to_thread(result.get, timeout=10)


async def celery_many(n: int) -> list[float]:
    from sandbox.tasks_lab import celery_tasks

    results = await asyncio.to_thread(lambda: [celery_tasks.started_at.delay(i) for i in range(n)])
    return await asyncio.to_thread(lambda: [r.get(timeout=30) for r in results])


async def q2_one(i: int) -> float:
    from django_q.tasks import async_task, result

    task_id = await sync_to_async(async_task)("sandbox.tasks_lab.q2_tasks.started_at", i)  # writes a row
    value = await sync_to_async(result)(task_id, wait=10_000)
    if value is None:
        raise TimeoutError(f"Django-Q2 task {task_id} did not finish within 10 s")
    return value


async def q2_many(n: int) -> list[float]:
    from django_q.tasks import async_task, result

    def enqueue_and_wait() -> list[float]:
        ids = [async_task("sandbox.tasks_lab.q2_tasks.started_at", i) for i in range(n)]
        return [result(task_id, wait=30_000) for task_id in ids]

    return await sync_to_async(enqueue_and_wait)()


# What each queue does after a failure: `fail_first(key)` fails on its first attempt and succeeds on the next.

async def retry_django_tasks(key: str = "retry: django-tasks-db") -> str:
    from sandbox.tasks_lab.tasks import fail_first

    result = await wait_finished(await fail_first.using(backend="db").aenqueue(key))
    return f"{result.status} after {result.attempts} attempt(s): no retry"


async def retry_huey(key: str = "retry: Huey") -> str:
    from sandbox.tasks_lab import huey_tasks

    result = await asyncio.to_thread(huey_tasks.fail_first, key)
    return await asyncio.to_thread(result.get, blocking=True, timeout=10, backoff=1, max_delay=0.02)


async def retry_celery(key: str = "retry: Celery") -> str:
    from sandbox.tasks_lab import celery_tasks

    result = await asyncio.to_thread(celery_tasks.fail_first.delay, key)
    return await asyncio.to_thread(result.get, timeout=10)


async def retry_q2(key: str = "retry: Django-Q2", timeout: float = 15) -> str:
    from django_q.tasks import async_task, fetch

    task_id = await sync_to_async(async_task)("sandbox.tasks_lab.q2_tasks.fail_first", key)
    async with asyncio.timeout(timeout):
        while True:
            found = await sync_to_async(fetch)(task_id)
            if found is not None and found.success:
                return f"{found.result} (handed out again after Q_CLUSTER['retry'] seconds)"
            await asyncio.sleep(0.1)
