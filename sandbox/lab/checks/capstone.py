"""Checks for the exercises of chapter 09, the capstone: a live auction built in a package of your own.

The learner's code lives in real module files (`auction_live/consumers.py`, `tasks.py`, `views.py` in the
notebook's data directory), because a server and a worker are other processes and run only what they can
import. So every check runs it for real: daphne serves the learner's consumer and view, django-tasks-db's
`db_worker` runs the learner's task, a private Redis carries the channel layer's messages between the processes,
the slow upstream plays the fraud-check service, and the check talks to all of it as a browser would (a real
WebSocket, real HTTP requests sent at once). The mistake is told apart by what happened: what the WebSocket
received, what the servers logged (a traceback, a coroutine that was never awaited), what the worker recorded
for the task, how many fraud checks the upstream saw in flight at once, and the rows in the database.

Redis and the upstream start once per kernel; daphne and the worker start in each check (they must import the
files as they are now) and stop at its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from pathlib import Path

from sandbox.lab.checks.common import ExerciseFailed, not_attempted, passed, require_async_function

PACKAGE = "auction_live"

_services: dict = {}


async def _chapter() -> None:
    """The chapter's settings in this kernel and the learner's package on its path; idempotent."""
    from sandbox.capstone import run, setup

    await setup.apply(quiet=True)
    run.workspace()


async def _redis():
    from sandbox.lab.services import start_redis

    if _services.get("redis") is None or not _services["redis"].alive():
        _services["redis"] = await start_redis(quiet=True)
    return _services["redis"]


async def _upstream():
    from sandbox.lab.servers import start_upstream

    if _services.get("upstream") is None or not _services["upstream"].alive():
        _services["upstream"] = await start_upstream(quiet=True)
    return _services["upstream"]


def _log(process) -> str:
    if process is None or not process.log_path.exists():
        return ""
    return process.log_path.read_text(errors="replace")


STUB = re.compile(r"# YOUR CODE HERE\n\s*raise NotImplementedError")  # what `course exercises` leaves in place


def _import(ex: str, module: str):
    """Import the learner's module in this kernel, as it is on disk now; a clear message when that fails. A module
    that still holds the exercise's stub is "not attempted" at once: the check's processes need not start."""
    from sandbox.capstone import run

    try:
        imported = run.import_fresh(f"{PACKAGE}.{module}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith(PACKAGE):
            raise ExerciseFailed(ex, f"there is no `{exc.name}` yet: run the cell that writes "
                                     f"{PACKAGE}/{exc.name.split('.')[-1]}.py first") from None
        raise ExerciseFailed(ex, f"{PACKAGE}/{module}.py could not be imported: {exc}") from None
    except Exception as exc:
        raise ExerciseFailed(ex, f"{PACKAGE}/{module}.py could not be imported: "
                                 f"{type(exc).__name__}: {exc}") from None
    if STUB.search(Path(imported.__file__).read_text()):
        raise not_attempted(ex)
    return imported


async def _start(ex: str, *, server: bool, worker: bool):
    """daphne and/or the worker for the learner's package; a server that cannot start is the learner's error."""
    from sandbox.capstone import run
    from sandbox.lab.servers import ServerError

    try:
        return await run.start(PACKAGE, redis=await _redis(), server=server, worker=worker)
    except ServerError as exc:
        last = [line for line in str(exc).splitlines() if line.strip()][-1]
        raise ExerciseFailed(ex, f"the app's processes could not start with your package: {last}") from None


def _never_awaited(log: str) -> list[str]:
    return sorted(set(re.findall(r"coroutine '([^']+)' was never awaited", log)))


def _fail_never_awaited(ex: str, log: str, where: str) -> None:
    names = _never_awaited(log)
    if names:
        raise ExerciseFailed(ex, f"a coroutine that was never awaited ({where}): {', '.join(names)}. Calling an "
                                 "async function or method only creates a coroutine; nothing runs until you "
                                 "`await` it")


def _last_error(log: str) -> str:
    """The last exception line of a traceback in a log ("module.Error: message")."""
    lines = [line.strip() for line in log.splitlines()]
    errors = [line for line in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Operation|Exit)\b(: |$)", line)]
    return errors[-1] if errors else (lines[-1] if lines else "no log")


def _explain_sync_only(text: str) -> str:
    """What ran the sync ORM on the event loop's thread, from a traceback's text."""
    head = "SynchronousOnlyOperation: the ORM was called from the event loop's thread. "
    if "related_descriptors.py" in text and "__get__" in text:
        return head + ("Reading a foreign key that was not loaded (`bid.lot`) runs a query: load it with the row, "
                       "`Bid.objects.select_related(\"lot\").aget(...)`")
    if "tasks/base.py" in text and "in enqueue" in text:
        return head + ("A sync `enqueue()` writes the task's row with the sync ORM: in async code enqueue with "
                       "`await task.aenqueue(...)`")
    if "Atomic.__enter__" in text or "transaction.py" in text:
        return head + "transaction.atomic does not work in async code"
    return head + ("In async code every query must be awaited: `await ....aget()`, `.afirst()`, `.aupdate()`, "
                   "`.acreate()`; a sync method (`get`, `first`, `update`, `create`, `save`) raises")


def _tracebacks(log: str, function: str) -> str:
    """The tracebacks in a log that pass through the learner's `function` (a server logs other errors too)."""
    blocks = re.split(r"\n(?=Traceback \(most recent call last\))", log)
    return "\n".join(b for b in blocks if b.startswith("Traceback") and f", in {function}\n" in b)


# --- exercise 1: the live feed -------------------------------------------------------------------------------

async def _kernel_layer():
    """A channel layer on the check's Redis, in this kernel: the check talks to the app's processes through it."""
    from channels_redis.core import RedisChannelLayer

    return RedisChannelLayer(hosts=[(await _redis()).url])


async def lot_feed() -> None:
    """Exercise 'lot-feed': `LotFeed` sends a new watcher the lot's price, then forwards every `bid.placed` event
    of the lot's group. Run for real: daphne serves it, the check's event crosses Redis from this kernel."""
    ex = "lot-feed"
    await _chapter()
    from sandbox.capstone import run
    from sandbox.capstone.auction import group_name

    consumers = _import(ex, "consumers")
    if not (isinstance(getattr(consumers, "LotFeed", None), type) and hasattr(consumers.LotFeed, "as_asgi")):
        raise ExerciseFailed(ex, "consumers.py should define `LotFeed`, a subclass of AsyncJsonWebsocketConsumer")
    lot = await run.new_lot("Check: a feed", 100)
    layer = await _kernel_layer()
    app = await _start(ex, server=True, worker=False)
    feed, error = None, None
    event = {"type": "bid.placed", "lot": lot.pk, "title": lot.title, "bid": 0, "bidder": "the check",
             "amount": 150, "sent_by": "the check, in the kernel"}
    try:
        try:
            async with run.watch(app.feed_url(lot.pk)) as feed:
                await feed.until(1, timeout=3)
                if feed.messages:
                    await layer.group_send(group_name(lot.pk), event)
                    await feed.until(2, timeout=3)
        except Exception as exc:  # the handshake was refused: the server's log says why
            error = exc
        await asyncio.sleep(0.1)  # let daphne write what it has to say about the connection
        log = _log(app.server)
    finally:
        app.stop()
        await layer.close_pools()
    raised = _tracebacks(log, "connect")
    if "NotImplementedError" in raised:
        raise not_attempted(ex)
    if "SynchronousOnlyOperation" in raised:
        raise ExerciseFailed(ex, "connect() raised " + _explain_sync_only(raised))
    _fail_never_awaited(ex, log, "in daphne, which runs the consumer")
    if error is not None or feed is None:
        raise ExerciseFailed(ex, f"the WebSocket was refused ({type(error).__name__}: {error}); daphne's log ends "
                                 f"with: {_last_error(log)}")
    if not feed.messages:
        raise ExerciseFailed(ex, "the WebSocket was accepted but received nothing: send the lot's price as soon as "
                                 f"you accept, `await self.send_json(price_message(lot))` (log: {_last_error(log)})")
    first = feed.messages[0]
    if first.get("type") != "price" or first.get("current_price") != 100 or first.get("lot") != lot.pk:
        raise ExerciseFailed(ex, f"the first message should be `price_message(lot)` for lot {lot.pk} (price 100), "
                                 f"got {first}")
    if len(feed.messages) < 2:
        raise ExerciseFailed(ex, f"a bid.placed event sent to the group `{group_name(lot.pk)}` never reached the "
                                 "WebSocket: the consumer never joined the group. Join it in connect(), "
                                 "`await self.channel_layer.group_add(self.group, self.channel_name)`")
    if feed.messages[1] != event:
        raise ExerciseFailed(ex, f"forward the group's event as it is; the WebSocket got {feed.messages[1]}")
    passed(ex, f"daphne (pid {app.server.pid}) accepted the WebSocket, sent the price, and forwarded a bid.placed "
               "event that crossed Redis from this kernel")


# --- exercise 2: the worker's announcement -------------------------------------------------------------------

async def _finished(result_id, timeout: float = 15.0):
    from django_tasks_db.models import DBTaskResult

    async with asyncio.timeout(timeout):
        while (row := await DBTaskResult.objects.aget(id=result_id)).status not in ("SUCCESSFUL", "FAILED"):
            await asyncio.sleep(0.05)
    return row


async def announce_bid() -> None:
    """Exercise 'announce-bid': the task, run by a real db_worker, reads the bid and pushes `bid_event(bid)` to
    the lot's group. The check listens on that group from this kernel, through Redis."""
    ex = "announce-bid"
    await _chapter()
    from django.tasks import Task

    from sandbox.capstone import run
    from sandbox.capstone.auction import group_name
    from sandbox.capstone.models import Bid

    tasks = _import(ex, "tasks")
    task = getattr(tasks, "announce_bid", None)
    if not isinstance(task, Task):
        raise ExerciseFailed(ex, "tasks.py should define `announce_bid` decorated with `@task` (django.tasks), got "
                                 f"{task!r}")
    lot = await run.new_lot("Check: an announcement", 100)
    bid = await Bid.objects.acreate(lot=lot, bidder=f"check-{uuid.uuid4().hex[:6]}", amount=120)
    layer = await _kernel_layer()
    channel = await layer.new_channel()
    await layer.group_add(group_name(lot.pk), channel)
    app = await _start(ex, server=False, worker=True)
    message = None
    try:
        result = await task.aenqueue(bid.pk)  # a row in the task table: the worker picks it up
        try:
            row = await _finished(result.id)
        except TimeoutError:
            raise ExerciseFailed(ex, "the worker did not finish announce_bid within 15 s (does it wait for "
                                     f"something that never comes?); its log ends with {_last_error(_log(app.worker))}"
                                 ) from None
        if row.status == "SUCCESSFUL":  # what it sent is in Redis already: wait only for the delivery
            with contextlib.suppress(TimeoutError):
                message = await asyncio.wait_for(layer.receive(channel), 2)
        await asyncio.sleep(0.1)
        log = _log(app.worker)
    finally:
        app.stop()
        await layer.group_discard(group_name(lot.pk), channel)
        await layer.close_pools()
    if row.status == "FAILED":
        error, trace = row.exception_class_path, row.traceback
        if error == "builtins.NotImplementedError":
            raise not_attempted(ex)
        if error.endswith("SynchronousOnlyOperation"):
            raise ExerciseFailed(ex, "the worker ran announce_bid and it raised " + _explain_sync_only(trace) +
                                 ". The worker runs an `async def` task in an event loop of its own")
        if "AsyncToSync" in trace or "async_to_sync" in trace:
            raise ExerciseFailed(ex, "async_to_sync inside an async function: announce_bid already runs in an event "
                                     "loop, where AsyncToSync refuses to start another (RuntimeError); there, just "
                                     "`await get_channel_layer().group_send(...)`")
        raise ExerciseFailed(ex, f"the worker ran announce_bid and it failed with {error}: "
                                 f"{trace.strip().splitlines()[-1] if trace.strip() else ''}")
    if message is None:
        _fail_never_awaited(ex, log, "in the worker, which runs the task")
        raise ExerciseFailed(ex, f"the task succeeded but nothing reached the group `{group_name(lot.pk)}`: send "
                                 "`bid_event(bid)` to it with the channel layer's group_send")
    if message.get("type") != "bid.placed" or message.get("bid") != bid.pk:
        raise ExerciseFailed(ex, f"send `bid_event(bid)` for bid {bid.pk}; the group received {message}")
    if "db_worker" not in str(message.get("sent_by")):
        raise ExerciseFailed(ex, f"the event was not made in the worker (sent_by: {message.get('sent_by')})")
    passed(ex, f"the db_worker (pid {app.worker.pid}) ran announce_bid, and its bid.placed event crossed Redis to "
               f"the group {group_name(lot.pk)}")


# --- exercise 3: placing a bid, end to end -------------------------------------------------------------------

BIDDERS = ["ada", "bob", "cy", "dee", "eve", "fay", "gus", "hal"]


async def _announced(bid_ids: set[int]) -> list:
    from django_tasks_db.models import DBTaskResult

    rows = [r async for r in DBTaskResult.objects.filter(task_path=f"{PACKAGE}.tasks.announce_bid")]
    return [r for r in rows if r.args_kwargs.get("args", [None])[:1] and r.args_kwargs["args"][0] in bid_ids]


async def place_bid() -> None:
    """Exercise 'place-bid': the learner's view behind daphne, with a db_worker, Redis and the slow fraud check.

    Round 1: eight bids at once, over real HTTP, while a real WebSocket watches the lot: the fraud checks must
    overlap, the highest bid must end as the price, and every accepted bid must be saved, enqueued and announced
    on the WebSocket by the worker. Round 2: four bids at once on a new lot while the check holds the database's
    write lock; just before releasing it, a rival bid of 300 commits. Every bid read the old price, none may
    overwrite the rival's: all four must lose (409), whatever order their writes come in.
    """
    ex = "place-bid"
    await _chapter()
    from sandbox.capstone import run
    from sandbox.capstone.models import Bid

    views = _import(ex, "views")
    require_async_function(ex, getattr(views, "place_bid", None), "place_bid")
    upstream = await _upstream()
    lot = await run.new_lot("Check: eight bids at once", 100)
    contested = await run.new_lot("Check: a rival bid", 100)
    bids = [(BIDDERS[i], 180 - 10 * i) for i in range(len(BIDDERS))]
    lower = [(BIDDERS[i], 250 - 30 * i) for i in range(4)]  # 250, 220, 190, 160: all below the rival's 300
    app = await _start(ex, server=True, worker=True)
    feed_error, late = None, []
    try:
        async with contextlib.AsyncExitStack() as stack:
            try:
                feed = await stack.enter_async_context(run.watch(app.feed_url(lot.pk)))
                await feed.until(1, timeout=3)
            except Exception as exc:  # judged after the view: the view's own mistakes come first
                feed, feed_error = None, exc
            results = await run.bid_at_once(app.bid_url(lot.pk), bids, upstream=upstream, hold=False)
            stats = await run.upstream_stats(upstream)
            accepted = [r for r in results if r.accepted]
            ids = {r.body.get("bid") for r in accepted if isinstance(r.body, dict)}
            ok = all(r.status in (201, 409) for r in results) and stats["max_in_flight"] > 1
            if feed is not None and ok:
                await feed.until(1 + len(accepted), timeout=10)  # the worker polls every 0.1 s
        if ok:
            late = await run.bid_at_once(app.bid_url(contested.pk), lower, upstream=upstream,
                                         rival=(contested.pk, 300))
        await asyncio.sleep(0.1)
        log, worker_log = _log(app.server), _log(app.worker)
    finally:
        app.stop()
    failed = [r for r in [*results, *late] if r.status in (None, 500)]
    if failed:
        raised = _tracebacks(log, "place_bid")
        if "NotImplementedError" in raised:
            raise not_attempted(ex)
        if "SynchronousOnlyOperation" in raised:
            raise ExerciseFailed(ex, "the view raised " + _explain_sync_only(raised))
        raise ExerciseFailed(ex, f"{len(failed)} bids failed (HTTP {failed[0].status}): daphne's log ends with "
                                 f"{_last_error(log)}")
    _fail_never_awaited(ex, log, "in daphne, which runs the view")
    other = [r for r in [*results, *late] if r.status not in (201, 409)]
    if other:
        raise ExerciseFailed(ex, f"answer 201 (`accepted(bid)`) or 409 (`await outbid(lot_id)`); got HTTP "
                                 f"{other[0].status}: {other[0].body}")
    if stats["served"] < len(bids):
        raise ExerciseFailed(ex, f"the fraud-check service was called {stats['served']} time(s) for {len(bids)} "
                                 "bids: call it for every bid, at `fraud_check_url(bidder, amount)`")
    if stats["max_in_flight"] < 2:
        raise ExerciseFailed(ex, f"the {len(bids)} fraud checks ran one at a time (at most 1 in flight): the event "
                                 "loop was blocked while each one waited. A sync HTTP call (httpx.get, httpx.Client, "
                                 "requests) inside an async view blocks daphne's only event loop; use the async "
                                 "client, `async with fraud_check_client() as client: await client.get(...)`")
    await lot.arefresh_from_db()
    await contested.arefresh_from_db()
    highest = max(amount for _, amount in bids)
    won_late = [r for r in late if r.accepted]
    if lot.current_price != highest or contested.current_price != 300 or won_late:
        what = (f"the price ended at {lot.current_price} after {len(bids)} concurrent bids, the highest was "
                f"{highest}" if lot.current_price != highest else
                f"{len(won_late)} of {len(lower)} bids below a rival's 300, committed while they waited, were "
                f"accepted, and the price ended at {contested.current_price}")
        raise ExerciseFailed(ex, f"lost updates: {what}. A read-modify-write (read the price, compare in Python, "
                                 "save) decides on a price that another request may have changed since; compare "
                                 "and write in one statement, "
                                 "`Lot.objects.filter(pk=..., current_price__lt=amount).aupdate(...)`")
    rows = await Bid.objects.filter(lot=lot).acount()
    if rows != len(accepted) or None in ids:
        raise ExerciseFailed(ex, f"{len(accepted)} bids were accepted but {rows} Bid rows were saved: save one Bid "
                                 "per accepted bid, and answer `accepted(bid)`")
    announced = await _announced(ids)
    if len(announced) != len(accepted):
        raise ExerciseFailed(ex, f"announce_bid was enqueued for {len(announced)} of {len(accepted)} accepted bids: "
                                 "enqueue it for each one, `await announce_bid.aenqueue(bid.pk)`")
    if feed_error is not None or feed is None:
        raise ExerciseFailed(ex, f"the view works, but the feed refused the WebSocket ({type(feed_error).__name__}): "
                                 "pass exercise 1 (lot-feed) first")
    updates = feed.of_type("bid.placed")
    if sorted(u.get("bid") for u in updates) != sorted(ids):
        failed_tasks = [r for r in announced if r.status == "FAILED"]
        why = (f"; the worker's announce_bid failed with {failed_tasks[0].exception_class_path}: pass exercise 2 "
               "(announce-bid) first" if failed_tasks else f" (worker: {_last_error(worker_log)})")
        raise ExerciseFailed(ex, f"the WebSocket received {len(updates)} of {len(accepted)} updates{why}")
    senders = sorted({u.get("sent_by") for u in updates})
    passed(ex, f"{len(bids)} bids at once: the fraud checks overlapped ({stats['max_in_flight']} in flight), the "
               f"price ended at {lot.current_price} (the highest bid) with {len(accepted)} accepted, and the "
               f"WebSocket on daphne (pid {app.server.pid}) got every update, pushed by {', '.join(senders)}; "
               f"{len(lower)} bids below a rival's 300 that committed while they waited all lost")
