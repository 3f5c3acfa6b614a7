"""Checks for the exercises of chapter 08, key considerations.

Each one runs the learner's code for real: a view sold out by concurrent requests through Django's ASGI handler
(in a thread of its own, so that a lock that blocks the event loop cannot hang the notebook), a request id read
back across a `sync_to_async` hop by overlapping requests, a DATABASES entry that a real uvicorn uses against a
private PostgreSQL while PostgreSQL counts the connections, and a test run against a correct view and broken
ones. The mistake is told apart by what happened: seats sold twice, an id seen by the wrong request or lost in a
worker thread, connections that pile up, a test that passes on a broken view.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import sys
import threading
import time
import warnings

from asgiref.sync import sync_to_async
from django.http import JsonResponse

from sandbox.lab.checks.common import (
    ExerciseFailed,
    not_attempted,
    passed,
    raise_view_errors,
    reject_coroutine,
    require_async_function,
)

# --- exercise 1: sell seats without overselling ----------------------------------------------------------------

SEATS, BUYERS = 10, 15
PAYMENT_SECONDS = 0.02
charges = {"count": 0}


async def charge_card() -> None:
    """The payment provider: a network call. While one request waits here, the event loop runs the others."""
    charges["count"] += 1
    await asyncio.sleep(PAYMENT_SECONDS)


def _record_errors():
    """Collect what views raise (Django turns it into a 500); returns (errors, disconnect)."""
    from django.core.signals import got_request_exception

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


async def sell_seats(make_reserve, deadline: float = 6.0) -> None:
    """Exercise 'seat-lock': `make_reserve(inventory)` returns an async view that sells each seat once."""
    ex = "seat-lock"
    if not callable(make_reserve):
        raise ExerciseFailed(ex, f"make_reserve should be a function, got {type(make_reserve).__name__}")
    inventory = {"left": SEATS}
    view = make_reserve(inventory)  # an untouched stub raises NotImplementedError here: "not attempted"
    require_async_function(ex, view, "the view make_reserve returns")

    from django.core.handlers.asgi import ASGIHandler
    from django.test import override_settings

    from sandbox.lab.checks import exercise_urls
    from sandbox.lab.clients import client

    async def scenario():
        async with client(ASGIHandler(), timeout=deadline) as c:
            return await asyncio.gather(*(c.get("/exercise/") for _ in range(BUYERS)), return_exceptions=True)

    charges["count"] = 0
    exercise_urls.serve(view)
    errors, disconnect = _record_errors()
    overridden = override_settings(ROOT_URLCONF=exercise_urls.__name__)
    overridden.enable()
    outcome: dict = {}
    try:
        thread = _in_own_loop(scenario, outcome)
        stop = time.perf_counter() + deadline
        while thread.is_alive() and time.perf_counter() < stop:
            await asyncio.sleep(0.02)
    finally:
        overridden.disable()  # even when the scenario's loop is stuck for good
        disconnect()
    if thread.is_alive():
        raise ExerciseFailed(ex, f"the {BUYERS} requests had not finished after {deadline:.0f} s: the event loop "
                                 "is blocked. A threading.Lock held across an await blocks the loop's only thread "
                                 "as soon as a second request waits for it (a deadlock); use asyncio.Lock, which "
                                 "waits by awaiting")
    if any(isinstance(e, NotImplementedError) for e in errors):
        raise not_attempted(ex)
    raise_view_errors(ex, errors)
    if "error" in outcome:
        raise ExerciseFailed(ex, f"the requests failed: {type(outcome['error']).__name__}: {outcome['error']}")
    responses = outcome["result"]
    failed = [r for r in responses if isinstance(r, BaseException)]
    if failed:
        raise ExerciseFailed(ex, f"a request failed: {type(failed[0]).__name__}: {failed[0]}")
    sold = sorted((r.json().get("seat") for r in responses if r.status_code == 200), key=str)
    refused = [r for r in responses if r.status_code == 409]
    others = sorted({r.status_code for r in responses} - {200, 409})
    if others:
        raise ExerciseFailed(ex, f"the view answered HTTP {others[0]}: answer 200 with the seat, or 409 when "
                                 "none is left")
    if len(sold) > SEATS or len(set(sold)) < len(sold) or (len(sold) == SEATS and inventory["left"] != 0):
        raise ExerciseFailed(ex, f"lost updates: {len(sold)} buyers got a seat ({sold}) for {SEATS} seats, and "
                                 f"the inventory says {inventory['left']} left. Each request read `left`, awaited "
                                 "the payment, then wrote: during the await the others read the same old value. "
                                 "Keep the read, the await and the write in one critical section, under one "
                                 "asyncio.Lock that every request shares (made once in make_reserve: a lock "
                                 "made inside the view is new for each request and protects nothing)")
    if len(sold) < SEATS or len(refused) != BUYERS - SEATS:
        raise ExerciseFailed(ex, f"{len(sold)} seats sold and {len(refused)} buyers refused: sell all {SEATS} "
                                 f"seats, and answer 409 to the {BUYERS - SEATS} buyers who came too late")
    if charges["count"] != SEATS:
        raise ExerciseFailed(ex, f"check.charge_card() was awaited {charges['count']} times for {SEATS} seats "
                                 "sold: charge once for each seat sold, and never a buyer who gets none")
    passed(ex, f"{BUYERS} buyers at once: {SEATS} seats sold once each, {len(refused)} refused, "
               f"{charges['count']} payments, inventory at 0")


# --- exercise 2: keep a request's id in the request's context ---------------------------------------------------

REQUEST_IDS = ["r0", "r1", "r2", "r3", "r4", "r5"]


def _tagging_view(remember, recall):
    """The view the check serves: stores the id, waits (others run), reads it back here and in a worker thread."""

    async def tagged(request):
        remember(request.GET["id"])
        await asyncio.sleep(float(request.GET["s"]))
        on_loop = recall()
        in_thread = await sync_to_async(recall)()
        return JsonResponse({"id": request.GET["id"], "on_loop": _plain(on_loop), "in_thread": _plain(in_thread)})

    return tagged


def _plain(value):
    if inspect.iscoroutine(value):
        value.close()
        return "<coroutine>"
    return value if value is None or isinstance(value, str | int | float) else repr(value)


async def request_context(make_request_store) -> None:
    """Exercise 'request-context': `make_request_store()` returns (remember, recall), per request."""
    ex = "request-context"
    if not callable(make_request_store):
        raise ExerciseFailed(ex, "make_request_store should be a function")
    store = make_request_store()  # an untouched stub raises NotImplementedError here
    if not (isinstance(store, tuple | list) and len(store) == 2 and all(callable(f) for f in store)):
        raise ExerciseFailed(ex, "make_request_store() should return two functions: (remember, recall)")
    remember, recall = store
    for fn, name in ((remember, "remember"), (recall, "recall")):
        if inspect.iscoroutinefunction(fn):
            raise ExerciseFailed(ex, f"{name} is `async def`, but it is called from sync code too (a library's "
                                     "logger, through sync_to_async): make it a plain function")

    from sandbox.lab.checks.exercise_urls import serving

    n = len(REQUEST_IDS)
    paths = [f"/exercise/?id={rid}&s={0.05 * (n - i):.2f}" for i, rid in enumerate(REQUEST_IDS)]
    async with serving(ex, _tagging_view(remember, recall)) as (c, errors):
        responses = await asyncio.gather(*(c.get(p) for p in paths))
    if errors:
        raise ExerciseFailed(ex, f"the view raised {type(errors[0]).__name__}: {errors[0]}")
    bodies = [r.json() for r in responses]
    for body in bodies:
        if "<coroutine>" in (body["on_loop"], body["in_thread"]):
            raise ExerciseFailed(ex, "recall() returned a coroutine that was never awaited: make it a plain "
                                     "function")
    mixed = [b for b in bodies if b["on_loop"] != b["id"]]
    if mixed:
        b = mixed[0]
        raise ExerciseFailed(ex, f"request {b['id']} read back {b['on_loop']!r} after its await: another "
                                 "request's id. The store is shared by every concurrent request (a global, "
                                 "threading.local on the event loop's one thread, or one mutable object that "
                                 "every context shares, such as a ContextVar's mutable default). Keep the value "
                                 "itself in a contextvars.ContextVar, set per request")
    lost = [b for b in bodies if b["in_thread"] != b["id"]]
    if lost:
        b = lost[0]
        raise ExerciseFailed(ex, f"request {b['id']}: recall() in sync_to_async returned {b['in_thread']!r}. The "
                                 "id was lost in the hop to the worker thread: threading.local (or anything keyed "
                                 "by thread) belongs to one thread. A ContextVar travels with the context, which "
                                 "sync_to_async copies to the thread")
    passed(ex, f"{n} overlapping requests each read back their own id, on the event loop and in a worker thread")


# --- exercise 3: DATABASES for ASGI, with a pool ----------------------------------------------------------------

POOL_LIMIT, LOAD, ROUNDS = 4, 16, 2
_postgres = None


async def _pg():
    """One private PostgreSQL per kernel, started on first use; None when it is not installed (and not in CI)."""
    global _postgres
    from sandbox.lab.postgres import NoPostgres, start_postgres

    if _postgres is None or (not isinstance(_postgres, NoPostgres) and not _postgres.alive()):
        _postgres = await start_postgres(max_connections=20, quiet=True)
    return _postgres or None


def _database_url(port: int) -> str:
    from sandbox.lab.postgres import DATABASE, ROLE
    from sandbox.lab.servers import HOST

    return f"postgresql://{ROLE}@{HOST}:{port}/{DATABASE}"


def _offline_verdict(ex: str, database: dict) -> str:
    """Without PostgreSQL: what Django's own connection handler makes of the entry (no connection is opened)."""
    from django.core.exceptions import ImproperlyConfigured
    from django.db.utils import ConnectionHandler

    alias = f"check_pool_{time.monotonic_ns()}"
    wrapper = ConnectionHandler({"default": {**database}}).create_connection("default")
    wrapper.alias = alias
    try:
        pool = wrapper.pool
    except ImproperlyConfigured as exc:
        advice = " A pool replaces persistent connections: keep CONN_MAX_AGE at 0" if "persistent" in str(exc) else ""
        raise ExerciseFailed(ex, f"Django refuses this entry: ImproperlyConfigured: {exc}{advice}") from None
    finally:
        type(wrapper)._connection_pools.pop(alias, None)
    if pool is None:
        raise ExerciseFailed(ex, "no pool: under ASGI every request opens its own connection, and persistent "
                                 "ones (CONN_MAX_AGE) pile up. Set OPTIONS['pool']")
    if pool.max_size > POOL_LIMIT:
        raise ExerciseFailed(ex, f"the pool may open {pool.max_size} connections: more than {POOL_LIMIT} "
                                 "connections per process. Set its max_size")
    return f"a pool of at most {pool.max_size} connections (checked without PostgreSQL, which is not installed)"


async def pooled_database(asgi_database) -> None:
    """Exercise 'pooled-database': `asgi_database(url)` returns DATABASES["default"] for ASGI."""
    ex = "pooled-database"
    if not callable(asgi_database):
        raise ExerciseFailed(ex, "asgi_database should be a function")
    pg = await _pg()
    url = _database_url(pg.port if pg else 5432)
    database = asgi_database(url)  # an untouched stub raises NotImplementedError here
    reject_coroutine(ex, database, "what asgi_database returned")
    if not isinstance(database, dict) or "ENGINE" not in database:
        raise ExerciseFailed(ex, f"return the settings dict of one database (ENGINE, NAME, ...), got {database!r}")
    if pg is None:
        passed(ex, _offline_verdict(ex, database))
        return

    from sandbox.considerations.measure import connections_under_load

    env = {"DJANGO_SETTINGS_MODULE": "sandbox.considerations.settings_exercise",
           "CONSIDERATIONS_DATABASE": json.dumps(database, default=str)}
    run = await connections_under_load(pg, "yours", env=env, concurrent=LOAD, rounds=ROUNDS)
    if any("Pooling doesn't support persistent connections" in line for line in run.errors):
        raise ExerciseFailed(ex, "every request failed with ImproperlyConfigured: \"Pooling doesn't support "
                                 "persistent connections.\" A pool replaces persistent connections: keep "
                                 "CONN_MAX_AGE at 0 (the pool keeps its connections open itself)")
    if run.peak > POOL_LIMIT:
        pooled = bool((database.get("OPTIONS") or {}).get("pool"))
        if not pooled and database.get("CONN_MAX_AGE", 0) != 0:
            raise ExerciseFailed(ex, f"persistent connections pile up: {run.peak} connections at the peak, "
                                     f"{run.after} still open after the requests, {len(run.backends)} opened for "
                                     f"{run.requests} requests, {run.failed} refused. Under ASGI each request runs "
                                     "its queries in a thread of its own, so CONN_MAX_AGE never reuses a "
                                     "connection; it only keeps it open. Use OPTIONS['pool'] with CONN_MAX_AGE 0")
        if not pooled:
            raise ExerciseFailed(ex, f"no pool: {len(run.backends)} connections opened for {run.requests} requests, "
                                     f"{run.peak} at once: one per request, opened and closed each time. Set "
                                     f"OPTIONS['pool'] to share at most {POOL_LIMIT}")
        raise ExerciseFailed(ex, f"the pool let {run.peak} connections open at once: more than {POOL_LIMIT} "
                                 "connections per process. Size it with max_size")
    if run.failed:
        detail = run.errors[-1] if run.errors else "see the server's log"
        raise ExerciseFailed(ex, f"{run.failed} of {run.requests} requests failed ({detail}): give the pool a "
                                 "timeout long enough for a request to wait its turn for a connection")
    passed(ex, f"{run.requests} requests, {LOAD} at a time: at most {run.peak} connections at once, "
               f"{len(run.backends)} opened in all and reused; PostgreSQL counted them")


# --- exercise 4: an async test that tells the right view from broken ones ----------------------------------------

API_KEY = "letmein"
MENU = ["espresso", "latte"]
seen_headers: list[dict] = []


async def menu_view(request):
    """The view under test, written right: 403 without the key, the menu with it."""
    seen_headers.append(dict(request.headers))
    if request.headers.get("X-Api-Key") != API_KEY:
        return JsonResponse({"error": "a valid X-Api-Key header is required"}, status=403)
    return JsonResponse({"menu": MENU})


async def open_menu_view(request):
    """Broken: forgets to check the key."""
    return JsonResponse({"menu": MENU})


async def short_menu_view(request):
    """Broken: checks the key, answers the wrong menu."""
    if request.headers.get("X-Api-Key") != API_KEY:
        return JsonResponse({"error": "a valid X-Api-Key header is required"}, status=403)
    return JsonResponse({"menu": MENU[:1]})


BROKEN = {"lets anyone in without a key (no 403)": open_menu_view,
          "answers the wrong menu (only espresso)": short_menu_view}


async def _run_test(test, view) -> BaseException | None:
    """Run the learner's test against `view`, served at /exercise/; returns what it raised, or None."""
    from django.test import AsyncClient, override_settings

    from sandbox.lab.checks import exercise_urls

    exercise_urls.serve(view)
    with override_settings(ROOT_URLCONF=exercise_urls.__name__), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "never awaited": the feedback says it
        try:
            async with asyncio.timeout(10):
                result = await test(AsyncClient())
            reject_coroutine("async-test", result, "what your test returned")
        except NotImplementedError:
            raise
        except ExerciseFailed:
            raise
        except Exception as exc:  # a failing test: an assertion, or an error in the test or the view
            return exc
        finally:
            gc.collect()
    return None


async def async_test(test) -> None:
    """Exercise 'async-test': `test(client)` must pass on `menu_view` and fail on every broken view."""
    ex = "async-test"
    require_async_function(ex, test, "your test")
    seen_headers.clear()
    try:
        error = await _run_test(test, menu_view)
    except NotImplementedError:
        raise not_attempted(ex) from None
    if error is not None:
        text = f"{type(error).__name__}: {error}"
        if "coroutine" in text:
            raise ExerciseFailed(ex, f"your test fails against the correct view ({text}): a coroutine that was "
                                     "never awaited. AsyncClient's methods are coroutines: `await client.get(...)`")
        if "AsyncToSync" in text or "async event loop" in text:
            raise ExerciseFailed(ex, f"your test fails against the correct view ({text}): the sync Client inside "
                                     "async code. In an async test use the AsyncClient, and await it")
        prefixed = sorted({name for headers in seen_headers for name in headers if name.lower().startswith("http-")})
        if prefixed:
            raise ExerciseFailed(ex, f"your test fails against the correct view ({text}): the key arrived as a "
                                     f"header named {prefixed[0]!r}. With AsyncClient, pass headers={{...}} or "
                                     "X_API_KEY=...: no HTTP_ prefix (that is the sync Client's WSGI naming)")
        raise ExerciseFailed(ex, f"your test fails against the correct view: {text}")
    for flaw, view in BROKEN.items():
        if await _run_test(test, view) is None:
            raise ExerciseFailed(ex, f"your test passed against a broken view that {flaw}: a test that cannot "
                                     "fail there does not test it. Assert the refusal without the key and the "
                                     "exact menu with it")
    passed(ex, f"your test passes on the correct view and fails on {len(BROKEN)} broken ones")
