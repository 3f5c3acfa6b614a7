"""Checks for the exercises of chapter 07, background tasks.

Each one runs the learner's code for real: a view through Django's own ASGI handler with ImmediateBackend, a
real `db_worker` process kept for the kernel, transactions committed and rolled back in a worker thread, the
garbage collector run on background tasks. The mistake is told apart by what happened: which backend each
enqueue went to, with which arguments (bound to the task function's signature, so positional and keyword
arguments are the same answer), the status each result came back with and the error it recorded, which process
ran a task and what it could import, how deep in a transaction each enqueue happened, which tasks survived
`gc.collect()`. The inputs are new on every run (items, texts, replies), so an answer copied from an earlier
output cannot pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import json
import random
import uuid
import weakref
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.core.exceptions import SynchronousOnlyOperation
from django.db import IntegrityError, connection, transaction
from django.db.models.signals import pre_save
from django.tasks import TaskResult
from django.tasks.signals import task_enqueued, task_finished
from django.utils import timezone

from sandbox.checks.common import (
    BLOCKED,
    ExerciseFailed,
    not_attempted,
    passed,
    reject_coroutine,
    require_async_function,
)
from sandbox.checks.harness import (
    Kept,
    Requirements,
    call,
    close_coroutines,
    exercise_check,
    expect_all_awaited,
    expect_json,
    expect_status,
    learner_frames,
    learner_object,
    serving,
)
from sandbox.checks.harness import meaning as harness_meaning
from sandbox.lab.overlay import apply_chapter_settings
from sandbox.lab.services import start_worker

SOO = "django.core.exceptions.SynchronousOnlyOperation"
WORDS = ("lantern", "teapot", "violin", "compass", "harbour", "walnut", "orchid", "saddle", "pebble", "kettle",
         "meadow", "falcon", "ribbon", "quarry", "tundra", "mosaic", "anchor", "velvet", "cobalt", "juniper")

REQUIREMENTS = {
    "enqueue-from-async": Requirements("c512e4bfbccb", (
        ("`place_order` is an async view", "an `async def` function, served by Django's ASGI handler"),
        ("it saves an `Order`",
         "three requests at once, each with its own random `?item=`: each saves its own order"),
        ("and must enqueue `confirm_order` ... for it",
         "exactly one enqueue of confirm_order per request, whose `order_id` (positional or keyword, bound to the "
         "task function's signature) is the id of the order that request saved"),
        ("on the default backend (`ImmediateBackend`)", "each enqueue's TaskResult names the backend 'default'"),
        ("so that the task really runs",
         "each result came back SUCCESSFUL, with the return value `confirmed: <that request's item>`; a FAILED "
         "result with SynchronousOnlyOperation is named as a sync `enqueue()` from async code; every coroutine "
         "awaited"),
        ("and the view answers the task's id and status",
         "HTTP 200, Content-Type application/json, and each body's `task` and `status` are those of the result "
         "enqueued for that request's order"),
    )),
    "importable-task": Requirements("9a59c80f5553", (
        ("Complete `count_on_worker(text)`", "an `async def` function, called with new random texts (and an empty "
                                             "one) on every run"),
        ("it must get the words of `text` counted",
         "the worker's return value for each call is the number of words in the text of that call"),
        ("by the real worker (the `db_worker` of django-tasks-db, backend alias \"db\")",
         "the TaskResult names the backend 'db', its row is in django-tasks-db's table, and the db_worker kept "
         "for the kernel (started before the call) ran it to SUCCESSFUL; a task the worker cannot import "
         "(`__main__`) is named as such"),
        ("and return the `TaskResult` it got from enqueueing",
         "the returned value is a TaskResult (not its id, not its return value) whose id is the enqueued row's"),
        ("The check starts a `db_worker` and waits for the worker's verdict",
         "the check waits (20 s at most) for the row to finish; a FAILED row is explained with its exception"),
    )),
    "enqueue-on-commit": Requirements("190d20c46845", (
        ("`place_order_sync(item)` saves an `Order` ... the function is sync",
         "a plain `def`, run with sync_to_async; each call with a new random item must save an order for it"),
        ("and enqueues `confirm_order` for it on `queue`, Huey's queue",
         "exactly one enqueue of confirm_order per committed call, on the backend 'huey', with `order_id` (bound to "
         "the signature) the id of the order saved"),
        ("No worker may see the task before the order's row is committed",
         "called on its own: no enqueue while a transaction is open; called inside a caller's transaction that "
         "commits: no enqueue before the caller's commit, one after it"),
        ("and none may ever see it if the transaction (yours, or one your caller opened around it) is rolled back",
         "called inside a caller's transaction that is then rolled back: no enqueue at all; and the function must "
         "run inside a caller's transaction (a durable block refuses to)"),
        ("Return the order's id", "the value returned is the saved order's id (an int), not the Order"),
        ("if the order cannot be saved, let the error reach your caller",
         "a call whose save the check makes fail (an IntegrityError from a pre_save receiver, for that item only) "
         "must raise, return nothing and enqueue nothing"),
    )),
    "keep-a-reference": Requirements("ca2dcf79b60b", (
        ("`spawn(coro)` starts `coro` in the background on the running event loop and returns the task",
         "a plain `def`; three coroutines spawned one after another: each returns an asyncio.Task that starts "
         "running it, and whose result is what that coroutine returned (a random reply per run)"),
        ("Several tasks may be in the background at once",
         "the three wait together on futures only they hold, and finish one at a time"),
        ("Make sure each task cannot be garbage-collected before it finishes",
         "the check keeps only weak references, as the event loop does: after gc.collect() every waiting task must "
         "be alive, also the ones still waiting after another finished"),
        ("and that nothing keeps it once it has finished (returned, raised or been cancelled)",
         "after each task ends (one returns, one raises, one is cancelled) and gc.collect(), it must be gone"),
        ("Use the `background` set", "while a task waits it is in the notebook's `background` set; none is left in "
                                     "it at the end"),
    )),
    "wait-or-ticket": Requirements("df1a23dda855", (
        ("`GET ?text=<text>&wait=<seconds>` enqueues the count for the worker (`worker_count` below)",
         "a db_worker started by the check counts the words; three new texts asked at the same moment"),
        ("then waits up to `wait` seconds for the worker's answer without blocking the event loop",
         "wait=3: each of the three must answer 200 with its own count (the worker takes a fraction of a second); "
         "a heartbeat on the loop must never stall"),
        ("If the task succeeded in time, answer `{\"words\": <count>}`; if not, answer 202 with "
         "`{\"task\": <the task's id>}` at once",
         "wait=0: HTTP 202 and an id, which the status request below must know"),
        ("`GET ?task=<id>` answers that task's state: `{\"status\": ..., \"words\": <the count, or null until "
         "the task has succeeded>}`",
         "a task the check parked for an hour (run_after): READY and null; the ticket's id, polled: SUCCESSFUL "
         "and the count of its text"),
        ("and 404 for an id the backend does not know", "a new random UUID: HTTP 404, not a 500"),
    )),
}


async def _chapter_settings() -> None:
    """The checks need the chapter's settings (task backends, apps) in this kernel; idempotent."""
    await apply_chapter_settings("sandbox.tasks_lab.settings", quiet=True)


def _words(low: int, high: int) -> str:
    return " ".join(random.choices(WORDS, k=random.randint(low, high)))


def _item() -> str:
    return f"{random.choice(WORDS)} {uuid.uuid4().hex[:6]}"


def _order_id(task_result):
    """The `order_id` an enqueue of confirm_order was given, positional or keyword; None if they do not bind."""
    from sandbox.tasks_lab.tasks import confirm_order

    try:
        bound = inspect.signature(confirm_order.func).bind(*task_result.args, **task_result.kwargs)
    except TypeError:
        return None
    return bound.arguments.get("order_id")


def _same_id(given, pk: int) -> bool:
    return given is not None and not isinstance(given, bool) and str(given) == str(pk)


@contextlib.contextmanager
def _watch_enqueues(task):
    """Record every enqueue of `task` (any backend): its result, its backend, the `order_id` it was given, and how
    many atomic blocks were open on the enqueuing thread's connection at that moment."""
    seen: list[dict] = []

    def enqueued(sender, task_result, **kwargs):
        if task_result.task.func is task.func:
            seen.append({"result": task_result, "backend": task_result.backend, "finished": None,
                         "depth": len(connection.atomic_blocks) if connection.in_atomic_block else 0})

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


def _task_meaning(exc: BaseException) -> str:
    """What the exceptions of django.tasks and transactions mean, in a sentence."""
    name, text = type(exc).__name__, str(exc)
    if name == "InvalidTask" and text.startswith("Queue"):
        return ("`queue_name` names a queue *inside* a backend, and this backend has no queue of that name: a "
                "backend is chosen by its alias, with the `backend` argument of `using(...)`.")
    if name == "InvalidTaskBackend":
        return "There is no task backend of that name: settings.TASKS defines 'default', 'dummy', 'db' and 'huey'."
    if name == "InvalidTask":
        return "The backend refused the task itself (see chapter 07, \"a task the worker can run\")."
    if name == "TypeError" and text.startswith("Unsupported type"):
        return ("A backend stores a task's arguments as JSON: pass plain values (the order's id), not a model "
                "instance or another object.")
    if name == "RuntimeError" and "durable" in text:
        return ("A durable atomic block refuses to run inside another transaction, and your function must work "
                "inside a caller's transaction too.")
    return ""


def _learner_error(ex: str, exc: BaseException, what: str) -> ExerciseFailed:
    """An exception raised in the learner's code, explained: what raised it, where, and what it means."""
    mine = learner_frames(exc)
    where = f" in {mine[-1].name}() (line {mine[-1].lineno})" if mine else ""
    said = str(exc).strip()
    said = f": {said}{'' if said.endswith('.') else '.'}" if said else "."
    meaning = _task_meaning(exc) or harness_meaning(exc)
    return ExerciseFailed(ex, f"{what} raised {type(exc).__name__}{where}{said} {meaning}".strip())


def _last_line(traceback_text: str) -> str:
    lines = [line for line in (traceback_text or "").strip().splitlines() if line.strip()]
    return lines[-1].strip()[:140] if lines else ""


# --- exercise 'enqueue-from-async' ----------------------------------------------------------------------------

@exercise_check("enqueue-from-async")
async def enqueue_from_async(place_order, n: int = 3) -> None:
    """Exercise 'enqueue-from-async': an async view saves an order and enqueues `confirm_order` for it on the
    default backend; the view answers the task's id and status."""
    ex = "enqueue-from-async"
    require_async_function(ex, place_order, "place_order")
    await _chapter_settings()
    from sandbox.tasks_lab.models import Order
    from sandbox.tasks_lab.tasks import confirm_order

    items = [_item() for _ in range(n)]
    with _watch_enqueues(confirm_order) as seen:
        async with serving(ex, place_order) as served:
            answers = await asyncio.gather(*(served.client.get("/exercise/", params={"item": item})
                                             for item in items))
    if any(entry["result"].errors and entry["result"].errors[0].exception_class_path == SOO for entry in seen):
        raise ExerciseFailed(ex, "a sync `enqueue()` from async code: ImmediateBackend ran confirm_order at once, "
                                 "on the event loop's thread, where the ORM refuses to run "
                                 "(SynchronousOnlyOperation). The result came back FAILED and nothing was "
                                 "raised: in async code, enqueue with the async twin of `enqueue`, and await it")
    expect_all_awaited(ex, served.never_awaited, "`aenqueue(...)` gives back a coroutine, and nothing is enqueued "
                                                 "until it is awaited")
    for exc in served.errors:
        if "coroutine" in str(exc):
            close_coroutines(exc)
            raise ExerciseFailed(ex, f"the view failed with {type(exc).__name__}: {exc}. A coroutine was used as a "
                                     "value: `aenqueue(...)` gives back a coroutine, which was never awaited, and "
                                     "nothing is enqueued until it is awaited")
    if served.errors and _task_meaning(served.errors[0]):  # the enqueue itself raised: say what it means
        raise _learner_error(ex, served.errors[0], "the view")
    if not seen:
        raised = (f" (and then the view raised {type(served.errors[0]).__name__}: {served.errors[0]})"
                  if served.errors else "")
        raise ExerciseFailed(ex, "confirm_order was never enqueued: `call()`, `acall()` or the function itself "
                                 "runs the work right here, inside the request, with no TaskResult and no backend"
                                 f"{raised}; enqueue it instead")
    if served.errors:
        raise _learner_error(ex, served.errors[0], "the view")
    orders = {o.item: o async for o in Order.objects.filter(item__in=items)}
    missing = [item for item in items if item not in orders]
    if missing:
        raise ExerciseFailed(ex, f"no order was saved for the request with ?item={missing[0]!r}: keep the line "
                                 "that saves the order")
    for entry in seen:
        if entry["backend"] != "default":
            raise ExerciseFailed(ex, f"confirm_order was enqueued on the {entry['backend']!r} backend, which "
                                     f"{_where(entry['backend'])}; the task says the default backend "
                                     "(ImmediateBackend), which runs it at once: leave the backend as it is")
    for item in items:
        order = orders[item]
        mine = [entry for entry in seen if _same_id(_order_id(entry["result"]), order.pk)]
        if not mine:
            given = [_order_id(entry["result"]) for entry in seen]
            raise ExerciseFailed(ex, f"no enqueue of confirm_order was for the order this request saved (id "
                                     f"{order.pk}, item {item!r}): the `order_id`s enqueued were {given}. Enqueue "
                                     "it with the id of the order the view has just saved")
        if len(mine) > 1:
            raise ExerciseFailed(ex, f"confirm_order was enqueued {len(mine)} times for one order: enqueue it once "
                                     "per order (every enqueue runs the task again)")
    if len(seen) != n:
        raise ExerciseFailed(ex, f"{n} requests enqueued confirm_order {len(seen)} times: once per request, for "
                                 "its own order")
    for item, answer in zip(items, answers, strict=True):
        order = orders[item]
        entry = next(entry for entry in seen if _same_id(_order_id(entry["result"]), order.pk))
        outcome = entry["finished"] or entry["result"]
        if outcome.status != "SUCCESSFUL":
            error = (f"{outcome.errors[0].exception_class_path}: {_last_line(outcome.errors[0].traceback)}"
                     if outcome.errors else "no error recorded")
            raise ExerciseFailed(ex, f"confirm_order came back {outcome.status} ({error}): the task did not run to "
                                     "the end")
        if outcome.return_value != f"confirmed: {item}":
            raise ExerciseFailed(ex, f"confirm_order returned {outcome.return_value!r} for the order of item "
                                     f"{item!r}: it read another order")
        expect_status(ex, answer.status_code, 200, "the view")
        body = expect_json(ex, answer, "the view")
        if not isinstance(body, dict) or body.get("task") != outcome.id or body.get("status") != outcome.status:
            raise ExerciseFailed(ex, "answer the id and the status of the TaskResult that the enqueue gave back "
                                     f"(for the order of item {item!r}: task {outcome.id!r}, status "
                                     f"{outcome.status!r}; the view answered {str(body)[:120]})")
    passed(ex, f"{n} requests at once: each enqueued confirm_order once on the default backend, for its own order, "
               "and each task came back SUCCESSFUL")


def _where(backend: str) -> str:
    return {
        "dummy": "stores the task and never runs it",
        "db": "stores it in a table for a db_worker to run later (none runs here)",
        "huey": "puts it on Huey's queue for a Huey consumer to run later (none runs here)",
    }.get(backend, "is not the default one")


# --- exercise 'importable-task' -------------------------------------------------------------------------------

async def _start_db_worker():
    return await start_worker(
        "db_worker", ["django", "db_worker", "--backend", "db", "--interval", "0.1", "--no-startup-delay",
                      "--no-reload"],
        ready="Starting worker", quiet=True,
        env={"DJANGO_SETTINGS_MODULE": "sandbox.tasks_lab.settings", "TASKS_LAB_PROCESS": "db_worker"})


_db_worker = Kept(_start_db_worker)  # one db_worker for the kernel (the notebook's `lab.stop_all()` stops it)


@exercise_check("importable-task")
async def importable_task(count_on_worker) -> None:
    """Exercise 'importable-task': get `count_words` run by the real db_worker and return its TaskResult."""
    ex = "importable-task"
    require_async_function(ex, count_on_worker, "count_on_worker")
    await _chapter_settings()
    from django_tasks_db.models import DBTaskResult

    worker = await _db_worker()  # before the call: an answer may wait for the worker's verdict itself
    texts = [_words(3, 6), _words(7, 11), ""]
    random.shuffle(texts)
    results = []
    for text in texts:
        try:
            result = await call(ex, count_on_worker, text, what="count_on_worker", timeout=20)
        except SynchronousOnlyOperation:
            raise ExerciseFailed(ex, "a sync `enqueue()` from async code: the database backend writes the task's "
                                     "row with the sync ORM, on the event loop's thread, which raises "
                                     "SynchronousOnlyOperation; in async code, enqueue with the async twin of "
                                     "`enqueue`, and await it") from None
        except (ExerciseFailed, NotImplementedError):
            raise
        except Exception as exc:
            raise _learner_error(ex, exc, "count_on_worker") from None
        results.append(result)
    for result in results:
        if not isinstance(result, TaskResult):
            raise ExerciseFailed(ex, f"count_on_worker returned {type(result).__name__} {str(result)[:60]!r}: "
                                     "return the TaskResult itself, the object that enqueueing gave back (the "
                                     "check reads the worker's verdict from it)")
    for result in results:
        if result.backend != "db":
            raise ExerciseFailed(ex, f"the task went to the {result.backend!r} backend, which "
                                     f"{_not_the_worker(result.backend)}, not in the worker: the worker reads "
                                     "only the database backend's table, so choose that backend by its alias")
    rows = []
    for result in results:
        row = await DBTaskResult.objects.filter(id=result.id).afirst()
        if row is None:
            raise ExerciseFailed(ex, "the TaskResult returned has no row in the database backend's table: return "
                                     "the result of the enqueue itself")
        rows.append(row)
    try:
        async with asyncio.timeout(20):
            while any(row.status not in ("SUCCESSFUL", "FAILED") for row in rows):
                await asyncio.sleep(0.05)
                rows = [await DBTaskResult.objects.aget(id=row.id) for row in rows]
    except TimeoutError:
        if not worker.alive():
            raise RuntimeError(f"the db_worker died: {worker.log_tail(5)}") from None
        raise ExerciseFailed(ex, "the worker did not finish the task within 20 s (still "
                                 f"{[row.status for row in rows]}): was it enqueued to run later (`run_after`)?") \
            from None
    for text, row in zip(texts, rows, strict=True):
        if row.status == "FAILED":
            if row.task_path.startswith("__main__."):
                raise ExerciseFailed(ex, f"the worker could not import `{row.task_path}` "
                                         f"({row.exception_class_path}): a task defined in a notebook cell lives "
                                         "in the kernel's `__main__`, which no other process has; enqueue a task "
                                         "from an importable module (the sandbox has one that counts words)")
            raise ExerciseFailed(ex, f"the worker ran {row.task_path} and it failed with "
                                     f"{_last_line(row.traceback) or row.exception_class_path}: was the task given "
                                     "the text itself?")
        expected = len(text.split())
        if row.return_value != expected:
            raise ExerciseFailed(ex, f"for a text of {expected} words the worker returned {row.return_value!r}: "
                                     "count the words of the `text` count_on_worker was given")
    passed(ex, f"the db_worker (pid {worker.pid}) imported {rows[0].task_path} and counted "
               f"{[row.return_value for row in rows]} words in {len(rows)} new texts")


def _not_the_worker(backend: str) -> str:
    return {
        "default": "runs it at once, in this kernel (ImmediateBackend)",
        "dummy": "stores it and never runs it",
        "huey": "puts it on Huey's queue, which the db_worker never reads",
    }.get(backend, "is not the database backend")


# --- exercise 'enqueue-on-commit' -----------------------------------------------------------------------------

class _CallerRollsBack(Exception):
    pass


@contextlib.contextmanager
def _refusing(item: str):
    """Saving an Order for `item` fails, as a constraint of the database would refuse it."""
    from sandbox.tasks_lab.models import Order

    def refuse(sender, instance, **kwargs):
        if instance.item == item:
            raise IntegrityError(f"the check refused to save the order for {item!r}")

    pre_save.connect(refuse, sender=Order, weak=False)
    try:
        yield
    finally:
        pre_save.disconnect(refuse, sender=Order)


@exercise_check("enqueue-on-commit")
async def enqueue_on_commit(place_order) -> None:
    """Exercise 'enqueue-on-commit': the task goes to `queue` once the order's row is committed, and never for a
    rolled-back transaction, the learner's or the caller's; a save that fails reaches the caller."""
    ex = "enqueue-on-commit"
    if not callable(place_order):
        raise ExerciseFailed(ex, f"place_order_sync should be a function, got {type(place_order).__name__}")
    if inspect.iscoroutinefunction(place_order):
        raise ExerciseFailed(ex, "place_order_sync must stay a sync function (`def`): transactions need sync code "
                                 "(transaction.atomic raises in async code); the check runs it with sync_to_async")
    await _chapter_settings()
    from sandbox.tasks_lab.models import Order
    from sandbox.tasks_lab.tasks import confirm_order

    def inside_callers_transaction(item: str, commit: bool):
        """The caller's transaction (ATOMIC_REQUESTS, or a service calling place_order): it commits, or rolls back."""
        with transaction.atomic():
            returned = place_order(item)
            if not commit:
                raise _CallerRollsBack
        return returned

    async def run(item: str, caller: str = "none", *, refused: bool = False):
        """Run place_order as `caller` says: "none" (on its own), "commits" or "rolls back" (in a caller's
        transaction). Returns (what it returned, or with `refused`: the exception it raised; the enqueues seen).
        `refused`: the check makes the order's save fail."""
        with _watch_enqueues(confirm_order) as seen, _refusing(item) if refused else contextlib.nullcontext():
            try:
                async with asyncio.timeout(20):
                    if caller == "none":
                        returned = await sync_to_async(place_order)(item)
                    else:
                        returned = await sync_to_async(inside_callers_transaction)(item, caller == "commits")
            except _CallerRollsBack:
                returned = None
            except NotImplementedError:
                raise not_attempted(ex) from None
            except TimeoutError:
                raise ExerciseFailed(ex, "place_order_sync did not return within 20 s") from None
            except Exception as exc:
                if refused:
                    return exc, seen
                raise _place_order_error(ex, exc) from None
        if refused:
            return None, seen
        if inspect.iscoroutine(returned):
            returned.close()
            raise ExerciseFailed(ex, "place_order_sync returned a coroutine: keep it a plain function, with no "
                                     "async code inside")
        return returned, seen

    # 1. on its own: enqueued once, on Huey's queue, after the commit, for the order saved; its id returned
    item = _item()
    returned, seen = await run(item)
    order = await Order.objects.filter(item=item).afirst()
    if order is None:
        raise ExerciseFailed(ex, f"no order was saved for the item {item!r}: save an Order for the `item` given")
    if not seen:
        raise ExerciseFailed(ex, "confirm_order was never enqueued: once the order is committed, enqueue it on "
                                 "`queue` with the order's id")
    if any(entry["depth"] for entry in seen):
        raise ExerciseFailed(ex, "the task was enqueued inside the open transaction, before the order's row was "
                                 "committed: a worker can run it first and find no order (Order.DoesNotExist). "
                                 "Have the transaction enqueue it when it commits: `transaction.on_commit`")
    wrong = [entry["backend"] for entry in seen if entry["backend"] != "huey"]
    if wrong:
        raise ExerciseFailed(ex, f"confirm_order went to the {wrong[0]!r} backend, not to `queue` (Huey's queue, "
                                 f"the backend 'huey'): the {wrong[0]!r} backend {_where_else(wrong[0])}")
    given = [_order_id(entry["result"]) for entry in seen]
    if not any(_same_id(g, order.pk) for g in given):
        raise ExerciseFailed(ex, f"confirm_order was enqueued with the `order_id` {given[0]!r}, not the id of the "
                                 f"order just saved ({order.pk})")
    if len(seen) != 1:
        raise ExerciseFailed(ex, f"confirm_order was enqueued {len(seen)} times for one order: once is enough")
    if isinstance(returned, Order):
        raise ExerciseFailed(ex, "place_order_sync returned the Order itself: return the order's id")
    if returned != order.pk or isinstance(returned, bool):
        raise ExerciseFailed(ex, f"place_order_sync returned {returned!r}, not the id of the order it saved "
                                 f"({order.pk})")

    # 2. inside a caller's transaction that commits: nothing before the caller's commit, one enqueue after it
    item = _item()
    returned, seen = await run(item, "commits")
    if any(entry["depth"] == 1 for entry in seen):
        raise ExerciseFailed(ex, "the task was enqueued while the caller's transaction was still open, once your "
                                 "own part was done: inside another transaction (ATOMIC_REQUESTS, a service's "
                                 "`atomic`), the end of your block commits nothing, and a worker can run the task "
                                 "before the order's row is committed. `transaction.on_commit` waits for the "
                                 "outermost commit")
    if any(entry["depth"] for entry in seen):
        raise ExerciseFailed(ex, "inside a caller's transaction, the task was enqueued before the order's row was "
                                 "committed")
    order = await Order.objects.filter(item=item).afirst()
    if order is None or len(seen) != 1 or not _same_id(_order_id(seen[0]["result"]), order.pk):
        raise ExerciseFailed(ex, "inside a caller's transaction that commits, confirm_order should be enqueued "
                                 f"once, for the order saved, after the commit: it was enqueued {len(seen)} time(s)")

    # 3. inside a caller's transaction that rolls back: no enqueue at all
    returned, seen = await run(_item(), "rolls back")
    if seen:
        raise ExerciseFailed(ex, "the task was enqueued although the caller's transaction was rolled back: when "
                                 "place_order_sync runs inside another transaction (ATOMIC_REQUESTS, a service's "
                                 "`atomic`), the end of your own block commits nothing. `transaction.on_commit` "
                                 "waits for the outermost commit, and drops the task on a rollback")

    # 4. the order cannot be saved: the error reaches the caller, nothing is enqueued, nothing saved
    item = _item()
    raised, seen = await run(item, refused=True)
    if seen:
        raise ExerciseFailed(ex, "the order could not be saved (the check made its save fail), yet confirm_order was "
                                 "enqueued: a worker would look for an order that does not exist")
    if raised is None:
        raise ExerciseFailed(ex, "the order could not be saved (the check made its save fail with an "
                                 "IntegrityError), yet place_order_sync returned as if all went well: let the error "
                                 "reach your caller, who cannot tell a failure from a success otherwise")
    if await Order.objects.filter(item=item).aexists():
        raise ExerciseFailed(ex, "the order could not be saved, yet a row for it is in the table")
    passed(ex, "confirm_order went to Huey's queue once per committed order, after the outermost commit, not at all "
               "for a rolled-back transaction, and a failed save reached the caller")


def _place_order_error(ex: str, exc: BaseException) -> ExerciseFailed:
    if isinstance(exc, TypeError) and "on_commit" in str(exc):
        return ExerciseFailed(ex, "on_commit() got the result of `enqueue(...)`, not a function: the task was "
                                  "enqueued at once, inside the transaction (which your TypeError then rolled back); "
                                  "`on_commit` takes a callable that enqueues, with no arguments (a `partial` or a "
                                  "lambda)")
    return _learner_error(ex, exc, "place_order_sync")


def _where_else(backend: str) -> str:
    return {
        "default": "runs the task at once, in this process, instead of queueing it for a worker",
        "db": "is a table in the database, not Huey's queue",
        "dummy": "stores the task and never runs it",
    }.get(backend, "is not Huey's")


# --- exercise 'keep-a-reference' ------------------------------------------------------------------------------

@exercise_check("keep-a-reference")
async def keep_a_reference(spawn, n: int = 3) -> None:
    """Exercise 'keep-a-reference': `spawn(coro)` keeps each task alive until it is done, and no longer."""
    ex = "keep-a-reference"
    if not callable(spawn):
        raise ExerciseFailed(ex, f"spawn should be a function, got {type(spawn).__name__}")
    if inspect.iscoroutinefunction(spawn):
        raise ExerciseFailed(ex, "spawn should be a plain function (`def`) that starts the task and returns it")
    namespace = getattr(spawn, "__globals__", None)
    if namespace is not None and "background" not in namespace:
        raise ExerciseFailed(ex, "there is no `background` set any more: keep the one the exercise cell defines")
    background = learner_object(ex, "background", namespace=namespace)
    if not isinstance(background, set):
        raise ExerciseFailed(ex, f"`background` should stay a set, got {type(background).__name__}")
    loop = asyncio.get_running_loop()
    reported: list[str] = []
    previous = loop.get_exception_handler()
    replies = [f"reply {uuid.uuid4().hex[:6]}" for _ in range(n)]
    futures: dict[int, weakref.ref] = {}

    def waiting(k: int):
        async def wait_for_reply():
            reply = loop.create_future()  # only this coroutine holds it, as in the lesson
            futures[k] = weakref.ref(reply)
            return await reply
        return wait_for_reply()

    refs: list[weakref.ref] = []  # the check keeps only weak references to the tasks, as the event loop does
    loop.set_exception_handler(lambda loop, context: reported.append(context["message"]))
    try:
        _spawn_all(ex, spawn, [waiting(k) for k in range(n)], refs)
        try:
            async with asyncio.timeout(5):
                while len(futures) < n:  # each task starts and parks on its future
                    await asyncio.sleep(0.01)
        except TimeoutError:
            raise ExerciseFailed(ex, f"only {len(futures)} of the {n} coroutines ever started: the task spawn "
                                     "returns must run the coroutine it was given") from None
        await asyncio.sleep(0)
        gc.collect()
        alive = [ref() is not None for ref in refs]
        if not any(alive):
            destroyed = [m for m in reported if "destroyed" in m]
            raise ExerciseFailed(ex, "the tasks were garbage-collected while they were still waiting"
                                     f"{' (' + destroyed[0] + ')' if destroyed else ''}: the event loop keeps only "
                                     "a weak reference to a task; keep a strong one until it is done")
        if not all(alive):
            raise ExerciseFailed(ex, f"{alive.count(False)} of {n} tasks spawned one after another were garbage-"
                                     "collected while they were still waiting: each task needs a reference of its "
                                     "own, kept until that task is done (a later task must not replace it)")
        if any(ref() not in background for ref in refs):
            raise ExerciseFailed(ex, "a waiting task is alive but not in the `background` set: keep the reference "
                                     "in that set, as the task asks")
        # one returns, one raises, one is cancelled; after each, the others must still be alive
        endings = ("returns", "raises", "is cancelled")
        for k, ref in enumerate(refs):
            ending = endings[k % len(endings)]
            task = ref()
            future = futures[k]()
            if ending == "returns":
                future.set_result(replies[k])
            elif ending == "raises":
                future.set_exception(LookupError(replies[k]))
            else:
                task.cancel()
            done, _ = await asyncio.wait({task}, timeout=5)
            if not done:
                raise ExerciseFailed(ex, f"the task that {ending} had not finished 5 s later: does it run the "
                                         "coroutine it was given?")
            outcome = _outcome(task)
            if ending == "returns" and outcome != ("result", replies[k]):
                raise ExerciseFailed(ex, f"the task's result is {outcome[1]!r}, not what its coroutine returned "
                                         f"({replies[k]!r}): return the task that runs the coroutine itself")
            if ending == "raises" and outcome[0] != "exception":
                raise ExerciseFailed(ex, f"the coroutine raised, but its task ended with {outcome}: return the "
                                         "task that runs the coroutine itself")
            del task, future, done
            for _ in range(3):  # done callbacks run on the next turns of the loop
                await asyncio.sleep(0)
            gc.collect()
            if ref() is not None:
                leak = ("a set that only grows keeps every finished task, and its result, forever (a memory leak)"
                        if ending == "returns" else
                        f"a task that {ending} has finished too, and must be let go of however it ended (a memory "
                        "leak otherwise)")
                raise ExerciseFailed(ex, f"the task that {ending} is still referenced once finished: {leak}; "
                                         "let each task take itself out of the set when it is done")
            later = [r for r in refs[k + 1:] if r() is None]
            if later:
                raise ExerciseFailed(ex, f"when one task finished, {len(later)} other task(s) still waiting were "
                                         "garbage-collected: finishing must remove that task only, not the others")
    finally:
        await _cancel_the_rest(refs)
        loop.set_exception_handler(previous)
    passed(ex, f"{n} tasks survived the garbage collector while they waited, each was forgotten once it returned, "
               "raised or was cancelled, and the others lived on")


def _spawn_all(ex: str, spawn, coros: list, refs: list[weakref.ref]) -> None:
    """Spawn each coroutine; a weak reference to each task goes to `refs`."""
    for k, coro in enumerate(coros):
        try:
            started = spawn(coro)
        except NotImplementedError:
            for c in coros:
                c.close()
            raise not_attempted(ex) from None
        except Exception as exc:
            for c in coros[k:]:
                c.close()
            raise _learner_error(ex, exc, "spawn") from None
        if inspect.iscoroutine(started):
            for c in {*coros, started}:
                c.close()
            raise ExerciseFailed(ex, "spawn returned the coroutine itself: a coroutine runs only when it is awaited "
                                     "or wrapped in a task; start it as a task on the running loop")
        if not isinstance(started, asyncio.Task):
            for c in coros[k:]:
                c.close()
            raise ExerciseFailed(ex, f"spawn should return the task it started (got {type(started).__name__})")
        reject_coroutine(ex, started, "what spawn returned")
        refs.append(weakref.ref(started))
        del started


async def _cancel_the_rest(refs: list[weakref.ref]) -> None:
    """After a failed check: cancel the check's tasks still waiting, so that none is left in the learner's set (to be
    destroyed, with a warning, under a later cell)."""
    pending = [task for ref in refs if (task := ref()) is not None and not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=5)
        for task in pending:
            if task.done():
                _outcome(task)


def _outcome(task: asyncio.Task) -> tuple[str, object]:
    """How a finished task ended, with its exception retrieved (so that the loop does not log it)."""
    if task.cancelled():
        return ("cancelled", None)
    if task.exception() is not None:
        return ("exception", type(task.exception()).__name__)
    return ("result", task.result())


# --- exercise 'wait-or-ticket' --------------------------------------------------------------------------------

def _ticket_errors(ex: str, served) -> None:
    """What the learner's view raised, explained (the backend's own exceptions by name)."""
    for exc in served.errors:
        if type(exc).__name__ == "TaskResultDoesNotExist":
            raise ExerciseFailed(ex, "?task=<an id the backend does not know> raised TaskResultDoesNotExist, which "
                                     "Django answers with HTTP 500: answer 404 for it")
        if isinstance(exc, ValueError) and "has not finished" in str(exc):
            raise ExerciseFailed(ex, f"the view read a result's return value before the task had succeeded ({exc}): "
                                     "until the status is SUCCESSFUL there is no value to give")
        if isinstance(exc, SynchronousOnlyOperation):
            raise ExerciseFailed(ex, "a sync call of the task API (enqueue, get_result, refresh) ran the sync ORM "
                                     "on the event loop's thread: each has an async twin to await")
    if served.errors:
        raise _learner_error(ex, served.errors[0], "the view")


def _expect_state(ex: str, response, what: str, expected: dict) -> None:
    body = expect_json(ex, response, what)
    if response.status_code != 200 or body != expected:
        raise ExerciseFailed(ex, f"{what} answered HTTP {response.status_code} {str(body)[:80]}: expected "
                                 f"{json.dumps(expected)}")


def _unfinished(body) -> bool:
    """Whether a status answer still says READY or RUNNING, however it spells them."""
    return isinstance(body, dict) and str(body.get("status")).upper() in ("READY", "RUNNING")


@exercise_check("wait-or-ticket")
async def wait_or_ticket(words_view) -> None:
    """Count words on the db_worker: wait up to `wait` seconds without blocking (200 with the count), else answer a
    ticket (202 with the id); `?task=<id>` answers its status and count (null until done), 404 when unknown."""
    ex = "wait-or-ticket"
    require_async_function(ex, words_view, "words_view")
    await _chapter_settings()
    from sandbox.tasks_lab import tasks

    worker = await _db_worker()
    texts = [_words(2, 5), _words(6, 9), _words(10, 14)]
    later = tasks.count_words.using(backend="db", run_after=timezone.now() + timedelta(hours=1))
    parked = await later.aenqueue(_words(3, 4))  # READY for an hour: its status, with no count yet
    ticket_text = _words(4, 8)
    async with serving(ex, words_view) as served:
        waited = await asyncio.gather(*(served.client.get("/exercise/", params={"text": t, "wait": "3"})
                                        for t in texts))
        ticket = await served.client.get("/exercise/", params={"text": ticket_text, "wait": "0"})
        ready = await served.client.get("/exercise/", params={"task": parked.id})
        unknown = await served.client.get("/exercise/", params={"task": str(uuid.uuid4())})
        done = None
        if ticket.status_code == 202:
            body = expect_json(ex, ticket, "the ticket")
            ticket_id = body.get("task") if isinstance(body, dict) else None
            with contextlib.suppress(TimeoutError):  # judged below by the last answer
                async with asyncio.timeout(20):
                    while done is None or done.status_code == 200 and _unfinished(done.json()):
                        await asyncio.sleep(0.1)
                        done = await served.client.get("/exercise/", params={"task": ticket_id})
    if not worker.alive():
        raise RuntimeError(f"the db_worker died: {worker.log_tail(5)}")
    expect_all_awaited(ex, served.never_awaited, "an async task call without `await` only creates a coroutine")
    _ticket_errors(ex, served)
    if served.max_gap > BLOCKED:
        raise ExerciseFailed(ex, f"the event loop was blocked for {served.max_gap:.2f} s while the view waited: wait "
                                 "with an awaited sleep between checks, never time.sleep")
    for text, response in zip(texts, waited, strict=True):
        if response.status_code == 202:
            raise ExerciseFailed(ex, "?wait=3 answered 202 although the worker counts a text in a fraction of a "
                                     "second: wait for the worker's answer, up to `wait` seconds, before giving a "
                                     "ticket")
        expect_status(ex, response.status_code, 200, "?text=...&wait=3")
        body = expect_json(ex, response, "?text=...&wait=3")
        if body != {"words": len(text.split())}:
            raise ExerciseFailed(ex, f"a text of {len(text.split())} words answered {str(body)[:80]}: expected "
                                     f"{{\"words\": {len(text.split())}}}, counted by the worker")
    if ticket.status_code != 202:
        raise ExerciseFailed(ex, f"?wait=0 answered HTTP {ticket.status_code}: with no time to wait, answer 202 with "
                                 "the task's id at once, and let the client ask later")
    ticket_body = expect_json(ex, ticket, "?wait=0")
    if not isinstance(ticket_body, dict) or set(ticket_body) != {"task"} or not isinstance(ticket_body["task"], str):
        raise ExerciseFailed(ex, f"?wait=0 answered {str(ticket_body)[:80]}: a ticket is exactly "
                                 "{\"task\": <the task's id>}")
    _expect_state(ex, ready, "?task=<a task still waiting for the worker>", {"status": "READY", "words": None})
    if unknown.status_code != 404:
        raise ExerciseFailed(ex, f"?task=<an id the backend does not know> answered HTTP {unknown.status_code}: "
                                 "answer 404")
    _expect_state(ex, done, "?task=<the ticket's id>, once the worker was done",
                  {"status": "SUCCESSFUL", "words": len(ticket_text.split())})
    passed(ex, f"three waits answered by the db_worker (pid {worker.pid}) with {[len(t.split()) for t in texts]} "
               "words; a ticket at once, then its count; READY with no count for a task not run yet; 404 for an "
               "unknown id; the loop never stalled")
