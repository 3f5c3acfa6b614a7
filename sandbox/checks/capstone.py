"""Checks for the exercises of chapter 09, the capstone: a live auction built in a package of your own.

The learner's code lives in real module files (`auction_live/consumers.py`, `tasks.py`, `views.py` in the
notebook's data directory), because a server and a worker are other processes and run only what they can
import. So every check runs it for real: daphne serves the learner's consumer or view, django-tasks-db's
`db_worker` runs the learner's task, a private Redis carries the channel layer's messages between the processes,
the slow upstream plays the fraud-check service, and the check talks to all of it as a browser would (real
WebSockets, real HTTP requests sent at once). The mistake is told apart by what happened: what a WebSocket
received and whether its handshake was refused, what the servers logged (a traceback, a coroutine that was never
awaited), what the worker recorded for the task, how many fraud checks the upstream saw in flight at once, and
the rows in the database.

Every run uses lots, prices, bidders and amounts made for it, so an answer that copies the lesson's values fails.
Each check judges one exercise only: the feed's check starts daphne with the learner's consumer and no view of
theirs in play, the task's check starts only the worker, and the bid's check serves the learner's view with the
course's own WebSocket routing and no worker (it reads the task table for what the view enqueued), so a wrong
answer to one exercise never fails another.

Two moments are made long on purpose, by a relay in this kernel between a process and a service: daphne's group
joins reach Redis late (a consumer that accepts before it has joined misses the event sent at the handshake), and
the fraud check of one bid answers an error status.

Redis and the upstream are kept for the kernel (the harness's `redis()`, `upstream()`); daphne and the worker
start in each check (they must import the files as they are now) and stop at its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from django.db.models import Max
from django.tasks import Task

from sandbox.checks.common import ExerciseFailed, not_attempted, passed, require_async_function
from sandbox.checks.harness import (
    Requirements,
    exercise_check,
    expect_all_awaited,
    names_in,
    redis,
    sync_only_head,
    upstream,
)
from sandbox.lab.experiments import auction_run as run
from sandbox.lab.overlay import apply_chapter_settings
from sandbox.lab.servers import ServerError, start_server

PACKAGE = "auction_live"

REQUIREMENTS = {
    "lot-feed": Requirements("5664adb4f221", (
        ("a lot that does not exist is refused at the handshake: closed with NO_SUCH_LOT before it is accepted",
         "a WebSocket on a lot id that no row has (random, above every lot's): the handshake must be refused "
         "(daphne's HTTP 403); accepted and then closed is named as such"),
        ("and connect() does nothing more",
         "the relay sees every group join: joining the missing lot's group and never leaving it is named; a "
         "traceback through connect() in daphne's log is explained"),
        ("the first message is the lot's price as it is now, price_message(lot)",
         "a new lot with a random title and price: the first message must equal its price message"),
        ("with the lot read through the async ORM",
         "a sync query raises SynchronousOnlyOperation in daphne's log, which the check names"),
        ("no bid is missed: every bid.placed event sent to the lot's group once the handshake has completed reaches "
         "the socket, after the price",
         "daphne's group joins reach Redis 1 s late (a relay in the kernel); the check sends an event the moment the "
         "handshake completes and another once the join went through: the socket must receive the price, then both "
         "events as sent, nothing else; a join never made, or never awaited (daphne's log), is named"),
    )),
    "announce-bid": Requirements("2f434f5c7b39", (
        ("every watcher of the bid's lot, and only of that lot, is told: the event bid_event(bid) builds for this "
         "bid goes to the lot's group, through the channel layer",
         "two bids on two new lots (random titles, bidders, amounts), one task each, run by a real db_worker; the "
         "check listens on each lot's group and on the groups named after the bids' ids, through Redis: each lot's "
         "group must receive its own bid's event (type, lot, title, bid, bidder, amount), made in the worker; an "
         "event in the bid-id group or the other lot's group is named; a group_send never awaited is named"),
        ("the bid and its lot are read with the async ORM, never through a lazy foreign key",
         "the worker's FAILED row: SynchronousOnlyOperation explained (a lazy foreign key, a sync query), "
         "async_to_sync inside the task named"),
        ("the task returns the event it sent (the worker stores it as the task's result)",
         "each task's row must be SUCCESSFUL with a return value equal to the event its lot's group received"),
    )),
    "place-bid": Requirements("3490c6d23457", (
        ("it is fraud-checked first, at fraud_check_url(bidder, amount), with an async HTTP client, so that many "
         "bids' checks are in flight at once",
         "5 to 8 bids at once: the upstream must serve one check per bid (both rounds), at least two in flight "
         "at once"),
        ("a bid whose check answers an error status fails with that error (raise it), and changes nothing",
         "a relay turns the check of the round's highest bid into the upstream's 503: that bid must not be "
         "accepted, and the price, the Bid rows and the task table must show nothing of it"),
        ("it raises the lot's price only if the lot is open and its price is strictly lower than the bid: a bid "
         "equal to the price, or on a closed lot, is refused",
         "a bid below the start, a bid equal to the price round 1 left, and a higher bid on a closed lot (all "
         "random): each must be refused and change no price"),
        ("no update is ever lost: a bid that read an old price never overwrites a higher price written meanwhile",
         "round 1's price must end at its highest bid that passed the fraud check; round 2 holds the write lock "
         "until every bid has read the price and commits a rival price above three bids just before it goes: all "
         "three must lose and the rival's price stay"),
        ("a refused bid is answered by the provided outbid (409; 404 when there is no such lot) and leaves nothing "
         "behind",
         "statuses 409, and 404 for a bid on a lot id no row has; no Bid row and no task for any refused bid; a 500 "
         "is explained from daphne's log"),
        ("an accepted bid is saved as a Bid, announce_bid is enqueued for it with the bid's id, and the answer is "
         "the provided accepted for that bid: one row and one task per accepted bid",
         "each 201's body must name a Bid row with the request's lot, bidder and amount; the rows are exactly the "
         "accepted bids; the task table holds exactly one announce_bid per accepted bid, with its id (positional "
         "or keyword); a coroutine never awaited, or a sync enqueue, is named"),
    )),
}

JOIN_DELAY = 1.0  # seconds a group join from daphne takes to reach Redis in the feed's check
FAKE_NAMES = ["ada", "bob", "cy", "dee", "eve", "fay", "gus", "hal", "ivy", "jo", "kai", "lu", "max", "ned"]


def _title() -> str:
    things = ["teapot", "gramophone", "atlas", "clock", "lamp", "radio", "chess set", "kettle", "globe"]
    kind = random.choice(["old", "blue", "tiny", "brass", "signed"])
    return f"{kind} {random.choice(things)} #{random.randint(100, 999)}"


def _bidder() -> str:
    return f"{random.choice(FAKE_NAMES)}-{uuid.uuid4().hex[:5]}"


async def _chapter() -> None:
    """The chapter's settings in this kernel and the learner's package on its path; idempotent."""
    await apply_chapter_settings("sandbox.capstone.settings", quiet=True)
    run.workspace()


def _log(process) -> str:
    if process is None or not process.log_path.exists():
        return ""
    return process.log_path.read_text(errors="replace")


STUB = re.compile(r"# YOUR CODE HERE\n\s*raise NotImplementedError")  # what `course exercises` leaves in place


def _import(ex: str, module: str):
    """Import the learner's module in this kernel, as it is on disk now; a clear message when that fails. A module
    that still holds the exercise's stub is "not attempted" at once: the check's processes need not start."""
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


async def _daphne(ex: str, app: str, *, redis_url: str | None = None, upstream_url: str | None = None):
    """daphne serving `app` with the learner's package; a server that cannot start is the learner's error."""
    env = run.process_env(PACKAGE, "daphne", None)
    env["SANDBOX_REDIS_URL"] = redis_url or ""  # empty: the in-memory layer (the view's check needs no Redis)
    if upstream_url:
        env["SANDBOX_UPSTREAM_URL"] = upstream_url
    try:
        server = await start_server("daphne", app=app, env=env, quiet=True)
    except ServerError as exc:
        last = [line for line in str(exc).splitlines() if line.strip()][-1]
        raise ExerciseFailed(ex, f"daphne could not start with your package: {last}") from None
    return run.App(PACKAGE, server=server)


IN_A_PROCESS = "a coroutine that was never awaited ({where}): {names}. {hint}"  # what a process's log said
ONLY_CREATES = "Calling an async function or method only creates a coroutine; nothing runs until you `await` it"


def _last_error(log: str) -> str:
    """The last exception line of a traceback in a log ("module.Error: message")."""
    lines = [line.strip() for line in log.splitlines()]
    errors = [line for line in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Operation|Exit|DoesNotExist)\b"
                                                 r"(: |$)", line)]
    return errors[-1] if errors else (lines[-1] if lines else "no log")


def _explain_sync_only(text: str) -> str:
    """What ran the sync ORM on the event loop's thread, from a traceback's text in a process's log (the harness's
    `explain_sync_only` reads a live exception's frames, which a log does not have)."""
    head = sync_only_head()
    if "related_descriptors.py" in text and "__get__" in text:
        return head + ("Reading a foreign key that was not loaded (`bid.lot`) runs a query: load the lot in the "
                       "same query as the bid (`select_related`)")
    if "tasks/base.py" in text and "in enqueue" in text:
        return head + ("A sync `enqueue()` writes the task's row with the sync ORM: in async code use its async "
                       "twin, `aenqueue`, and await it")
    if "Atomic.__enter__" in text or "transaction.py" in text:
        return head + "transaction.atomic does not work in async code"
    return head + ("In async code every query must be awaited through an async method (`aget`, `afirst`, "
                   "`aupdate`, `acreate`...); a sync method (`get`, `first`, `update`, `create`, `save`) raises")


def _tracebacks(log: str, function: str) -> list[str]:
    """The tracebacks in a log that pass through the learner's `function` (a server logs other errors too)."""
    blocks = re.split(r"\n(?=Traceback \(most recent call last\))", log)
    return [b for b in blocks if b.startswith("Traceback") and f", in {function}\n" in b]


def _raised(block: str) -> str:
    """The exception line a traceback ends with."""
    return _last_error(block.split("\n\n")[0] if "\n\n" in block else block)


async def _kernel_layer():
    """A channel layer on the check's Redis, in this kernel: the check talks to the app's processes through it."""
    from channels_redis.core import RedisChannelLayer

    return RedisChannelLayer(hosts=[(await redis()).url])


async def _until(condition, timeout: float, step: float = 0.02) -> bool:
    """Wait until `condition()` is true (polled), at most `timeout` seconds; whether it became true."""
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            return False
        await asyncio.sleep(step)
    return True


# --- a relay in this kernel: a moment made long, an answer made to fail ------------------------------------------

@contextlib.asynccontextmanager
async def _relay(target_url: str, tamper):
    """A TCP relay from a new loopback port to `target_url`'s host and port; yields the relay's URL (same scheme).

    Every chunk a client sends goes through `await tamper(chunk)`, which may hold it back a while or rewrite it;
    what the service answers passes unchanged. The connections live as long as the block.
    """
    target = urlsplit(target_url)
    pumps: set[asyncio.Task] = set()

    async def pump(reader, writer, change=None):
        try:
            while data := await reader.read(65536):
                writer.write(await change(data) if change else data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def accept(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection(target.hostname, target.port)
        except OSError:
            client_writer.close()
            return
        for task in (asyncio.create_task(pump(client_reader, server_writer, tamper)),
                     asyncio.create_task(pump(server_reader, client_writer))):
            pumps.add(task)
            task.add_done_callback(pumps.discard)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    credentials = target.netloc.rpartition("@")[0]  # a private Redis's password travels through the relay as is
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"{target.scheme}://{credentials + '@' if credentials else ''}127.0.0.1:{port}"
    finally:
        server.close()
        for task in list(pumps):
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)


class _SlowJoins:
    """Redis as daphne sees it in the feed's check: a group join (a ZADD on a group's key) arrives `delay` seconds
    late. `joined` and `left`: the groups whose join (or leave) went through, in order; `pending`: joins on their
    way."""

    def __init__(self, delay: float):
        self.delay, self.joined, self.left, self.pending = delay, [], [], 0

    async def __call__(self, chunk: bytes) -> bytes:
        group = re.search(rb"asgi:group:([\w.\-]+)", chunk)
        if group and b"\r\nZADD\r\n" in chunk:
            self.pending += 1
            try:
                await asyncio.sleep(self.delay)
            finally:
                self.pending -= 1
            self.joined.append(group.group(1).decode())  # written to Redis as soon as this returns
        elif group and b"\r\nZREM\r\n" in chunk:
            self.left.append(group.group(1).decode())
        return chunk


class _FraudDesk:
    """The fraud-check service as daphne sees it in the bid's check: the slow upstream, except that the first check
    of each `refused` amount goes to the upstream's /fail, which answers 503 after the same wait (the check's URL
    names the amount, not the bidder: a later bid of the same amount passes)."""

    def __init__(self, refused: set[int]):
        self.refused = set(refused)

    async def __call__(self, chunk: bytes) -> bytes:
        def swap(found: re.Match) -> bytes:
            if int(found.group(1)) not in self.refused:
                return found.group(0)
            self.refused.discard(int(found.group(1)))
            return b"GET /fail?"
        return re.sub(rb"GET /slow\?(?=[^ ]*\bi=(\d+)\b)", swap, chunk)


# --- exercise 1: the live feed -------------------------------------------------------------------------------

async def _knock(url: str) -> tuple:
    """Open a WebSocket to a lot that does not exist: ("refused", status), ("accepted", close code, messages), or
    ("error", exception)."""
    from websockets.exceptions import InvalidStatus

    try:
        async with run.watch(url, timeout=JOIN_DELAY + 5) as feed:
            await feed.until(100, timeout=1.5)  # ends when the server closes it
            closed_by_server = feed.close_code
    except InvalidStatus as exc:
        return ("refused", exc.response.status_code)
    except Exception as exc:
        return ("error", exc)
    return ("accepted", closed_by_server, feed.messages)


def _event(lot, amount: int, sent_by: str) -> dict:
    return {"type": "bid.placed", "lot": lot.pk, "title": lot.title, "bid": random.randint(10_000, 99_999),
            "bidder": _bidder(), "amount": amount, "sent_by": sent_by}


@exercise_check("lot-feed")
async def lot_feed() -> None:
    """Exercise 'lot-feed': `LotFeed` refuses a lot that does not exist at the handshake, sends a new watcher the
    lot's price, and misses no event of the lot's group from the moment the handshake completes. Run for real:
    daphne serves it, the check's events cross Redis from this kernel, and daphne's joins reach Redis late."""
    ex = "lot-feed"
    await _chapter()
    from sandbox.capstone.auction import group_name, price_message
    from sandbox.capstone.models import Lot

    consumers = _import(ex, "consumers")
    if not (isinstance(getattr(consumers, "LotFeed", None), type) and hasattr(consumers.LotFeed, "as_asgi")):
        raise ExerciseFailed(ex, "consumers.py should define `LotFeed`, a subclass of AsyncJsonWebsocketConsumer")
    lot = await run.new_lot(_title(), random.randint(40, 900))
    missing = (await Lot.objects.aaggregate(top=Max("pk")))["top"] + random.randint(1000, 9000)
    group = group_name(lot.pk)
    at_handshake = _event(lot, lot.current_price + random.randint(1, 50), "the check, at the handshake")
    after_join = _event(lot, at_handshake["amount"] + random.randint(1, 50), "the check, after the join")
    layer, slow = await _kernel_layer(), _SlowJoins(JOIN_DELAY)
    feed, error, knocked, log = None, None, None, ""
    missing_group = group_name(missing)

    def gave_up(server) -> bool:  # what daphne's log says can end a wait at once
        text = _log(server)
        return "was never awaited" in text or "Traceback" in text

    async def watch(app):
        async with run.watch(app.feed_url(lot.pk), timeout=JOIN_DELAY + 5) as feed:
            async with asyncio.timeout(5):
                await layer.group_send(group, at_handshake)  # the moment the handshake completed
            await _until(lambda: (group in slow.joined and feed.messages) or feed.close_code is not None
                         or gave_up(app.server), JOIN_DELAY + 3)
            if group in slow.joined:
                await asyncio.sleep(0.05)
            async with asyncio.timeout(5):
                await layer.group_send(group, after_join)
            await _until(lambda: after_join in feed.messages or feed.close_code is not None
                         or gave_up(app.server), 3 if group in slow.joined else 1)
        return feed

    try:
        async with _relay((await redis()).url, slow) as relay_url:
            app = await _daphne(ex, "sandbox.capstone.asgi:application", redis_url=relay_url)
            try:
                # One socket after the other: a consumer torn down while another waits for its channel layer's
                # messages can take one of them with it (channels_redis shares one receive loop per process). The
                # missing lot first: whatever its connect() goes on to do happens while the lot's socket is watched.
                knocked = await _knock(app.feed_url(missing))
                try:
                    feed = await watch(app)
                except Exception as exc:  # the handshake was refused, or the socket never opened
                    error = exc
                await _until(lambda: slow.pending == 0, JOIN_DELAY + 2)  # a join still on its way goes through
                await asyncio.sleep(0.1)  # let daphne write what it has to say about the connections
                log = _log(app.server)
            finally:
                app.stop()
    finally:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await layer.close_pools()

    raised = _tracebacks(log, "connect")
    text = "\n".join(raised)
    if "NotImplementedError" in text:
        raise not_attempted(ex)
    if "SynchronousOnlyOperation" in text:
        raise ExerciseFailed(ex, "connect() raised " + _explain_sync_only(text))
    expect_all_awaited(ex, names_in(log), ONLY_CREATES, wording=IN_A_PROCESS,
                       where="in daphne, which runs the consumer")
    if raised:
        what = _raised(raised[-1])
        why = (" For a lot that does not exist, connect() must stop once it has closed: it went on with no lot."
               if "NoneType" in what else "")
        raise ExerciseFailed(ex, f"connect() raised {what} (daphne's log).{why}")
    if knocked[0] == "accepted":
        _, code, messages = knocked
        if code is not None:
            raise ExerciseFailed(ex, f"for lot {missing}, which does not exist, the handshake was accepted and the "
                                     f"socket then closed (code {code}): refuse the handshake itself, by closing "
                                     "before you accept")
        raise ExerciseFailed(ex, f"a WebSocket on lot {missing}, which does not exist, was accepted"
                                 f"{f' and received {messages[0]}' if messages else ''}: refuse it at the handshake "
                                 "(close with NO_SUCH_LOT before accepting)")
    stayed = slow.joined.count(missing_group) - slow.left.count(missing_group)
    if stayed > 0:
        raise ExerciseFailed(ex, f"for lot {missing}, which does not exist, the handshake was refused but connect() "
                                 "went on: it joined that lot's group and never left it. Stop (return) once you "
                                 "have closed")
    if knocked[0] == "error":
        raise ExerciseFailed(ex, f"a WebSocket on a lot that does not exist neither was refused nor opened "
                                 f"({type(knocked[1]).__name__}: {knocked[1]}); daphne's log ends with: "
                                 f"{_last_error(log)}")
    if feed is None:
        status = getattr(getattr(error, "response", None), "status_code", None)
        what = f"refused (HTTP {status})" if status else f"not opened ({type(error).__name__}: {error})"
        raise ExerciseFailed(ex, f"the WebSocket on lot {lot.pk}, which exists, was {what}; daphne's log ends with: "
                                 f"{_last_error(log)}")
    expected = price_message(lot)
    if not feed.messages:
        raise ExerciseFailed(ex, f"the WebSocket on lot {lot.pk} was accepted but received nothing: its first "
                                 "message should be the lot's price (price_message)")
    if feed.messages[0] != expected:
        raise ExerciseFailed(ex, f"the first message should be the price message of lot {lot.pk} as it is now "
                                 f"({lot.title!r} at {lot.current_price}), got {feed.messages[0]}")
    if group not in slow.joined:
        other = f" (it joined {', '.join(sorted(set(slow.joined)))} instead)" if slow.joined else ""
        raise ExerciseFailed(ex, f"the consumer never joined the lot's group `{group}`{other}: the events sent to "
                                 "that group never reached the socket")
    if at_handshake not in feed.messages:
        raise ExerciseFailed(ex, "missed a bid: a bid.placed event sent to the group the moment the handshake "
                                 "completed never reached the socket. The consumer accepted before it had joined the "
                                 "group (the check makes a join slow to reach Redis): join before you accept")
    if after_join not in feed.messages:
        raise ExerciseFailed(ex, "an event sent to the lot's group after the join never reached the socket: "
                                 f"forward each bid.placed event as it comes (log: {_last_error(log)})")
    if feed.messages != [expected, at_handshake, after_join]:
        raise ExerciseFailed(ex, "the socket should receive the price first, then each event as it was sent, "
                                 f"nothing else; it received {feed.messages}")
    passed(ex, f"daphne (pid {app.server.pid}) refused lot {missing} at the handshake, sent lot {lot.pk}'s price, "
               f"and forwarded the events sent from this kernel through Redis, the first one the moment the handshake "
               f"completed (the join had reached Redis {JOIN_DELAY:.0f} s late)")


# --- exercise 2: the worker's announcement -------------------------------------------------------------------

async def _finished(result_ids: list, timeout: float = 15.0) -> list:
    """The task rows, once the worker has finished every one of them."""
    from django_tasks_db.models import DBTaskResult

    async with asyncio.timeout(timeout):
        while True:
            rows = {str(r.id): r async for r in DBTaskResult.objects.filter(id__in=result_ids)}
            done = [rows.get(str(i)) for i in result_ids]
            if all(r is not None and r.status in ("SUCCESSFUL", "FAILED") for r in done):
                return done
            await asyncio.sleep(0.05)


async def _receive(layer, channel, timeout: float):
    """The next message on a channel of the check's, or None."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            return await layer.receive(channel)
    return None


def _worker_failure(ex: str, row) -> ExerciseFailed | NotImplementedError:
    error, trace = row.exception_class_path, row.traceback
    if error == "builtins.NotImplementedError":
        return not_attempted(ex)
    if error.endswith("SynchronousOnlyOperation"):
        return ExerciseFailed(ex, "the worker ran announce_bid and it raised " + _explain_sync_only(trace) +
                              ". The worker runs an `async def` task in an event loop of its own")
    if "AsyncToSync" in trace or "async_to_sync" in trace:
        return ExerciseFailed(ex, "async_to_sync inside an async function: announce_bid already runs in an event "
                                  "loop, where AsyncToSync refuses to start another (RuntimeError); in an async "
                                  "function, await the channel layer's coroutine itself")
    last = trace.strip().splitlines()[-1] if trace.strip() else error
    return ExerciseFailed(ex, f"the worker ran announce_bid and it raised {last}")


@exercise_check("announce-bid")
async def announce_bid() -> None:
    """Exercise 'announce-bid': the task, run by a real db_worker, reads the bid and its lot and sends the bid's
    event to that lot's group, and only there; it returns the event. Two bids on two lots, one task each; the check
    listens on both lots' groups (and on groups named after the bids' ids) from this kernel, through Redis."""
    ex = "announce-bid"
    await _chapter()
    from sandbox.capstone.auction import group_name
    from sandbox.capstone.models import Bid

    tasks = _import(ex, "tasks")
    task = getattr(tasks, "announce_bid", None)
    if not isinstance(task, Task):
        raise ExerciseFailed(ex, "tasks.py should define `announce_bid` decorated with `@task` (django.tasks), got "
                                 f"{task!r}")
    lots = [await run.new_lot(_title(), random.randint(40, 900)) for _ in range(2)]
    bids = []
    for lot in lots:
        bid = await Bid.objects.acreate(lot=lot, bidder=_bidder(), amount=lot.current_price + random.randint(1, 99))
        while bid.pk in {lot.pk for lot in lots}:  # a bid's id must name no lot here, or its group would be ambiguous
            bid = await Bid.objects.acreate(lot=lot, bidder=bid.bidder, amount=bid.amount)
        bids.append(bid)
    layer = await _kernel_layer()
    async with asyncio.timeout(10):
        lot_channels = [await layer.new_channel() for _ in bids]
        bid_channels = [await layer.new_channel() for _ in bids]
        for lot, bid, on_lot, on_bid in zip(lots, bids, lot_channels, bid_channels, strict=True):
            await layer.group_add(group_name(lot.pk), on_lot)
            await layer.group_add(group_name(bid.pk), on_bid)
    got, worker, rows, log = [None, None], None, [], ""
    try:
        results = [await task.aenqueue(bid.pk) for bid in bids]  # rows in the task table: the worker picks them up
        worker = await _worker(ex)
        try:
            rows = await _finished([r.id for r in results])
        except TimeoutError:
            raise ExerciseFailed(ex, "the worker did not finish announce_bid within 15 s (does it wait for something "
                                     f"that never comes?); its log ends with {_last_error(_log(worker))}") from None
        if all(row.status == "SUCCESSFUL" for row in rows):  # what it sent is in Redis already
            got = list(await asyncio.gather(*(_receive(layer, c, 2) for c in lot_channels)))
        await asyncio.sleep(0.1)
        log = _log(worker)
        if None in got and all(row.status == "SUCCESSFUL" for row in rows):
            strays = await asyncio.gather(*(_receive(layer, c, 0.3) for c in bid_channels))
        else:
            strays = [None, None]
    finally:
        if worker is not None:
            worker.stop()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                for lot, bid, on_lot, on_bid in zip(lots, bids, lot_channels, bid_channels, strict=True):
                    await layer.group_discard(group_name(lot.pk), on_lot)
                    await layer.group_discard(group_name(bid.pk), on_bid)
                await layer.close_pools()
    for row in rows:
        if row.status == "FAILED":
            raise _worker_failure(ex, row)
    for lot, bid, message, stray in zip(lots, bids, got, strays, strict=True):
        if message is None:
            expect_all_awaited(ex, names_in(log), ONLY_CREATES, wording=IN_A_PROCESS,
                               where="in the worker, which runs the task")
            if stray is not None:
                raise ExerciseFailed(ex, f"the event for bid {bid.pk} went to the group `{group_name(bid.pk)}`, "
                                         f"named after the bid's id, not to its lot's group `{group_name(lot.pk)}`: "
                                         "the watchers of a lot are in the group of the lot's id")
            raise ExerciseFailed(ex, f"the task succeeded but nothing reached the lot's group "
                                     f"`{group_name(lot.pk)}`: send the bid's event to that group with the "
                                     "channel layer's group_send")
    for lot, bid, message, row in zip(lots, bids, got, rows, strict=True):
        expected = {"type": "bid.placed", "lot": lot.pk, "title": lot.title, "bid": bid.pk, "bidder": bid.bidder,
                    "amount": bid.amount}
        seen = {key: message.get(key) for key in expected} if isinstance(message, dict) else message
        if seen != expected:
            other = next((b for b in bids if isinstance(message, dict) and message.get("bid") == b.pk), None)
            if other is not None and other is not bid:
                raise ExerciseFailed(ex, f"the group of lot {lot.pk} received the event of bid {other.pk}, which is "
                                         f"on lot {other.lot_id}: send each bid's event to its own lot's group")
            raise ExerciseFailed(ex, f"the group of lot {lot.pk} received {message}; expected the event bid_event "
                                     f"builds for bid {bid.pk} ({bid.bidder}, {bid.amount} on {lot.title!r})")
        if "db_worker" not in str(message.get("sent_by")):
            raise ExerciseFailed(ex, f"the event was not made in the worker (sent_by: {message.get('sent_by')})")
        if row.return_value != message:
            raise ExerciseFailed(ex, f"the task's result, which the worker stores, is {row.return_value!r}: return "
                                     "the event the task sent")
    passed(ex, f"the db_worker (pid {worker.pid}) ran announce_bid for bids {bids[0].pk} and {bids[1].pk}, and each "
               "event crossed Redis to its own lot's group only; each task returned its event")


async def _worker(ex: str):
    try:
        return await run.start_db_worker(PACKAGE, redis=await redis())
    except ServerError as exc:
        last = [line for line in str(exc).splitlines() if line.strip()][-1]
        raise ExerciseFailed(ex, f"the db_worker could not start with your package: {last}") from None


# --- exercise 3: placing a bid, end to end -------------------------------------------------------------------

class _Bid:
    """One bid the check sends, what it stands for, and its answer."""

    def __init__(self, lot_id: int, amount: int, role: str):
        self.lot_id, self.amount, self.role, self.bidder = lot_id, amount, role, _bidder()
        self.status: int | None = None
        self.body = None

    @property
    def accepted(self) -> bool:
        return self.status == 201

    def __repr__(self) -> str:
        return f"{self.bidder} {self.amount} on lot {self.lot_id} -> {self.status}"


async def _post_all(base: str, bids: list[_Bid], timeout: float = 30.0) -> None:
    """POST every bid at once, each on its own connection; the answers go into the bids."""
    async def one(http, bid: _Bid) -> None:
        try:
            response = await http.post(f"{base}/capstone/lots/{bid.lot_id}/bid/",
                                       json={"bidder": bid.bidder, "amount": bid.amount})
        except httpx.HTTPError as exc:
            bid.body = f"{type(exc).__name__}: {exc}"
            return
        bid.status = response.status_code
        try:
            bid.body = response.json()
        except ValueError:
            bid.body = response.text[:200]

    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as http, asyncio.timeout(timeout + 5):
        await asyncio.gather(*(one(http, bid) for bid in bids))


async def _post_held(base: str, bids: list[_Bid], fraud, *, rival: tuple[int, int]) -> None:
    """POST every bid at once while the database's write lock is held until every fraud check has been answered
    (and a moment more: every bid has read the price); a rival price commits just before the lock goes."""
    from sandbox.capstone.auction import FRAUD_CHECK_SECONDS
    from sandbox.capstone.models import Lot

    await run.upstream_stats(fraud, reset=True)
    deadline = len(bids) * FRAUD_CHECK_SECONDS + 3  # even when the checks run one after another
    async with run.writes_held(timeout=deadline + 5) as held:
        sent = asyncio.create_task(_post_all(base, bids))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(deadline):
                while not sent.done() and (await run.upstream_stats(fraud))["served"] < len(bids):
                    await asyncio.sleep(0.05)
        await asyncio.sleep(run.HOLD_MARGIN)
        lot_id, price = rival
        held.before_release(f"UPDATE {Lot._meta.db_table} SET current_price = ? WHERE id = ?", (price, lot_id))
    async with asyncio.timeout(60):
        await sent


def _task_bid_id(row):
    """The bid id a task row was enqueued with (positionally or by keyword), or what it was given instead."""
    args, kwargs = row.args_kwargs.get("args") or [], row.args_kwargs.get("kwargs") or {}
    if len(args) == 1 and not kwargs:
        return args[0]
    if not args and len(kwargs) == 1:
        return next(iter(kwargs.values()))
    return row.args_kwargs


@exercise_check("place-bid")
async def place_bid() -> None:
    """Exercise 'place-bid': the learner's view behind daphne, with the slow fraud check behind a relay.

    Round 1: 5 to 8 bids at once on a new lot (one below its start, one whose fraud check answers 503): the fraud
    checks must overlap, the refused one must change nothing, the highest other bid must end as the price, and
    every accepted bid must be saved and have one announce_bid task. Round 2, with the database's write lock held
    until every bid has read the price: a bid equal to round 1's price, a higher bid on a closed lot, a bid on a
    lot that does not exist, and three bids on a fourth lot where a rival price above them commits just before
    the lock goes: all refused, nothing written.
    """
    ex = "place-bid"
    await _chapter()
    from django_tasks_db.models import DBTaskResult

    from sandbox.capstone.models import Bid, Lot

    views = _import(ex, "views")
    require_async_function(ex, getattr(views, "place_bid", None), "place_bid")
    fraud = await upstream()
    tasks = DBTaskResult.objects.filter(task_path=f"{PACKAGE}.tasks.announce_bid")
    earlier = {pk async for pk in tasks.values_list("pk", flat=True)}  # e.g. the announce-bid check's own tasks
    after_round1 = None

    open_lot = await run.new_lot(_title(), random.randint(50, 400))
    raises = [_Bid(open_lot.pk, amount, "raise") for amount in
              random.sample(range(open_lot.current_price + 1, open_lot.current_price + 150), random.randint(3, 6))]
    highest = max(b.amount for b in raises)
    low = _Bid(open_lot.pk, open_lot.current_price - random.randint(1, 40), "below the start")
    flagged = _Bid(open_lot.pk, highest + random.randint(5, 60), "fraud check 503")
    round1 = [*raises, low, flagged]
    random.shuffle(round1)

    closed_lot = await Lot.objects.acreate(title=_title(), current_price=random.randint(50, 400), closed=True)
    rival_lot = await run.new_lot(_title(), random.randint(50, 300))
    rival = rival_lot.current_price + random.randint(120, 240)
    missing = (await Lot.objects.aaggregate(top=Max("pk")))["top"] + random.randint(1000, 9000)
    equal = _Bid(open_lot.pk, highest, "equal to the price")  # its amount: the price that round 1 left
    on_closed = _Bid(closed_lot.pk, closed_lot.current_price + random.randint(5, 80), "on a closed lot")
    nowhere = _Bid(missing, random.randint(50, 400), "on a lot that does not exist")
    raced = [_Bid(rival_lot.pk, amount, "below the rival")
             for amount in random.sample(range(rival_lot.current_price + 1, rival), 3)]
    round2 = [equal, on_closed, nowhere, *raced]
    random.shuffle(round2)

    async with _relay(fraud.url, _FraudDesk({flagged.amount})) as desk:
        app = await _daphne(ex, "sandbox.asgi:application", upstream_url=desk)  # the course's own WebSocket routes
        stats1, stats2 = {}, {}
        try:
            await run.upstream_stats(fraud, reset=True)
            await _post_all(app.server.url, round1)
            stats1 = await run.upstream_stats(fraud)
            after_round1 = (await Lot.objects.aget(pk=open_lot.pk)).current_price
            equal.amount = after_round1
            if stats1["max_in_flight"] > 1 and not any(b.status is None or b.status >= 500 for b in round1
                                                       if b is not flagged):  # else round 1 decides already
                await _post_held(app.server.url, round2, fraud, rival=(rival_lot.pk, rival))
                stats2 = await run.upstream_stats(fraud)
            await asyncio.sleep(0.1)
            log = _log(app.server)
        finally:
            app.stop()

    # what the view left in the database
    before = {"closed": closed_lot.current_price, "rival": rival_lot.current_price}
    for lot in (open_lot, closed_lot, rival_lot):
        await lot.arefresh_from_db()
    lots = {"open": (open_lot, after_round1), "closed": (closed_lot, before["closed"]),
            "rival": (rival_lot, before["rival"])}
    rows = [b async for b in Bid.objects.filter(lot_id__in=[open_lot.pk, closed_lot.pk, rival_lot.pk, missing])]
    queued = [r async for r in tasks.exclude(pk__in=earlier)]
    await DBTaskResult.objects.filter(id__in=[r.id for r in queued]).adelete()  # no later worker should run them

    sent = round1 + (round2 if stats2 else [])
    _judge_errors(ex, log, [b for b in sent if b is not flagged])
    _judge_fraud(ex, stats1, stats2, round1, round2, flagged)
    _judge_prices(ex, lots, rival, raises, low, equal, on_closed, nowhere, raced)
    accepted = [b for b in sent if b.accepted]
    _judge_rows(ex, rows, accepted, flagged)
    _judge_tasks(ex, queued, accepted)
    passed(ex, f"{len(round1)} bids at once: the fraud checks overlapped ({stats1['max_in_flight']} in flight), the "
               f"one refused by the fraud check changed nothing, the price ended at {open_lot.current_price} with "
               f"{len(accepted)} accepted, each saved once and announced once; a bid equal to the price, a bid on a "
               f"closed lot, a bid on a missing lot and {len(raced)} bids below a rival's {rival} that committed "
               "while they waited were all refused")


def _judge_errors(ex: str, log: str, bids: list[_Bid]) -> None:
    """Answers that are no answer: no response, a 500 (explained from daphne's log), a coroutine never awaited."""
    broken = [b for b in bids if b.status is None or b.status >= 500]
    raised = [block for block in _tracebacks(log, "place_bid") if "HTTPStatusError" not in _raised(block)]
    text = "\n".join(raised)
    if broken or raised:
        if "NotImplementedError" in text:
            raise not_attempted(ex)
        if "SynchronousOnlyOperation" in text:
            raise ExerciseFailed(ex, "the view raised " + _explain_sync_only(text))
    if broken:
        bid = broken[0]
        answer = f"HTTP {bid.status}" if bid.status else f"no answer ({bid.body})"
        cause = _raised(raised[-1]) if raised else _last_error(log)
        if "FOREIGN KEY" in cause:
            why = (". It saved a Bid for a lot that does not exist: save a bid only once it has raised the price, "
                   "and refuse one that did not (the provided outbid answers 404 for a lot that does not exist)")
        elif "DoesNotExist" in cause or bid.role.endswith("exist"):
            why = (". A bid on a lot that does not exist must be refused like any bid that did not raise the price "
                   "(the provided outbid answers 404 for it)")
        else:
            why = ""
        raise ExerciseFailed(ex, f"a bid of {bid.amount} on lot {bid.lot_id} ({bid.role}) got {answer}: the view "
                                 f"raised {cause} (daphne's log){why}")
    expect_all_awaited(ex, names_in(log), ONLY_CREATES, wording=IN_A_PROCESS, where="in daphne, which runs the view")
    other = [b for b in bids if b.status not in ((201, 404, 409) if b.role.endswith("exist") else (201, 409))]
    if other:
        raise ExerciseFailed(ex, f"a bid got HTTP {other[0].status} ({other[0].body}): answer 201 with the provided "
                                 "accepted, or the provided outbid (409, or 404 for a lot that does not exist)")


def _judge_fraud(ex: str, stats1: dict, stats2: dict, round1, round2, flagged: _Bid) -> None:
    if stats1.get("served", 0) < len(round1) or (stats2 and stats2.get("served", 0) < len(round2)):
        served, count = (stats1.get("served", 0), len(round1)) if stats1.get("served", 0) < len(round1) else \
            (stats2.get("served", 0), len(round2))
        raise ExerciseFailed(ex, f"the fraud-check service was called {served} time(s) for {count} bids: check every "
                                 "bid, at fraud_check_url for its bidder and amount")
    if stats1.get("max_in_flight", 0) < 2:
        raise ExerciseFailed(ex, f"the {len(round1)} fraud checks ran one at a time (at most 1 in flight): the event "
                                 "loop was blocked while each one waited. A sync HTTP call (httpx.get, httpx.Client, "
                                 "requests) inside an async view blocks daphne's only event loop; use the async "
                                 "client that fraud_check_client gives, and await its get")
    if flagged.accepted:
        raise ExerciseFailed(ex, f"the bid of {flagged.amount}, whose fraud check answered 503 Service Unavailable, "
                                 "was accepted: an error status from the fraud check must fail the bid (raise it) "
                                 "before anything is written")


def _judge_prices(ex: str, lots: dict, rival: int, raises, low, equal, on_closed, nowhere, raced) -> None:
    """The conditions of a price rise, and no lost update. `lots`: {role: (lot, its price before the bids)}."""
    (open_lot, after_round1), (closed_lot, closed_price), (rival_lot, _) = lots["open"], lots["closed"], lots["rival"]
    highest = max(b.amount for b in raises)
    if low.accepted:
        raise ExerciseFailed(ex, f"a bid of {low.amount}, below the lot's starting price, was accepted")
    if after_round1 > highest:
        raise ExerciseFailed(ex, f"the price ended at {after_round1}, the bid whose fraud check answered 503: an "
                                 "error status from the fraud check must fail the bid before anything is written")
    if after_round1 != highest:
        raise ExerciseFailed(ex, f"lost updates: the price ended at {after_round1} after {len(raises) + 2} bids at "
                                 f"once, but the highest bid that passed the fraud check was {highest}: a lower bid "
                                 "wrote last. Reading the price, comparing in Python, then writing decides on a price "
                                 "that another request may have changed since")
    if equal.accepted:
        raise ExerciseFailed(ex, f"a bid equal to the current price ({equal.amount}) was accepted: only a bid "
                                 "strictly higher than the price may raise it")
    if on_closed.accepted or closed_lot.current_price != closed_price:
        raise ExerciseFailed(ex, f"a bid of {on_closed.amount} on a closed lot (price {closed_price}) was "
                                 f"{'accepted' if on_closed.accepted else 'refused but raised its price'}: a closed "
                                 "lot takes no bids")
    if nowhere.status != 404:
        raise ExerciseFailed(ex, f"a bid on lot {nowhere.lot_id}, which does not exist, got HTTP {nowhere.status}: "
                                 "refuse it like any bid that did not raise the price (the provided outbid answers "
                                 "404 for it)")
    won_late = [b for b in raced if b.accepted]
    if won_late or rival_lot.current_price != rival:
        raise ExerciseFailed(ex, f"lost updates: {len(won_late)} of {len(raced)} bids below a rival's {rival}, which "
                                 "committed while they waited, were accepted, and the price ended at "
                                 f"{rival_lot.current_price}. Reading the price, comparing in Python, then writing "
                                 "decides on a price that another request may have changed since: let the database "
                                 "compare and write in one statement, and use the number of rows it changed")
    if open_lot.current_price != after_round1:
        raise ExerciseFailed(ex, f"the price of lot {open_lot.pk} changed from {after_round1} to "
                                 f"{open_lot.current_price} although no bid on it was accepted")


def _judge_rows(ex: str, rows, accepted: list[_Bid], flagged: _Bid) -> None:
    saved = sorted((r.lot_id, r.bidder, r.amount) for r in rows)
    wanted = sorted((b.lot_id, b.bidder, b.amount) for b in accepted)
    if (flagged.lot_id, flagged.bidder, flagged.amount) in saved:
        raise ExerciseFailed(ex, f"the bid of {flagged.amount}, whose fraud check answered 503, was saved as a Bid: "
                                 "raise for the error status before anything is written")
    if saved != wanted:
        extra = [s for s in saved if s not in wanted]
        if extra:
            raise ExerciseFailed(ex, f"{len(rows)} Bid rows were saved for {len(accepted)} accepted bids (one is "
                                     f"{extra[0][1]}'s {extra[0][2]}, which was refused): save a bid only once it "
                                     "has raised the price")
        raise ExerciseFailed(ex, f"{len(accepted)} bids were accepted but {len(rows)} Bid rows were saved with their "
                                 "lot, bidder and amount: save one Bid per accepted bid, with the request's bidder "
                                 "and amount")
    by_id = {r.pk: (r.lot_id, r.bidder, r.amount) for r in rows}
    for bid in accepted:
        named = bid.body.get("bid") if isinstance(bid.body, dict) else None
        if by_id.get(named) != (bid.lot_id, bid.bidder, bid.amount):
            raise ExerciseFailed(ex, f"the 201 for {bid.bidder}'s {bid.amount} says {bid.body}: answer with the "
                                     "provided accepted, given the Bid you saved")


def _judge_tasks(ex: str, queued, accepted: list[_Bid]) -> None:
    ids = sorted(b.body["bid"] for b in accepted)
    given = [_task_bid_id(r) for r in queued]
    if sorted(map(str, given)) != sorted(map(str, ids)):
        if len(given) != len(ids):
            raise ExerciseFailed(ex, f"announce_bid was enqueued {len(given)} time(s) for {len(ids)} accepted bids: "
                                     "enqueue it once for each accepted bid, with the saved bid's id")
        raise ExerciseFailed(ex, f"announce_bid was enqueued with {sorted(given, key=str)}, but the accepted bids' "
                                 f"ids are {ids}: enqueue it with the id of the Bid you saved")
