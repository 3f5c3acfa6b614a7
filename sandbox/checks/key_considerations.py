"""Checks for the exercises of chapter 08, key considerations.

Each one runs the learner's code for real, with inputs drawn anew on every run: two concerts of random sizes sold
out by waves of concurrent buyers through Django's ASGI handler (in an event loop of its own thread, so that a lock
that blocks the loop cannot hang the notebook), request ids of random number and value read back across a
`sync_to_async` hop by overlapping requests (and by one request that remembered nothing), a DATABASES entry asked
for a URL the learner has not seen, read by Django's own connection handler and then used by a real uvicorn
against a private PostgreSQL while PostgreSQL counts the connections, and a test run against a correct view and
four broken ones. The mistake is told apart by what happened: a seat sold twice, a buyer charged for nothing, an id
seen by the wrong request or lost in a worker thread, connections that pile up, a test that passes on a broken
view.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
import math
import random
import secrets
import sys
import threading
import time
import traceback
import types
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.asgi import ASGIHandler
from django.core.signals import got_request_exception
from django.db.utils import ConnectionHandler
from django.http import HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.test import AsyncClient, override_settings

from sandbox.checks import exercise_urls
from sandbox.checks.common import (
    ExerciseFailed,
    not_attempted,
    passed,
    reject_coroutine,
    require_async_function,
    watch_loop,
)

# the chapter's givens, re-exported: the notebook calls `check.charge_card` and shows `check.menu_view`
from sandbox.checks.givens.key_considerations import (  # noqa: F401
    API_KEY,
    MENU,
    PAYMENT_SECONDS,
    charge_card,
    charges,
    current_buyer,
    inventories,
    menu_view,
    seen_headers,
)
from sandbox.checks.harness import (
    Kept,
    Requirements,
    call,
    exercise_check,
    expect_all_awaited,
    expect_json,
    expect_not_blocked,
    is_learner_file,
    meaning,
    never_awaited,
    serving,
)
from sandbox.lab.clients import client
from sandbox.lab.experiments.connections import connections_under_load
from sandbox.lab.load import periodic
from sandbox.lab.postgres import DATABASE, ROLE, password_env, start_postgres
from sandbox.lab.servers import HOST

REQUIREMENTS = {
    "seat-lock": Requirements("18703ce7c573", (
        ("`make_reserve(inventory)` returns an async view",
         "make_reserve is called once per concert with a fresh inventory; what it returns must be `async def`"),
        ("that sells one seat per request: it reads how many are left, charges the buyer's card and then takes the "
         "seat",
         "the check's charge_card records which buyer it charges and how many seats were left at that moment: the "
         "seat a buyer gets must be the count left when their card was charged (charged first, taken after); the "
         "inventory the check handed over must say how many are left after each wave"),
        ('It answers `{"seat": n}`, where `n` is the number of seats that were left before the sale',
         "every 200 is JSON {\"seat\": int}; the seats sold to one concert must be exactly its count down to 1"),
        ('or HTTP 409 with `{"seat": None}` when none is left',
         "every buyer past the last seat gets exactly HTTP 409 and {\"seat\": null}; no buyer is refused while a "
         "seat is left (the boundary of the comparison)"),
        ("Never charge a buyer who gets no seat",
         "charge_card knows the buyer: each buyer who got a seat is charged once, and no refused buyer at all"),
        ("two concerts at once, a different number of seats each run, fewer buyers than seats, then more",
         "2 concerts of 4-14 seats (never the text's 10), a first wave of 1 to seats-2 buyers, then a second wave "
         "of the seats left plus 2-5; all requests of a wave at once through Django's ASGI handler"),
        ("Every seat must be sold exactly once",
         "no seat number twice, no more buyers served than seats, seat 0 never sold, the inventory at 0 at the end"),
        ("and the event loop must keep running",
         "the scenario's loop runs a heartbeat: a loop stuck for 3 s is a deadlock, named with the line of the "
         "learner's view it is stuck in; a stall above BLOCKED fails too; a charge never awaited is named"),
    )),
    "request-context": Requirements("794ffa2f5cad", (
        ("`make_request_store()` returns two plain functions",
         "a pair of callables, neither `async def`, and recall must return a value, never a coroutine"),
        ("`remember(request_id)` keeps the current request's id, and `recall()` returns it",
         "4-7 requests with ids drawn at random for this run: each must read back exactly its own id"),
        ("(`None` when nothing was remembered)",
         "one more overlapping request remembers nothing: it must read None, on the loop and in the thread; an "
         "exception (a ContextVar's LookupError) or another value ('') is named"),
        ("several overlapping requests, the later ones waiting less, so that they finish in the opposite order",
         "served through Django's ASGI handler, all at once, each in a fresh context; the delays fall with the order"),
        ("Each request must read back its own id, both times",
         "after its await on the event loop (another request's id: a shared store, named) and inside "
         "sync_to_async in a worker thread (nothing: a store keyed by thread, named)"),
    )),
    "pooled-database": Requirements("e417d08551af", (
        ("`asgi_database(url)` returns the `DATABASES[\"default\"]` entry for the PostgreSQL database at `url`",
         "first called with a URL of random port, name and user: the entry must still point at it (NAME, USER, "
         "HOST, PORT), be a dict with ENGINE; a KeyError while filling it is explained in words"),
        ("at most 4 connections per process",
         "Django's own connection handler builds the pool from the entry (no connection): it must exist, in OPTIONS, "
         "with max_size <= 4; and under load PostgreSQL must count at most 4 at once"),
        ("reused from one request to the next",
         "CONN_MAX_AGE must stay 0 (Django refuses a pool with persistent connections); under load, at most 4 "
         "connections opened in all for 32 requests"),
        ("requests that find all 4 busy wait their turn (up to 10 s) instead of failing",
         "the pool's timeout must be 10 s; under load (16 requests at once, 4 connections) no request may fail"),
        ("a real uvicorn that uses your entry, two rounds of 16 concurrent requests",
         "measure.connections_under_load on the private PostgreSQL, kept for the kernel (`postgres`); without "
         "PostgreSQL installed, the verdict of Django's connection handler alone, and it says so"),
    )),
    "async-test": Requirements("352092762824", (
        ("Write `test_menu(client)`, an async test of that view",
         "`async def`, called with a django.test.AsyncClient on the view served at /exercise/ through Django's ASGI "
         "handler; coroutines it never awaited are named"),
        ("first with the view above, where your test must pass",
         "it must return (not raise) against menu_view; an AssertionError is reported with its line, a key sent with "
         "the WSGI HTTP_ prefix and the sync Client are named"),
        ("then with broken versions of it, each getting one of those two answers wrong, where your test must fail",
         "four broken views: no 403 without the key, the wrong menu, a 403 even with the key, a 401 instead of "
         "the 403; the test must raise against every one, and every one it passes is named"),
    )),
}


def _yours(frames) -> list[traceback.FrameSummary]:
    """The frames (of a traceback or of a stack) that are the learner's code, not the course's, Django's or
    Python's."""
    return [f for f in frames if is_learner_file(f.filename)]


def _where(exc: BaseException) -> str:
    """' in reserve() (line 6)': the learner's innermost frame of a traceback, never the line's code."""
    mine = _yours(traceback.extract_tb(exc.__traceback__))
    return f" in {mine[-1].name}() (line {mine[-1].lineno})" if mine else ""


def _raised(exc: BaseException) -> str:
    """An exception from the learner's code in words: what, where, and what it usually means."""
    what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return f"{what}{_where(exc)}. {meaning(exc)}".strip()


async def _calling(ex: str, fn, *args, what: str):
    """`call` (a deadline, "not attempted" for the stub), with an exception from the learner's function explained
    in words rather than quoted."""
    try:
        return await call(ex, fn, *args, what=what, timeout=10)
    except (ExerciseFailed, NotImplementedError):
        raise
    except Exception as exc:
        raise ExerciseFailed(ex, f"{what} raised {_raised(exc)}") from None


# --- exercise 1: sell seats without overselling ----------------------------------------------------------------

SEAT_CHOICES = [n for n in range(4, 15) if n != 10]  # never the text's example: a hard-coded 10 cannot pass
STUCK_AFTER = 3.0  # seconds without a heartbeat of the scenario's loop: blocked for good (a deadlock)
SCENARIO_DEADLINE = 30.0

@dataclass
class _Concert:
    name: str
    seats: int
    waves: tuple[int, int]  # buyers in the first wave (fewer than the seats), then in the second (more than left)
    inventory: dict = field(default_factory=dict)
    answers: list = field(default_factory=list)  # (wave, buyer, response or exception)
    left_after: list = field(default_factory=list)  # the inventory after each wave
    odd: list = field(default_factory=list)  # what the view returned instead of a response


def _draw_concerts() -> list[_Concert]:
    concerts = []
    for name in ("north", "south"):
        seats = random.choice(SEAT_CHOICES)
        first = random.randint(1, seats - 2)
        concerts.append(_Concert(name, seats, (first, seats - first + random.randint(2, 5)), {"left": seats}))
    return concerts


def _at_the_door(concert: _Concert, view):
    """The learner's view, behind a door that tells charge_card who is buying."""

    async def door(request):
        current_buyer.set((concert.name, int(request.GET["buyer"])))
        response = await view(request)
        if not isinstance(response, HttpResponseBase):
            concert.odd.append(response)
            if inspect.iscoroutine(response):
                response.close()
            return HttpResponse(status=500)
        return response

    return door


def _recording_errors():
    """Collect what views raise (Django turns it into a 500); returns (errors, disconnect). Local rather than the
    harness's `serving`: the requests run in a thread of their own, which may never come back, and the recording
    must end here all the same."""
    errors: list[BaseException] = []

    def record(sender, request=None, **kwargs):
        errors.append(sys.exc_info()[1])

    got_request_exception.connect(record, weak=False)
    return errors, lambda: got_request_exception.disconnect(record)


def _in_own_loop(scenario, outcome: dict) -> threading.Thread:
    """Run `scenario()` in a new event loop on a daemon thread; a loop that blocks forever blocks only that thread."""

    def run() -> None:
        try:
            outcome["result"] = asyncio.run(scenario())
        except BaseException as exc:  # reported by the check
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="seat-check", daemon=True)
    thread.start()
    return thread


async def _sell(concerts: list[_Concert], beat: list[float]) -> float:
    """The scenario, in the thread's own loop: each wave's buyers of both concerts at once; the loop's longest stall."""
    def tick() -> None:  # read by the kernel's loop, which tells a stuck scenario from a slow one
        beat[0] = time.perf_counter()

    async with periodic(0.01, tick, last=False):
        async with client(ASGIHandler(), timeout=SCENARIO_DEADLINE) as c, watch_loop() as watch:
            numbered = {c_.name: 0 for c_ in concerts}
            for wave in (0, 1):
                buyers = []
                for concert in concerts:
                    for _ in range(concert.waves[wave]):
                        numbered[concert.name] += 1
                        buyers.append((concert, numbered[concert.name]))
                random.shuffle(buyers)
                answers = await asyncio.gather(*(c.get(f"/{concert.name}/?buyer={n}") for concert, n in buyers),
                                               return_exceptions=True)
                for (concert, n), answer in zip(buyers, answers, strict=True):
                    concert.answers.append((wave, n, answer))
                for concert in concerts:
                    concert.left_after.append(concert.inventory.get("left"))
        return watch.max_gap


def _stuck_at(thread: threading.Thread) -> tuple[str, str]:
    """Where the stuck thread waits: ('in reserve() (line 6)', that line's text) for the learner's innermost frame."""
    frame = sys._current_frames().get(thread.ident)
    mine = _yours(traceback.extract_stack(frame)) if frame is not None else []
    if not mine:
        return "", ""
    return f" in your view's {mine[-1].name}() (line {mine[-1].lineno})", mine[-1].line or ""


@exercise_check("seat-lock")
async def sell_seats(make_reserve) -> None:
    """Exercise 'seat-lock': `make_reserve(inventory)` returns an async view that sells each seat once."""
    ex = "seat-lock"
    if not callable(make_reserve):
        raise ExerciseFailed(ex, f"make_reserve should be a function, got {type(make_reserve).__name__}")
    concerts = _draw_concerts()
    routes = {}
    for concert in concerts:
        view = await _calling(ex, make_reserve, concert.inventory, what="make_reserve(inventory)")
        if not callable(view) or not inspect.iscoroutinefunction(view):
            got = "a sync function (`def`)" if callable(view) else repr(view)[:60]
            raise ExerciseFailed(ex, f"make_reserve should return an async view (`async def`), got {got}")
        routes[f"{concert.name}/"] = _at_the_door(concert, view)

    charges.clear()
    inventories.clear()
    inventories.update({c.name: c.inventory for c in concerts})
    exercise_urls.serve(routes)
    errors, disconnect = _recording_errors()
    overridden = override_settings(ROOT_URLCONF=exercise_urls.__name__)
    overridden.enable()
    outcome: dict = {}
    beat = [time.perf_counter()]
    try:
        with never_awaited() as dropped:
            thread = _in_own_loop(lambda: _sell(concerts, beat), outcome)
            start = time.perf_counter()
            async with asyncio.timeout(SCENARIO_DEADLINE + 10):
                while thread.is_alive() and time.perf_counter() - start < SCENARIO_DEADLINE:
                    if time.perf_counter() - beat[0] > STUCK_AFTER:
                        break
                    await asyncio.sleep(0.02)
    finally:
        overridden.disable()  # even when the scenario's loop is stuck for good
        disconnect()
    if thread.is_alive():
        where, line = _stuck_at(thread)
        stalled = time.perf_counter() - beat[0]
        if stalled > STUCK_AFTER and "sleep" in line:
            raise ExerciseFailed(ex, f"the event loop stopped for {stalled:.1f} s{where}: a sync sleep (or another "
                                     "blocking call) holds the loop's only thread, and every request waits")
        if stalled > STUCK_AFTER:
            raise ExerciseFailed(ex, f"the event loop is stuck: its only thread has waited {stalled:.1f} s"
                                     f"{where}, and no request can go on (a deadlock). A threading.Lock held across "
                                     "an await does this: a second request blocks the loop's thread waiting for it, "
                                     "so the first can never resume to release it. Use a lock made for the event "
                                     "loop, which waits by awaiting")
        raise ExerciseFailed(ex, f"the buyers had not all been answered after {SCENARIO_DEADLINE:.0f} s, although "
                                 "the loop kept running: does the view wait for something that never comes?")
    _judge_run(ex, concerts, outcome, errors, dropped)
    for concert in concerts:
        _judge_concert(ex, concert)
    total = sum(sum(c.waves) for c in concerts)
    refused = sum(sum(c.waves) - c.seats for c in concerts)
    shown = " and ".join(f"{c.seats}" for c in concerts)
    passed(ex, f"{total} buyers for two concerts of {shown} seats, in two waves: every seat sold once, charged "
               f"first; {refused} refused with 409 and never charged; both inventories at 0")


def _judge_run(ex: str, concerts: list[_Concert], outcome: dict, errors: list, dropped: list[str]) -> None:
    """What went wrong with the run as a whole: the view raised, dropped a coroutine, blocked the loop."""
    if any(isinstance(e, NotImplementedError) for e in errors):
        raise not_attempted(ex)
    for exc in errors:
        if "coroutine" in str(exc):
            raise ExerciseFailed(ex, f"your view raised {_raised(exc)}")
    expect_all_awaited(ex, dropped, "charge_card is a coroutine function: calling it without `await` charges "
                                    "nobody, it only makes a coroutine that never runs")
    if errors:
        raise ExerciseFailed(ex, f"your view raised {_raised(errors[0])}")
    if "error" in outcome:
        exc = outcome["error"]
        if isinstance(exc, TimeoutError):
            raise ExerciseFailed(ex, f"a buyer was not answered in time ({exc}): does the view wait for something "
                                     "that never comes?")
        raise exc  # the scenario's own failure: the check's fault, reported as such by exercise_check
    expect_not_blocked(ex, outcome["result"], "a sync call (time.sleep, a threading.Lock that another request holds) "
                                              "inside the view stops every other request")
    for concert in concerts:
        for response in concert.odd:
            kind = "a coroutine (a missing `await`)" if inspect.iscoroutine(response) else type(response).__name__
            raise ExerciseFailed(ex, f"the view returned {kind} instead of a response: return a JsonResponse")
        for _, _, answer in concert.answers:
            if isinstance(answer, BaseException):
                raise ExerciseFailed(ex, f"a buyer's request failed: {type(answer).__name__}: {answer}")


def _judge_concert(ex: str, c: _Concert) -> None:
    """One concert's answers, inventory and charges against what the text asks."""
    seats, label = c.seats, f"the {c.name} concert ({c.seats} seats)"
    sold, refused = [], []
    for wave, buyer, response in c.answers:
        if response.status_code not in (200, 409):
            raise ExerciseFailed(ex, f"the view answered HTTP {response.status_code}: answer 200 with the seat, or "
                                     "409 when none is left")
        body = expect_json(ex, response, f"the view (HTTP {response.status_code})")
        if response.status_code == 200:
            if not (isinstance(body, dict) and set(body) == {"seat"} and isinstance(body["seat"], int)
                    and not isinstance(body["seat"], bool)):
                if isinstance(body, dict) and body.get("seat", 0) is None:
                    raise ExerciseFailed(ex, "a buyer who got no seat was answered HTTP 200: refuse with 409 when "
                                             "none is left")
                raise ExerciseFailed(ex, f'a sale should answer {{"seat": n}} with the seat\'s number, got {body}')
            sold.append((wave, buyer, body["seat"]))
        else:
            if body != {"seat": None}:
                raise ExerciseFailed(ex, f'a refused buyer should get {{"seat": null}} with the 409, got {body}')
            refused.append((wave, buyer))
    numbers = [seat for _, _, seat in sold]
    twice = sorted({n for n in numbers if numbers.count(n) > 1})
    if twice:
        raise ExerciseFailed(ex, f"lost updates: in {label}, {len(sold)} buyers got a seat, and seat {twice[0]} was "
                                 f"sold {numbers.count(twice[0])} times; the inventory says {c.inventory.get('left')} "
                                 "left. Each request read the count, awaited the payment, then wrote: during the "
                                 "await the others read the same old count. Keep the read, the await and the write "
                                 "in one critical section, under one asyncio.Lock that every request of the view "
                                 "shares (a lock made inside the view is new for each request and protects nothing)")
    if len(sold) > seats:
        raise ExerciseFailed(ex, f"{label} sold a seat when none was left: {len(sold)} sales, seats "
                                 f"{sorted(numbers, reverse=True)}. Refuse with 409 once the count is 0")
    if len(sold) < seats:
        raise ExerciseFailed(ex, f"{label}: only {len(sold)} seats sold, and buyers refused while seats were left "
                                 f"(the inventory says {c.inventory.get('left')}). Refuse only when none is left")
    if sorted(numbers) != list(range(1, seats + 1)):
        raise ExerciseFailed(ex, f"{label}: the seats sold should be numbered by how many were left before each sale "
                                 f"({seats} down to 1), got {sorted(numbers, reverse=True)}")
    expected_after = [seats - c.waves[0], 0]
    if c.left_after != expected_after:
        raise ExerciseFailed(ex, f"{label}: after {c.waves[0]} sales the inventory says {c.left_after[0]} left, and "
                                 f"{c.left_after[1]} at the end: take each seat from the inventory the view was given, "
                                 "so that it always says how many are left")
    mine = [(buyer, left) for name, buyer, left in charges if name == c.name]
    charged = [buyer for buyer, _ in mine]
    nothing = sorted({b for _, b in refused} & set(charged))
    if nothing:
        raise ExerciseFailed(ex, f"{label}: {len(nothing)} buyers who got no seat were charged: check what is left "
                                 "before you charge, and refuse without charging")
    for _, buyer, seat in sold:
        if charged.count(buyer) != 1:
            raise ExerciseFailed(ex, f"{label}: a buyer who got seat {seat} was charged {charged.count(buyer)} "
                                     "times: charge each buyer once, before the seat is taken")
        left_then = next(left for b, left in mine if b == buyer)
        if left_then != seat:
            raise ExerciseFailed(ex, f"{label}: the buyer of seat {seat} was charged when the inventory said "
                                     f"{left_then} left: the seat was taken before the card was charged. Read, "
                                     "charge, then take the seat, all in one critical section")


# --- exercise 2: keep a request's id in the request's context ---------------------------------------------------

def _plain(value):
    if inspect.iscoroutine(value):
        value.close()
        return "<coroutine>"
    return value


def _tagging_view(remember, recall, seen: list[dict]):
    """The view the check serves: stores the id (when the request has one), waits while the others run, reads it
    back here and in a worker thread; what each step gave or raised goes to `seen`."""

    async def tagged(request):
        rid = request.GET.get("id")
        record = {"id": rid}
        seen.append(record)
        step = "remember"
        try:
            if rid is not None:
                record["remembered"] = _plain(remember(rid))
            await asyncio.sleep(float(request.GET["s"]))
            step = "recall on the event loop"
            record["on_loop"] = _plain(recall())
            step = "recall in a worker thread, through sync_to_async"
            record["in_thread"] = _plain(await sync_to_async(recall)())
        except Exception as exc:
            record["raised"] = (step, exc)
        return JsonResponse({"ok": True})

    return tagged


def _mutable_default(*functions) -> bool:
    """Does a ContextVar the learner's functions use have a mutable default (one object every context shares)?"""
    for fn in functions:
        values = [cell.cell_contents for cell in (getattr(fn, "__closure__", None) or ())
                  if not _empty_cell(cell)]
        code = getattr(fn, "__code__", None)
        values += [fn.__globals__[n] for n in (code.co_names if code else ()) if n in getattr(fn, "__globals__", {})]
        for value in values:
            if isinstance(value, contextvars.ContextVar):
                try:
                    default = contextvars.Context().run(value.get)
                except LookupError:
                    continue
                if isinstance(default, dict | list | set | types.SimpleNamespace):
                    return True
    return False


def _empty_cell(cell) -> bool:
    try:
        cell.cell_contents  # noqa: B018
    except ValueError:
        return True
    return False


@exercise_check("request-context")
async def request_context(make_request_store) -> None:
    """Exercise 'request-context': `make_request_store()` returns (remember, recall), per request."""
    ex = "request-context"
    if not callable(make_request_store):
        raise ExerciseFailed(ex, "make_request_store should be a function")
    store = await _calling(ex, make_request_store, what="make_request_store()")
    if not (isinstance(store, tuple | list) and len(store) == 2 and all(callable(f) for f in store)):
        raise ExerciseFailed(ex, "make_request_store() should return two functions: (remember, recall)")
    remember, recall = store
    for fn, name in ((remember, "remember"), (recall, "recall")):
        if inspect.iscoroutinefunction(fn):
            raise ExerciseFailed(ex, f"{name} is `async def`, but it is called from sync code too (a library's "
                                     "logger, through sync_to_async): make it a plain function")

    n = random.randint(4, 7)
    ids = [f"req-{secrets.token_hex(3)}" for _ in range(n)]
    paths = [f"/exercise/?id={rid}&s={0.04 * (n - i) + 0.02:.2f}" for i, rid in enumerate(ids)]
    paths.insert(random.randint(1, n - 1), f"/exercise/?s={0.02 * n + 0.01:.2f}")  # one remembers nothing
    seen: list[dict] = []
    async with serving(ex, _tagging_view(remember, recall, seen)) as served:
        # each request in a fresh context: nothing the notebook set at its top level reaches them
        requests = [asyncio.create_task(served.client.get(p), context=contextvars.Context()) for p in paths]
        async with asyncio.timeout(30):
            await asyncio.gather(*requests)
    if served.errors:
        raise ExerciseFailed(ex, f"the request failed: {_raised(served.errors[0])}")
    _judge_context(ex, seen, ids, remember, recall)
    passed(ex, f"{n} overlapping requests with new ids each read back their own, on the event loop and in a worker "
               "thread; the one that remembered nothing read None")


def _judge_context(ex: str, seen: list[dict], ids: list[str], remember, recall) -> None:
    for record in seen:
        if "raised" in record:
            step, exc = record["raised"]
            if record["id"] is None and isinstance(exc, LookupError):
                raise ExerciseFailed(ex, f"in the request that remembered nothing, recall() raised {_raised(exc)} "
                                         "With nothing remembered it should return None: a ContextVar's get raises "
                                         "LookupError when the variable has no value and no default")
            raise ExerciseFailed(ex, f"{step} raised {_raised(exc)}")
        if "<coroutine>" in (record.get("remembered"), record.get("on_loop"), record.get("in_thread")):
            raise ExerciseFailed(ex, "remember or recall returned a coroutine that was never awaited: the logging "
                                     "helper calls them from sync code, so make both plain functions")
    named = [r for r in seen if r["id"] is not None]
    anonymous = [r for r in seen if r["id"] is None]
    mixed = [r for r in named if r["on_loop"] in ids and r["on_loop"] != r["id"]]
    mixed += [r for r in anonymous if r["on_loop"] in ids or r["in_thread"] in ids]
    if mixed:
        r = mixed[0]
        other = r["on_loop"] if r["on_loop"] in ids else r["in_thread"]
        whose = f"request {r['id']}" if r["id"] else "the request that remembered nothing"
        if all(x["in_thread"] is None for x in named):
            raise ExerciseFailed(ex, f"{whose} read back {other!r} after its await: another request's id, and in a "
                                     "worker thread recall() found nothing at all. The store is keyed by thread "
                                     "(threading.local, or a dict keyed by thread): on the event loop every request "
                                     "shares one thread, and sync_to_async runs recall on another. Keep the id in a "
                                     "context variable: each request has its own context, which sync_to_async "
                                     "carries to the thread")
        shared = ("The ContextVar's default is a mutable default: one object that every context shares, and the "
                  "requests change it instead of setting the variable. " if _mutable_default(remember, recall) else
                  "The store is shared by every request that overlaps (a module global, a dict, or a ContextVar's "
                  "mutable default that every context shares). ")
        raise ExerciseFailed(ex, f"{whose} read back {other!r} after its await: another request's id. {shared}"
                                 "Set the id itself in a context variable, once per request")
    for r in named:
        if r["on_loop"] != r["id"]:
            raise ExerciseFailed(ex, f"request {r['id']} read back {r['on_loop']!r} right after its own remember: "
                                     "the id was not kept (a new store, or a new ContextVar, made on every call "
                                     "forgets what the last call set)")
    for r in named:
        if r["in_thread"] != r["id"]:
            raise ExerciseFailed(ex, f"request {r['id']}: recall() in sync_to_async returned {r['in_thread']!r}. The "
                                     "id was lost in the hop to the worker thread: threading.local (or anything keyed "
                                     "by thread) belongs to one thread. A ContextVar travels with the context, which "
                                     "sync_to_async copies to the thread")
    for r in anonymous:
        for where, value in (("on the event loop", r["on_loop"]), ("in a worker thread", r["in_thread"])):
            if value is not None:
                raise ExerciseFailed(ex, f"in the request that remembered nothing, recall() {where} returned "
                                         f"{value!r}: it should return None when nothing was remembered")


# --- exercise 3: DATABASES for ASGI, with a pool ----------------------------------------------------------------

POOL_LIMIT, POOL_TIMEOUT, LOAD, ROUNDS = 4, 10.0, 16, 2
SETTINGS = {"ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS", "CONN_MAX_AGE", "CONN_HEALTH_CHECKS",
            "AUTOCOMMIT", "ATOMIC_REQUESTS", "TIME_ZONE", "DISABLE_SERVER_SIDE_CURSORS", "TEST"}


class _Missing:
    """No PostgreSQL on this machine: asked once per kernel, falsy."""

    def __bool__(self) -> bool:
        return False

    def alive(self) -> bool:
        return True


async def _start_postgres():
    pg = await start_postgres(max_connections=20, quiet=True)
    return pg if pg else _Missing()


postgres = Kept(_start_postgres)  # the private PostgreSQL, kept for the kernel (lab.stop_all stops it)


def _database_url(port: int) -> str:
    return f"postgresql://{ROLE}@{HOST}:{port}/{DATABASE}"


def _unseen_url() -> str:
    """A URL the learner has not seen: another port, database and user each run (nothing connects to it)."""
    return (f"postgresql://u_{secrets.token_hex(3)}@127.0.0.1:{random.randint(20000, 60000)}/"
            f"db_{secrets.token_hex(3)}")


async def _entry(ex: str, asgi_database, url: str) -> dict:
    """The learner's entry for `url`, or what went wrong, in words."""
    try:
        database = await call(ex, asgi_database, url, what="asgi_database(url)", timeout=10)
    except (ExerciseFailed, NotImplementedError):
        raise
    except KeyError as exc:
        raise ExerciseFailed(ex, f"asgi_database raised KeyError: {exc}{_where(exc)}: the entry has no key {exc} "
                                 "yet (the connection part sets only ENGINE, NAME, USER, HOST and PORT), so there is "
                                 "nothing under it to fill in. Create the nested dict first") from None
    except Exception as exc:
        raise ExerciseFailed(ex, f"asgi_database raised {_raised(exc)}") from None
    if not isinstance(database, dict) or "ENGINE" not in database:
        raise ExerciseFailed(ex, f"return the settings dict of one database (ENGINE, NAME, ...), got "
                                 f"{str(database)[:80]}")
    return database


def _expect_points_at(ex: str, database: dict, url: str) -> None:
    if database.get("ENGINE") != "django.db.backends.postgresql":
        raise ExerciseFailed(ex, f"the entry's ENGINE is {database.get('ENGINE')!r}: the database at `url` is "
                                 "PostgreSQL, so keep the PostgreSQL backend of the connection part")
    parts = urlsplit(url)
    expected = {"NAME": parts.path.lstrip("/"), "USER": parts.username, "HOST": parts.hostname, "PORT": parts.port}
    for key, want in expected.items():
        got = database.get(key)
        if str(got) != str(want):
            raise ExerciseFailed(ex, f"the entry no longer points at the database at `url`: its {key} is {got!r}, "
                                     f"the URL says {want!r}. Keep the connection part and add to it")


def _pool_of(ex: str, database: dict):
    """The pool Django's own connection handler builds from the entry (no connection is opened), or None."""
    options = database.get("OPTIONS", {})
    if not isinstance(options, dict):
        raise ExerciseFailed(ex, f"OPTIONS should be a dict of the backend's options, got {options!r}")
    alias = f"check_pool_{time.monotonic_ns()}"
    wrapper = ConnectionHandler({"default": {**database}}).create_connection("default")
    wrapper.alias = alias
    try:
        return wrapper.pool
    except ImproperlyConfigured as exc:
        advice = (": a pool replaces persistent connections, so keep CONN_MAX_AGE at 0 (the pool keeps its "
                  "connections open itself)") if "persistent" in str(exc) else ""
        raise ExerciseFailed(ex, f"Django refuses this entry (ImproperlyConfigured: {exc}){advice}") from None
    except (TypeError, ValueError) as exc:
        raise ExerciseFailed(ex, f"psycopg_pool refuses the pool's settings ({type(exc).__name__}: {exc}): the pool "
                                 "dict holds the arguments of psycopg_pool.ConnectionPool (min_size, max_size, "
                                 "timeout, ...), and min_size is 4 unless you say otherwise") from None
    finally:
        type(wrapper)._connection_pools.pop(alias, None)


def _misplaced(database: dict) -> str | None:
    """Why there is no pool when the entry itself shows it: a key Django does not read."""
    stray = sorted(str(k) for k in database if k not in SETTINGS)
    if any(k.lower() == "pool" for k in stray):
        return ("no pool: the entry has a top-level 'pool' key, which Django ignores; the pool's settings belong in "
                "the entry's OPTIONS")
    if stray:
        return (f"no pool: Django ignores the key(s) {', '.join(map(repr, stray))} of the entry; the pool's "
                "settings belong in OPTIONS")
    return None


def _no_pool(ex: str, database: dict) -> str:
    return _misplaced(database) or f"no pool: set OPTIONS['pool'] to share at most {POOL_LIMIT} connections"


def _expect_pool_settings(ex: str, pool) -> None:
    if pool.max_size > POOL_LIMIT:
        raise ExerciseFailed(ex, f"the pool may open {pool.max_size} connections: more than {POOL_LIMIT} "
                                 "connections per process. Size it with max_size")
    if not math.isclose(pool.timeout, POOL_TIMEOUT, abs_tol=0.01):
        default = " (psycopg_pool's default)" if pool.timeout == 30 else ""
        raise ExerciseFailed(ex, f"the pool's timeout is {pool.timeout:g} s{default}: a request that finds every "
                                 f"connection busy should wait up to 10 s for one, then fail. Set the pool's timeout")


def _offline_verdict(ex: str, database: dict) -> str:
    """What Django's own connection handler makes of the entry (no connection is opened): a description of the
    pool, or ExerciseFailed."""
    pool = _pool_of(ex, database)
    if pool is None:
        raise ExerciseFailed(ex, _no_pool(ex, database) + ". Under ASGI every request opens its own connection, "
                                 "and persistent ones (CONN_MAX_AGE) pile up")
    _expect_pool_settings(ex, pool)
    return f"a pool of at most {pool.max_size} connections, waiting up to {pool.timeout:g} s for one"


@exercise_check("pooled-database")
async def pooled_database(asgi_database) -> None:
    """Exercise 'pooled-database': `asgi_database(url)` returns DATABASES["default"] for ASGI."""
    ex = "pooled-database"
    if not callable(asgi_database):
        raise ExerciseFailed(ex, "asgi_database should be a function")
    unseen = _unseen_url()
    database = await _entry(ex, asgi_database, unseen)  # an untouched stub: "not attempted", before PostgreSQL starts
    _expect_points_at(ex, database, unseen)
    pool = _pool_of(ex, database)
    if pool is not None:
        _expect_pool_settings(ex, pool)
    elif _misplaced(database):
        raise ExerciseFailed(ex, _misplaced(database))
    async with asyncio.timeout(180):
        pg = await postgres()
    if not pg:
        passed(ex, _offline_verdict(ex, database) + " (checked by Django's connection handler without PostgreSQL, "
                                                    "which is not installed)")
        return
    url = _database_url(pg.port)
    live = await _entry(ex, asgi_database, url)
    _expect_points_at(ex, live, url)

    # The learner's entry names no password (the URL it was given has none); the server's libpq finds PGPASSWORD.
    env = {"DJANGO_SETTINGS_MODULE": "sandbox.considerations.settings_exercise",
           "CONSIDERATIONS_DATABASE": json.dumps(live, default=str), **password_env(pg)}
    async with asyncio.timeout(180):
        run = await connections_under_load(pg, "yours", env=env, concurrent=LOAD, rounds=ROUNDS)
    counted = (f"{run.peak} connections at once, {len(run.backends)} opened for {run.requests} requests, "
               f"{run.after} still open after them, {run.failed} requests failed")
    if pool is None:
        if live.get("CONN_MAX_AGE", 0) != 0:
            raise ExerciseFailed(ex, f"persistent connections pile up: {counted}. Under ASGI each request runs its "
                                     "queries in a thread of its own, so CONN_MAX_AGE never reuses a connection; it "
                                     f"only keeps it open. Set OPTIONS['pool'] to share at most {POOL_LIMIT}, and keep "
                                     "CONN_MAX_AGE at 0")
        raise ExerciseFailed(ex, f"{_no_pool(ex, live)}. PostgreSQL counted {counted}: one connection per request, "
                                 "opened and closed each time")
    if run.peak > POOL_LIMIT:
        raise ExerciseFailed(ex, f"PostgreSQL counted {counted}: more than {POOL_LIMIT} connections per process")
    if run.failed:
        detail = run.errors[-1] if run.errors else "see the server's log"
        raise ExerciseFailed(ex, f"{run.failed} of {run.requests} requests failed ({detail}): requests that find "
                                 "every connection busy should wait their turn")
    if len(run.backends) > POOL_LIMIT:
        raise ExerciseFailed(ex, f"the connections were not reused: {counted}")
    passed(ex, f"{run.requests} requests, {LOAD} at a time: at most {run.peak} connections at once, "
               f"{len(run.backends)} opened in all and reused, none failed (PostgreSQL counted them); the pool waits "
               f"up to {pool.timeout:g} s for a connection")


# --- exercise 4: an async test that tells the right view from broken ones ----------------------------------------

async def open_menu_view(request):
    """Broken: forgets to check the key."""
    return JsonResponse({"menu": MENU})


async def short_menu_view(request):
    """Broken: checks the key, answers the wrong menu."""
    if request.headers.get("X-Api-Key") != API_KEY:
        return JsonResponse({"error": "a valid X-Api-Key header is required"}, status=403)
    return JsonResponse({"menu": MENU[:1]})


async def closed_menu_view(request):
    """Broken: refuses everyone, the key or not."""
    return JsonResponse({"error": "a valid X-Api-Key header is required"}, status=403)


async def unauthorized_menu_view(request):
    """Broken: refuses with 401, not 403."""
    if request.headers.get("X-Api-Key") != API_KEY:
        return JsonResponse({"error": "a valid X-Api-Key header is required"}, status=401)
    return JsonResponse({"menu": MENU})


BROKEN = {"lets anyone in without a key (no 403)": open_menu_view,
          "answers the wrong menu (only espresso)": short_menu_view,
          "refuses everyone, even with the right key": closed_menu_view,
          "refuses with 401 instead of 403 without the key": unauthorized_menu_view}


async def _run_test(ex: str, test, view) -> tuple[BaseException | None, list[str]]:
    """Run the learner's test against `view`, served at /exercise/; what it raised (None: it passed), and the
    coroutines it never awaited."""
    error = None
    async with serving(ex, view) as served:
        try:
            async with asyncio.timeout(10):
                result = await test(AsyncClient())
            reject_coroutine(ex, result, "what your test returned")
        except NotImplementedError:
            raise not_attempted(ex) from None
        except ExerciseFailed:
            raise
        except Exception as exc:  # a failing test: an assertion, or an error in the test
            error = exc
    return error, served.never_awaited


@exercise_check("async-test")
async def async_test(test) -> None:
    """Exercise 'async-test': `test(client)` must pass on `menu_view` and fail on every broken view."""
    ex = "async-test"
    require_async_function(ex, test, "test_menu")
    seen_headers.clear()
    error, dropped = await _run_test(ex, test, menu_view)
    if error is not None:
        text = f"{type(error).__name__}: {error}"
        if dropped or "coroutine" in text:
            shown = f" ({', '.join(sorted(set(dropped)))})" if dropped else ""
            raise ExerciseFailed(ex, f"your test fails against the correct view: a coroutine that was never awaited"
                                     f"{shown}. AsyncClient's methods are coroutines: await each call")
        if "AsyncToSync" in text or "async event loop" in text or "SynchronousOnly" in type(error).__name__:
            raise ExerciseFailed(ex, f"your test fails against the correct view ({text}): the sync Client inside "
                                     "async code. In an async test use the AsyncClient, and await it")
        prefixed = sorted({name for headers in seen_headers for name in headers if name.lower().startswith("http-")})
        if prefixed:
            raise ExerciseFailed(ex, f"your test fails against the correct view: the key arrived as a header named "
                                     f"{prefixed[0]!r}. With AsyncClient, pass headers={{...}} or the header's name as "
                                     "a keyword: no HTTP_ prefix (that is the sync Client's WSGI naming)")
        raise ExerciseFailed(ex, f"your test fails against the correct view: {_raised(error)} The view is right: "
                                 "check what your test expects of it")
    if not seen_headers:
        raise ExerciseFailed(ex, "your test passed without sending a request to /exercise/: test the view")
    missed = [flaw for flaw, view in BROKEN.items() if (await _run_test(ex, test, view))[0] is None]
    if missed:
        raise ExerciseFailed(ex, f"your test passed against broken views, which it should fail on: one that "
                                 f"{'; one that '.join(missed)}. A test that cannot fail there does not test it: "
                                 "assert the exact refusal without the key and the exact menu with it")
    passed(ex, f"your test passes on the correct view and fails on all {len(BROKEN)} broken ones")
