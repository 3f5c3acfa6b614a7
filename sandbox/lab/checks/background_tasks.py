"""Checks for the exercises of chapter 07, background tasks.

Each one runs the learner's code for real: a view through Django's own ASGI handler with ImmediateBackend, a
real `db_worker` process started by the check, transactions committed and rolled back in a worker thread, the
garbage collector run on a background task. The mistake is told apart by what happened: the status a result
came back with and the error it recorded, which process ran a task and what it could import, whether a task
was enqueued while a transaction was still open, whether a task survived `gc.collect()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import uuid
import warnings
import weakref

from asgiref.sync import sync_to_async

from sandbox.lab.checks.common import ExerciseFailed, not_attempted, passed, reject_coroutine, require_async_function

SOO = "django.core.exceptions.SynchronousOnlyOperation"


async def _chapter_settings() -> None:
    """The checks need the chapter's settings (task backends, apps) in this kernel; idempotent."""
    from sandbox.tasks_lab import setup

    await setup.apply(quiet=True)


@contextlib.contextmanager
def _watch_enqueues(task):
    """Record every enqueue of `task` (any backend): its result, and whether a transaction was still open."""
    from django.db import connection
    from django.tasks.signals import task_enqueued, task_finished

    seen: list[dict] = []

    def enqueued(sender, task_result, **kwargs):
        if task_result.task.func is task.func:
            seen.append({"result": task_result, "in_transaction": connection.in_atomic_block, "finished": None})

    def finished(sender, task_result, **kwargs):
        for entry in seen:
            if entry["result"].id == task_result.id:
                entry["finished"] = task_result

    task_enqueued.connect(enqueued, weak=False)
    task_finished.connect(finished, weak=False)
    try:
        yield seen
    finally:
        task_enqueued.disconnect(enqueued)
        task_finished.disconnect(finished)


# --- exercise 1: enqueue from async code ---------------------------------------------------------------------

async def _call_view(exercise: str, view, path: str):
    """Serve `view` at /exercise/ through Django's real ASGI handler; returns the response and what it raised."""
    from sandbox.lab.checks.exercise_urls import serving

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "never awaited": the feedback says it
        async with serving(exercise, view) as (c, errors):
            response = await c.get(path)
            gc.collect()
    return response, errors


async def enqueue_from_async(place_order) -> None:
    """Exercise 'enqueue-from-async': an async view saves an order and enqueues `confirm_order` for it."""
    ex = "enqueue-from-async"
    require_async_function(ex, place_order, "place_order")
    await _chapter_settings()
    from sandbox.tasks_lab.models import Order
    from sandbox.tasks_lab.tasks import confirm_order

    item = f"check {uuid.uuid4().hex[:8]}"
    with _watch_enqueues(confirm_order) as seen:
        response, errors = await _call_view(ex, place_order, f"/exercise/?item={item.replace(' ', '+')}")
    for exc in errors:
        if "coroutine" in str(exc):
            raise ExerciseFailed(ex, f"the view failed with {type(exc).__name__}: {exc}. `aenqueue(...)` returns a "
                                     "coroutine that was never awaited: nothing was enqueued; write "
                                     "`await confirm_order.aenqueue(order.pk)`")
    if not seen:
        raise ExerciseFailed(ex, "confirm_order was never enqueued: `call()`, `acall()` or the function itself runs "
                                 "the work right here, inside the request; enqueue it with "
                                 "`await confirm_order.aenqueue(order.pk)`")
    outcome = seen[-1]["finished"] or seen[-1]["result"]
    if outcome.status == "FAILED" and outcome.errors and outcome.errors[0].exception_class_path == SOO:
        raise ExerciseFailed(ex, "a sync `enqueue()` from async code: ImmediateBackend ran confirm_order at once, "
                                 "on the event loop's thread, where the ORM refuses to run "
                                 "(SynchronousOnlyOperation). The result came back FAILED and nothing was "
                                 "raised; use `await confirm_order.aenqueue(order.pk)`")
    if errors:
        raise ExerciseFailed(ex, f"the view raised {type(errors[0]).__name__}: {errors[0]}")
    if response.status_code != 200:
        raise ExerciseFailed(ex, f"the view answered HTTP {response.status_code}, expected 200")
    order = await Order.objects.filter(item=item).afirst()
    if order is None or outcome.args != [order.pk]:
        raise ExerciseFailed(ex, f"enqueue confirm_order with the new order's id (got the arguments {outcome.args})")
    if outcome.status != "SUCCESSFUL":
        error = outcome.errors[0].exception_class_path if outcome.errors else "no error recorded"
        raise ExerciseFailed(ex, f"confirm_order came back {outcome.status} ({error})")
    body = response.json()
    if body.get("task") != outcome.id or body.get("status") != "SUCCESSFUL":
        raise ExerciseFailed(ex, f"answer the task's id and status from the result of aenqueue (got {body})")
    passed(ex, f"confirm_order was enqueued with aenqueue and came back {outcome.status}: "
               f"{outcome.return_value!r}")


# --- exercise 2: a task the worker can import ----------------------------------------------------------------

_worker = None


async def _db_worker():
    """One db_worker per kernel, started on first use (the notebook's `lab.stop_all()` stops it)."""
    global _worker
    from sandbox import lab

    if _worker is None or not _worker.alive():
        _worker = await lab.start_worker(
            "db_worker", ["django", "db_worker", "--backend", "db", "--interval", "0.1", "--no-startup-delay",
                          "--no-reload"],
            ready="Starting worker", quiet=True,
            env={"DJANGO_SETTINGS_MODULE": "sandbox.tasks_lab.settings", "TASKS_LAB_PROCESS": "db_worker"})
    return _worker


async def importable_task(count_on_worker, text: str = "a task that a worker can import") -> None:
    """Exercise 'importable-task': get `count_words` run by the real db_worker and return its TaskResult."""
    ex = "importable-task"
    require_async_function(ex, count_on_worker, "count_on_worker")
    await _chapter_settings()
    from django.core.exceptions import SynchronousOnlyOperation
    from django.tasks import TaskResult
    from django_tasks_db.models import DBTaskResult

    try:
        async with asyncio.timeout(10):
            result = await count_on_worker(text)
    except NotImplementedError:
        raise not_attempted(ex) from None
    except SynchronousOnlyOperation:
        raise ExerciseFailed(ex, "a sync `enqueue()` from async code: the database backend writes the task's row "
                                 "with the sync ORM, on the event loop's thread, which raises "
                                 "SynchronousOnlyOperation; use `await ....aenqueue(text)`") from None
    reject_coroutine(ex, result, "what count_on_worker returned")
    if not isinstance(result, TaskResult):
        raise ExerciseFailed(ex, f"return the TaskResult that aenqueue gave you (got {type(result).__name__})")
    if result.backend != "db":
        raise ExerciseFailed(ex, f"the task went to the {result.backend!r} backend and ran in this kernel "
                                 f"({result.status}), not in the worker: choose the database backend with "
                                 "`.using(backend=\"db\")`")
    worker = await _db_worker()
    async with asyncio.timeout(15):
        while (row := await DBTaskResult.objects.aget(id=result.id)).status not in ("SUCCESSFUL", "FAILED"):
            await asyncio.sleep(0.05)
    if row.status == "FAILED":
        if row.task_path.startswith("__main__."):
            raise ExerciseFailed(ex, f"the worker could not import `{row.task_path}` ({row.exception_class_path}): "
                                     "a task defined in a notebook cell lives in the kernel's `__main__`, which "
                                     "no other process has; enqueue a task from an importable module, "
                                     "`tasks.count_words` from sandbox/tasks_lab/tasks.py")
        raise ExerciseFailed(ex, f"the worker ran {row.task_path} and it failed with {row.exception_class_path}")
    expected = len(text.split())
    if row.return_value != expected:
        raise ExerciseFailed(ex, f"the worker returned {row.return_value!r}, expected the number of words in the "
                                 f"text ({expected}): pass the text to the task")
    passed(ex, f"the db_worker (pid {worker.pid}) imported {row.task_path} and counted {row.return_value} words")


# --- exercise 3: enqueue on commit ---------------------------------------------------------------------------

class _CallerRollsBack(Exception):
    pass


async def enqueue_on_commit(place_order) -> None:
    """Exercise 'enqueue-on-commit': the task is enqueued after the order's row is committed, never before."""
    ex = "enqueue-on-commit"
    if inspect.iscoroutinefunction(place_order):
        raise ExerciseFailed(ex, "place_order must stay a sync function (`def`): transactions need sync code "
                                 "(transaction.atomic raises in async code); the check runs it with sync_to_async")
    await _chapter_settings()
    from django.db import transaction

    from sandbox.tasks_lab.models import Order
    from sandbox.tasks_lab.tasks import confirm_order

    def inside_callers_transaction(item: str) -> None:
        with transaction.atomic():  # the caller's transaction: ATOMIC_REQUESTS, or a service calling place_order
            place_order(item)
            raise _CallerRollsBack

    item = f"check {uuid.uuid4().hex[:8]}"
    with _watch_enqueues(confirm_order) as seen:
        try:
            order_id = await sync_to_async(place_order)(item)
        except NotImplementedError:
            raise not_attempted(ex) from None
        except TypeError as exc:
            if "on_commit" in str(exc):
                raise ExerciseFailed(ex, "on_commit() got the result of `enqueue(...)`, not a function: the task "
                                         "was enqueued at once, inside the transaction (which your TypeError then "
                                         "rolled back); pass a callable, `partial(queue.enqueue, order.pk)` or a "
                                         "lambda") from None
            raise
        committed = list(seen)
        seen.clear()
        with contextlib.suppress(_CallerRollsBack):
            await sync_to_async(inside_callers_transaction)(f"{item} rolled back")
        after_rollback = list(seen)
    if not committed:
        raise ExerciseFailed(ex, "confirm_order was never enqueued: after the commit, enqueue it with the order's id")
    if any(entry["in_transaction"] for entry in committed):
        raise ExerciseFailed(ex, "the task was enqueued inside the open transaction, before the order's row was "
                                 "committed: a worker can run it first and find no order (Order.DoesNotExist); "
                                 "enqueue it in `transaction.on_commit(...)`")
    if after_rollback:
        raise ExerciseFailed(ex, "the task was enqueued although the caller's transaction was rolled back: when "
                                 "place_order runs inside another transaction (ATOMIC_REQUESTS, a service's "
                                 "`atomic`), the end of your own `with` block commits nothing. "
                                 "`transaction.on_commit` waits for the outermost commit, and drops the task on "
                                 "a rollback")
    order = await Order.objects.filter(pk=order_id, item=item).afirst()
    if order is None:
        raise ExerciseFailed(ex, "return the id of the order you saved")
    if committed[-1]["result"].args != [order.pk] or len(committed) != 1:
        raise ExerciseFailed(ex, f"enqueue confirm_order once, with the order's id (got {len(committed)} enqueue(s), "
                                 f"arguments {committed[-1]['result'].args})")
    passed(ex, "confirm_order was enqueued once, after the commit, and not at all for a rolled-back transaction")


# --- exercise 4: keep a reference to a background task -------------------------------------------------------

async def keep_a_reference(spawn) -> None:
    """Exercise 'keep-a-reference': `spawn(coro)` keeps the task alive until it is done, and no longer."""
    ex = "keep-a-reference"
    if inspect.iscoroutinefunction(spawn):
        raise ExerciseFailed(ex, "spawn should be a plain function (`def`) that starts the task and returns it")
    loop = asyncio.get_running_loop()
    reported: list[str] = []
    previous = loop.get_exception_handler()
    box: dict = {}

    async def wait_for_reply():
        reply = loop.create_future()  # only this coroutine holds it, as in the lesson
        box["reply"] = weakref.ref(reply)
        return await reply

    coro = wait_for_reply()
    loop.set_exception_handler(lambda loop, context: reported.append(context["message"]))
    try:
        try:
            started = spawn(coro)
        except NotImplementedError:
            coro.close()
            raise not_attempted(ex) from None
        if inspect.iscoroutine(started):
            started.close()
            raise ExerciseFailed(ex, "spawn returned the coroutine itself: a coroutine runs only when it is awaited "
                                     "or wrapped in a task; start it with `asyncio.create_task(coro)`")
        if not isinstance(started, asyncio.Task):
            coro.close()
            raise ExerciseFailed(ex, f"spawn should return the task it started (got {type(started).__name__})")
        task_ref = weakref.ref(started)
        del started, coro  # the check keeps only weak references, as the event loop does
        await asyncio.sleep(0.01)  # the task starts and waits for its reply
        gc.collect()
        if task_ref() is None:
            destroyed = [m for m in reported if "destroyed" in m]
            raise ExerciseFailed(ex, "the task was garbage-collected while it was still waiting"
                                     f"{' (' + destroyed[0] + ')' if destroyed else ''}: the event loop keeps only "
                                     "a weak reference to a task; keep a strong one, in a set, until it is done")
        task = task_ref()  # it survived: hold it while it finishes
        box["reply"]().set_result("reply")
        async with asyncio.timeout(5):
            answer = await task
        del task
        await asyncio.sleep(0)  # done callbacks run on the next turn of the loop
        gc.collect()
        if task_ref() is not None:
            raise ExerciseFailed(ex, "the finished task is still referenced: a set that only grows keeps every "
                                     "finished task, and its result, forever (a memory leak); remove it when it is "
                                     "done, `task.add_done_callback(background.discard)`")
    finally:
        loop.set_exception_handler(previous)
    passed(ex, f"the task survived the garbage collector while it waited, returned {answer!r}, and was "
               "forgotten once done")
