"""Checks for the exercises of chapter 03, async views.

Each check runs the learner's code for real, with inputs that are new on every run: a fan-out against the slow
upstream server (names, ids and the deadline drawn at random; every HTTP call recorded with when it started and
ended, and on which thread), a class-based view served by Django's own ASGI handler on catalogue items created for
the run, and an event stream read message by message and parsed as a browser's EventSource parses it. A heartbeat
watches the event loop throughout.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import random
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal

import httpx
from django.core.exceptions import ImproperlyConfigured, SynchronousOnlyOperation
from django.http import StreamingHttpResponse
from django.views import View

from sandbox.checks.common import (
    ExerciseFailed,
    not_attempted,
    passed,
    reject_coroutine,
    require_async_function,
    watch_loop,
)
from sandbox.checks.harness import (
    Requirements,
    exercise_check,
    expect_all_awaited,
    expect_not_blocked,
    expect_status,
    learner_frames,
    learner_object,
    serving,
    upstream,
)

PART_NAMES = ("profile", "orders", "reviews", "recommendations", "wishlist", "cart", "offers", "history",
              "ratings", "stock", "shipping", "coupons", "badges", "friends")
HANG, QUICK, GRACE = 6.0, 0.3, 1.5
MARGIN, LATE = 0.5, 0.5  # the calls that answer just before and just after the deadline: that far from it
DEADLINES = (1.6, 1.7, 1.8, 1.9)  # above 1 s + MARGIN: the lesson's fixed one-second deadline cuts the call kept

REQUIREMENTS = {
    "partial-fan-out": Requirements("aa2b2fa43bb3", (
        ("`fetch_parts(client, urls, timeout)` gets an `httpx.AsyncClient` and a dict `{name: url}`",
         "called with a client of the check's and six URLs on the slow upstream under names drawn for this run, "
         "each with an id drawn for this run; then with `{}`"),
        ("Call every URL at once",
         "every HTTP call is recorded (start, end, thread): each must start before the first one ends; calls "
         "queued on one worker thread are named as such; the event loop never stalls"),
        ("each with its own deadline of `timeout` seconds",
         f"`timeout` is drawn between {DEADLINES[0]} and {DEADLINES[-1]} s: a call answering {MARGIN} s before it "
         f"must be kept (a shorter or fixed deadline cuts it), one answering {LATE} s after it must be None, and one "
         f"that hangs {HANG:.0f} s must be cut off: fetch_parts still waiting {GRACE} s past the deadline has no "
         "deadline; no call may still be running once fetch_parts has returned"),
        ("return `{name: result}`", "a dict with exactly the names of `urls` as keys"),
        ("the result is the JSON body for a call that answered with a success status in time",
         "the two calls that answer in time: exactly the body the upstream sent (its id for this run); not the "
         "response, not its text"),
        ("`None` for a call that failed (an error status such as 503, or any `httpx.HTTPError`)",
         "one URL answers 503 and one 404: both None, and their errors must not escape fetch_parts"),
        ("or missed its deadline", "the late and the hanging call: None, and their TimeoutError must not escape"),
        ("One failure must not lose the other results",
         "an exception (or exception group) escaping fetch_parts fails, named with the call that raised it"),
        (f"The check draws new names and a new `timeout` (between {DEADLINES[0]} and {DEADLINES[-1]} s) on every run",
         f"names from a pool of {len(PART_NAMES)}, shuffled roles, ids for this run; `timeout` one of "
         f"{', '.join(map(str, DEADLINES))} s"),
        ("the whole thing should take about `timeout` seconds",
         "no wall-clock verdict: the mechanisms above (all at once, every call bounded) make it so"),
        ("The check also calls `fetch_parts` with no URLs, and twice at once",
         "`{}` must give `{}`; a second fetch_parts with two other names runs at the same time as the first: "
         "each returns its own names only"),
    )),
    "async-class-view": Requirements("70bbb6732e48", (
        ("Write `ItemView`, a class-based view",
         "a subclass of django.views.View, whose handlers Django accepts (all sync or all async) and finds async"),
        ("served at `<str:name>/` (the check routes it)",
         "served by a fresh ASGIHandler at exercise/<str:name>/, on two items created for this run with a random "
         "name and price"),
        ('`GET`: answer the catalogue item called `name` as JSON, `{"name": ..., "price": "2.50", "in_stock": '
         'true}` (the price as a string)',
         "HTTP 200, Content-Type application/json, exactly those three keys; the price as Django stores it (a "
         "price that ends in 0, so a float's text differs); the two items asked for at the same time, each "
         "answered with its own"),
        ("or HTTP 404 if there is no such item", "GET of a name drawn for this run that no item has: 404"),
        ('`POST` with a JSON body `{"in_stock": false}`: update the item\'s `in_stock` in the database',
         "one item set to false, the other to true (so a fixed value fails): the database holds the new value, "
         "and no other item changed"),
        ("and answer the updated item, like `GET`",
         "HTTP 200, JSON, the item as the database now holds it; a GET after the POST answers the new state too"),
        ("(HTTP 404 if there is no such item)", "POST of a name that no item has: 404, and no such item created"),
        ("A body that is not a JSON object with a boolean `in_stock` changes nothing and gets HTTP 400",
         "a body that is not JSON, one without `in_stock`, and one with the string \"true\": 400 each, the item "
         "unchanged"),
        ("The check creates the items it asks for and deletes them afterwards",
         "two items with new names and prices per run, deleted at the end; any other item a wrong answer changed "
         "is restored"),
        ("Use the async ORM",
         "Django's SynchronousOnlyOperation, a coroutine used as a value, or one never awaited, is named as such"),
    )),
    "sse-stream": Requirements("838def59d22a", (
        ("`countdown`, an async view", "an `async def` function, served by Django's ASGI handler"),
        ("streams `n` server-sent events (`?n=`)",
         "a StreamingHttpResponse over an async iterator (a sync one or a plain HttpResponse is named); n is 3 or "
         "4, and at the same time two more requests with n=1 and n=0 (no events)"),
        ('from `{"left": n - 1}` down to `{"left": 0}` (none at all when `n` is 0)',
         "the events' data, parsed as JSON: exactly those objects in that order (the wrong order, a missing or an "
         "extra event, and data that is not JSON are each named)"),
        ("waiting `every` seconds (`?every=`) between two events",
         "`every` is drawn (0.4 or 0.45 s, above the stub's default of 0.3 s): each event arrives at least "
         "`every` - 0.05 s after the one before"),
        ("Each event is a line `data: <json>` followed by a blank line",
         "the stream is parsed as an EventSource does (line breaks LF, CR or CRLF; `field: value`; a blank line "
         "dispatches the event; an event never ended by a blank line is dropped)"),
        ("the content type is `text/event-stream`", "the response's Content-Type"),
        ("Each event must reach the client as soon as it is made",
         "each event is complete (its blank line included) when its first line arrives, and the events arrive "
         "spread over time, not together at the end"),
        ("the event loop must stay free while the view waits",
         "no stall of the loop longer than 0.25 s; no coroutine left unawaited"),
        ("The check draws `n` and `every` anew on every run", "n is 2 or 3, every 0.4 or 0.45 s, at random"),
    )),
}


# --- exercise 'partial-fan-out' ---------------------------------------------------------------------------------

@dataclass
class Call:
    """One HTTP call seen by httpx's transports: when it started and ended, on which thread, and how it ended."""

    url: str
    thread: str
    start: float
    end: float | None = None
    outcome: str = "running"  # "HTTP 200", "cancelled", or the exception's name


@contextlib.contextmanager
def _recording_http():
    """Every HTTP call any httpx client makes while the block runs (async and sync clients, any thread)."""
    calls: list[Call] = []
    async_send, sync_send = httpx.AsyncHTTPTransport.handle_async_request, httpx.HTTPTransport.handle_request

    def begin(request) -> Call:
        call = Call(str(request.url), threading.current_thread().name, time.perf_counter())
        calls.append(call)
        return call

    def finish(call: Call, outcome: str) -> None:
        call.end, call.outcome = time.perf_counter(), outcome

    async def handle_async_request(self, request):
        call = begin(request)
        try:
            response = await async_send(self, request)
        except asyncio.CancelledError:
            finish(call, "cancelled")
            raise
        except Exception as exc:
            finish(call, type(exc).__name__)
            raise
        finish(call, f"HTTP {response.status_code}")
        return response

    def handle_request(self, request):
        call = begin(request)
        try:
            response = sync_send(self, request)
        except Exception as exc:
            finish(call, type(exc).__name__)
            raise
        finish(call, f"HTTP {response.status_code}")
        return response

    httpx.AsyncHTTPTransport.handle_async_request = handle_async_request
    httpx.HTTPTransport.handle_request = handle_request
    try:
        yield calls
    finally:
        httpx.AsyncHTTPTransport.handle_async_request = async_send
        httpx.HTTPTransport.handle_request = sync_send




@dataclass
class Part:
    name: str
    role: str  # "quick", "within", "503", "404", "late", "hang"
    url: str
    body: dict | None  # what the upstream answers, None for an error status
    seconds: float  # when it answers


@dataclass
class Attempt:
    """One call of the learner's fetch_parts."""

    parts: list[Part]
    result: object = None
    error: BaseException | None = None
    gave_up: bool = False  # still waiting GRACE seconds past the deadline
    elapsed: float = 0.0
    running_after: list[Call] = field(default_factory=list)  # its HTTP calls still running once it had returned
    running_at_error: list[Call] = field(default_factory=list)

    @property
    def urls(self) -> dict[str, str]:
        return {p.name: p.url for p in self.parts}


def _parts(base: str, timeout: float) -> tuple[list[Part], list[Part]]:
    """The six parts of the main call (in random order) and the two of the call that overlaps it."""
    names = random.sample(PART_NAMES, 8)
    ids = random.sample(range(100, 10000), 8)
    within = round(timeout - MARGIN, 2)
    late = round(timeout + LATE, 2)
    main = [
        Part(names[0], "quick", f"{base}/slow?s={QUICK}&i={ids[0]}", {"i": ids[0], "slept": QUICK}, QUICK),
        Part(names[1], "within", f"{base}/slow?s={within}&i={ids[1]}", {"i": ids[1], "slept": within}, within),
        Part(names[2], "503", f"{base}/fail?s=0.1&i={ids[2]}", None, 0.1),
        Part(names[3], "404", f"{base}/gone-{ids[3]}?i={ids[3]}", None, 0.0),
        Part(names[4], "late", f"{base}/slow?s={late}&i={ids[4]}", None, late),
        Part(names[5], "hang", f"{base}/slow?s={HANG}&i={ids[5]}", None, HANG),
    ]
    random.shuffle(main)
    other = [Part(names[k], "quick", f"{base}/slow?s={QUICK}&i={ids[k]}", {"i": ids[k], "slept": QUICK}, QUICK)
             for k in (6, 7)]
    return main, other


async def _attempt(fetch_parts, parts: list[Part], timeout: float, calls: list[Call]) -> Attempt:
    """Call fetch_parts on `parts` with a client of its own; give up GRACE seconds after the deadline."""
    attempt = Attempt(parts)
    mine = set(attempt.urls.values())
    start = time.perf_counter()
    guard = asyncio.timeout(timeout + GRACE)
    async with httpx.AsyncClient(timeout=15) as client:
        try:
            async with guard:
                attempt.result = await fetch_parts(client, attempt.urls, timeout)
        except TimeoutError as exc:
            attempt.gave_up = guard.expired()
            attempt.error = None if attempt.gave_up else exc
        except (Exception, BaseExceptionGroup) as exc:  # noqa: B030 (an ExceptionGroup is an Exception too)
            attempt.error = exc
        attempt.elapsed = time.perf_counter() - start
        if attempt.error is not None:
            attempt.running_at_error = [c for c in calls if c.url in mine and c.end is None]
        await asyncio.sleep(0.1)  # a call cancelled at the very end has ended by now; one left behind has not
        attempt.running_after = [c for c in calls if c.url in mine and c.end is None]
    return attempt


@exercise_check("partial-fan-out")
async def partial_fan_out(fetch_parts) -> None:
    """Exercise 'partial-fan-out': call every URL at once, each with its own deadline; failed or late -> None."""
    ex = "partial-fan-out"
    require_async_function(ex, fetch_parts, "fetch_parts")
    base = (await upstream()).url
    timeout = random.choice(DEADLINES)
    main, other = _parts(base, timeout)
    with _recording_http() as calls:
        async with watch_loop() as watch:
            first, second = await asyncio.gather(_attempt(fetch_parts, main, timeout, calls),
                                                 _attempt(fetch_parts, other, timeout, calls))
        empty = None
        if not any(a.error is not None or a.gave_up for a in (first, second)):
            empty = await _attempt(fetch_parts, [], timeout, calls)
    for attempt in (first, second, empty):
        if attempt is not None and isinstance(attempt.error, NotImplementedError):
            raise not_attempted(ex)
    failure = None  # raised outside the `except` blocks: IPython garbles a traceback whose context is a group
    for attempt in (first, second, empty):
        if attempt is not None and attempt.error is not None:
            failure = _escaped(attempt, calls, timeout)
            break
    if failure:
        raise ExerciseFailed(ex, failure)
    for attempt in (first, second):
        if attempt.gave_up:
            raise ExerciseFailed(ex, _gave_up(attempt, calls, timeout))
    for attempt in (first, second, empty):
        reject_coroutine(ex, list(attempt.result.values()) if isinstance(attempt.result, dict) else attempt.result,
                         "what fetch_parts returned (or a value in it)")
    expect_not_blocked(ex, watch.max_gap, "a sync call (time.sleep, requests, httpx.Client) made on the event "
                                          "loop's thread stops every other task while it waits")
    _expect_at_once(ex, first, calls)
    _expect_nothing_left(ex, first)
    _expect_results(ex, first, calls, timeout)
    _expect_own_results(ex, second, first)
    if empty.result != {}:
        raise ExerciseFailed(ex, f"with no URLs (`{{}}`), fetch_parts should return an empty dict, got "
                                 f"{str(empty.result)[:80]}")
    passed(ex, f"{len(main)} calls in flight at once: 2 bodies, 2 error statuses and 2 calls past the {timeout} s "
               f"deadline (one of them hangs for {HANG:.0f} s) after {first.elapsed:.2f} s; a second call at the same "
               "time got its own results")


def _name_of(attempt: Attempt, url) -> str:
    found = [p.name for p in attempt.parts if p.url == str(url)]
    return f"'{found[0]}'" if found else "a call"


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _escaped(attempt: Attempt, calls: list[Call], timeout: float) -> str:
    """Feedback for an exception that escaped fetch_parts: what raised it, and what that cost."""
    exc = attempt.error
    lost = "so every result of the other calls was lost"
    if isinstance(exc, BaseExceptionGroup):
        kinds = ", ".join(sorted({type(e).__name__ for e in _leaves(exc)}))
        return (f"an ExceptionGroup ({kinds}) escaped from fetch_parts: in a TaskGroup, one failing call cancels "
                f"the other tasks and the group raises every failure together, {lost}. Catch each call's failure "
                "inside its own task and give None for it")
    text = str(exc)
    if not attempt.parts:
        return f"with no URLs (`{{}}`), {_raised('fetch_parts', exc)}: with nothing to call, return an empty dict"
    if isinstance(exc, TypeError) and "awaitable is required" in text:
        return ("asyncio.gather (or wait) was handed finished results instead of awaitables: each call was "
                "awaited before gather saw it, so the calls ran one after another. Give gather the coroutines "
                "themselves, unawaited")
    if re.search(r"coroutine|await wasn't used with future|'_?\w*Future' object", text):
        return (f"fetch_parts failed with {type(exc).__name__}: {text[:100]}. A coroutine or a future was used "
                "as a value: a missing `await` (before asyncio.gather, or before a call)")
    still = len(attempt.running_at_error)
    running = (f" {still} other call(s) were still running when it escaped: asyncio.gather passes on the first "
               "error it sees unless it is given return_exceptions=True") if still else ""
    if isinstance(exc, httpx.HTTPStatusError):
        return (f"{_name_of(attempt, exc.request.url)} answered HTTP {exc.response.status_code} and its "
                f"HTTPStatusError escaped from fetch_parts, {lost}: a call that fails gives None for its "
                f"name.{running}")
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        cut = [c for c in calls if c.url in attempt.urls.values() and c.outcome != "running"
               and not c.outcome.startswith("HTTP")]
        names = ", ".join(_name_of(attempt, c.url) for c in cut) or "a call"
        return (f"a {type(exc).__name__} escaped from fetch_parts after {attempt.elapsed:.2f} s: the deadline cut "
                f"off {names}, but its timeout ended fetch_parts too, {lost}. A call that misses its deadline "
                f"gives None for its name.{running}")
    if isinstance(exc, httpx.HTTPError):
        return (f"{type(exc).__name__} ({text[:80]}) escaped from fetch_parts, {lost}: any httpx.HTTPError gives "
                f"None for the call that raised it.{running}")
    return _raised("fetch_parts", exc)


def _raised(what: str, exc: BaseException) -> str:
    """An exception from the learner's code, explained: what raised, where (the function and line, never the
    code itself)."""
    frames = learner_frames(exc)
    where = f" in {frames[-1].name}() (line {frames[-1].lineno} of your cell)" if frames else ""
    text = str(exc)[:120].rstrip(".")
    detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return f"{what} raised {detail}{where}"


def _gave_up(attempt: Attempt, calls: list[Call], timeout: float) -> str:
    now = time.perf_counter()
    mine = [c for c in calls if c.url in attempt.urls.values()]
    hang = next(p for p in attempt.parts if p.role == "hang")
    hanging = [c for c in mine if c.url == hang.url and (c.end or now) - c.start > timeout + 1]
    if hanging:
        ran = (hanging[0].end or now) - hanging[0].start
        return (f"fetch_parts was still waiting {attempt.elapsed:.1f} s after it started, though `timeout` was "
                f"{timeout} s: '{hang.name}' (which hangs for {HANG:.0f} s) had been running for {ran:.1f} s. Each "
                "call needs a deadline of `timeout` seconds (no deadline, or a longer one, keeps the whole fan-out "
                "waiting)")
    if not _all_at_once(mine, len(attempt.parts)):
        return f"fetch_parts was still waiting {attempt.elapsed:.1f} s after it started: " + _one_after_another(mine)
    return (f"fetch_parts was still waiting {attempt.elapsed:.1f} s after it started, {timeout} s being the deadline, "
            "with no HTTP call of its own still running: it awaits something that never comes")


def _all_at_once(mine: list[Call], expected: int) -> bool:
    """Did every call start before the first one ended?"""
    ends = [c.end for c in mine if c.end is not None]
    return len({c.url for c in mine}) >= expected and (not ends or max(c.start for c in mine) < min(ends))


def _expect_at_once(ex: str, attempt: Attempt, calls: list[Call]) -> None:
    mine = [c for c in calls if c.url in attempt.urls.values()]
    called = {c.url for c in mine}
    never = [p.name for p in attempt.parts if p.url not in called]
    if never:
        raise ExerciseFailed(ex, f"fetch_parts never called the URL of {', '.join(map(repr, never))}: call every "
                                 "URL in `urls`")
    if not _all_at_once(mine, len(attempt.parts)):
        raise ExerciseFailed(ex, _one_after_another(mine))


def _one_after_another(mine: list[Call]) -> str:
    """What the recorded calls show when they did not all run at once: on which thread they queued."""
    peak = max((sum(1 for o in mine if o.start <= c.start and (o.end is None or o.end > c.start)) for c in mine),
               default=0)
    threads = {c.thread for c in mine}
    if threads and threads != {threading.main_thread().name} and len(threads) == 1:
        return (f"the calls ran one after another (at most {peak} at once), all on one worker thread "
                f"({threads.pop()}): sync_to_async runs a function on one shared thread (thread_sensitive, its "
                "default), so the calls queue up there even when they are gathered. Make the calls with the "
                "AsyncClient you are given, and await them")
    return (f"the calls ran one after another (at most {peak} in flight at once): each call started only when an "
            "earlier one had ended. Start every call before you wait for any of them")


def _expect_nothing_left(ex: str, attempt: Attempt) -> None:
    if attempt.running_after:
        names = ", ".join(_name_of(attempt, c.url) for c in attempt.running_after)
        where = (" in a worker thread, which nothing can cancel: make the calls with the AsyncClient you are given"
                 if any(c.thread != threading.main_thread().name for c in attempt.running_after) else
                 ": a call that misses its deadline must be cancelled (a timeout around the call does that), "
                 "not left behind")
        verb = "was" if len(attempt.running_after) == 1 else "were"
        raise ExerciseFailed(ex, f"{names} {verb} still running after fetch_parts had returned{where}")


def _expect_results(ex: str, attempt: Attempt, calls: list[Call], timeout: float) -> None:
    result, urls = attempt.result, attempt.urls
    if not isinstance(result, dict):
        raise ExerciseFailed(ex, f"return a dict {{name: result}}, got a {type(result).__name__}: "
                                 f"{str(result)[:100]}")
    if set(result) != set(urls):
        if set(map(str, result)) == set(urls.values()):
            raise ExerciseFailed(ex, "the dict's keys are the URLs: key each result by its name in `urls`")
        raise ExerciseFailed(ex, f"the dict's keys should be exactly the names in `urls` ({', '.join(urls)}), got "
                                 f"{', '.join(map(str, result)) or 'none'}")
    order = ("quick", "within", "503", "404", "late", "hang")
    for part in sorted(attempt.parts, key=lambda p: order.index(p.role)):
        got = result[part.name]
        call = next((c for c in calls if c.url == part.url), None)
        if part.body is not None:
            _expect_body(ex, part, got, call, timeout)
        elif got is not None:
            if part.role in ("503", "404"):
                raise ExerciseFailed(ex, f"'{part.name}' answered HTTP {part.role}, an error status, so it failed: "
                                         f"its entry should be None, got {str(got)[:80]}. Every error status "
                                         "counts, 4xx as well as 5xx")
            raise ExerciseFailed(ex, f"'{part.name}' answered after {part.seconds} s, past its {timeout} s "
                                     f"deadline: its entry should be None, got {str(got)[:80]}. Its deadline "
                                     "must be `timeout` seconds")


def _expect_body(ex: str, part: Part, got, call: Call | None, timeout: float) -> None:
    if got == part.body:
        return
    if isinstance(got, httpx.Response):
        raise ExerciseFailed(ex, f"the entry for '{part.name}' is an httpx Response: give its JSON body instead")
    if isinstance(got, str | bytes):
        raise ExerciseFailed(ex, f"the entry for '{part.name}' is the body's text ({str(got)[:60]}): parse it as "
                                 "JSON")
    if got is None and call is not None and call.end is not None:
        took = call.end - call.start
        if call.outcome.startswith("HTTP"):
            raise ExerciseFailed(ex, f"'{part.name}' answered {call.outcome} after {took:.2f} s, inside its "
                                     f"{timeout} s deadline, but its entry is None: a call that answers in time "
                                     "with a success status keeps its JSON body")
        raise ExerciseFailed(ex, f"'{part.name}' was cut off after {took:.2f} s ({call.outcome}), before its "
                                 f"deadline of {timeout} s: each call's deadline is the `timeout` argument")
    raise ExerciseFailed(ex, f"the entry for '{part.name}' should be the JSON body its URL answered, "
                             f"{part.body}, got {str(got)[:80]}")


def _expect_own_results(ex: str, attempt: Attempt, other: Attempt) -> None:
    result = attempt.result
    expected = {p.name: p.body for p in attempt.parts}
    if result == expected:
        return
    if isinstance(result, dict) and set(result) & set(other.urls):
        raise ExerciseFailed(ex, "two calls of fetch_parts ran at the same time, and one returned names of the "
                                 "other's `urls`: the results are kept somewhere both calls share. Build each "
                                 "call's dict inside the call")
    raise ExerciseFailed(ex, f"a second call of fetch_parts, at the same time, with {expected} to fetch, returned "
                             f"{str(result)[:100]}")


# --- exercise 'async-class-view' --------------------------------------------------------------------------------

ANSWER_WITHIN = 10  # seconds
DRINKS = ("Cortado", "Lungo", "Ristretto", "Macchiato", "Affogato", "Chai", "Matcha", "Mocha", "Doppio", "Gibraltar")


@dataclass
class Answer:
    """One request to the learner's view: what it answered, what the view raised meanwhile, and the database's
    in_stock column right after."""

    label: str
    status: int
    content_type: str
    body: bytes
    errors: list[BaseException]
    stock: dict[int, bool]

    def json(self):
        try:
            return json.loads(self.body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None


async def _stock() -> dict[int, bool]:
    from sandbox.catalog.models import Item

    return {pk: in_stock async for pk, in_stock in Item.objects.values_list("pk", "in_stock")}


async def _ask(ex: str, served, label: str, method: str, name: str, body: bytes | None = None) -> Answer:
    seen = len(served.errors)
    try:
        response = await served.client.request(method, f"/exercise/{name}/", content=body,
                                                headers={"content-type": "application/json"} if body else None)
    except TimeoutError:
        raise ExerciseFailed(ex, f"{label} got no answer within {ANSWER_WITHIN:.0f} s: the view awaits something "
                                 "that never comes") from None
    async with asyncio.timeout(10):
        stock = await _stock()
    return Answer(label, response.status_code, response.headers.get("content-type", "").split(";")[0].strip(),
                  response.content, served.errors[seen:], stock)


@exercise_check("async-class-view")
async def async_class_view(name: str = "ItemView") -> None:
    """Exercise 'async-class-view': an async class-based view that reads and updates a catalogue item."""
    from sandbox.catalog.models import Category, Item

    ex = "async-class-view"
    cls = learner_object(ex, name)
    if not (isinstance(cls, type) and issubclass(cls, View)):
        raise ExerciseFailed(ex, f"{name} should be a class that subclasses django.views.View, got {cls!r}")
    try:
        view = cls.as_view()
    except ImproperlyConfigured as exc:
        raise ExerciseFailed(ex, f"Django refused the class: {str(exc).rstrip('.')}. A class-based view's handlers "
                                 "are all sync or all async; with an `async def get`, write `async def post` "
                                 "too") from None
    if not cls.view_is_async:
        raise ExerciseFailed(ex, "the handlers are sync (`def get`): Django runs a sync view in a worker thread, "
                                 "so nothing in it can await. Write them as `async def get` and `async def post`")

    drinks = random.sample(DRINKS, 3)
    a_name, b_name, missing = (f"{d}-{secrets.token_hex(3)}" for d in drinks)
    async with asyncio.timeout(10):
        category = await Category.objects.afirst() or await Category.objects.acreate(name="checks")
    prices = [Decimal(random.randint(50, 2000) * 10) / 100 for _ in range(2)]  # cents end in 0: "12.30"
    async with asyncio.timeout(10):
        a = await Item.objects.acreate(name=a_name, price=prices[0], in_stock=True, category=category)
        b = await Item.objects.acreate(name=b_name, price=prices[1], in_stock=False, category=category)
        before = await _stock()
    try:
        async with serving(ex, routes={"exercise/<str:name>/": view}, timeout=ANSWER_WITHIN) as served:
            get_a, get_b = await asyncio.gather(_ask(ex, served, f"GET {a_name}", "GET", a_name),
                                                _ask(ex, served, f"GET {b_name}", "GET", b_name))
            steps = [get_a, get_b, await _ask(ex, served, "GET of a name no item has", "GET", missing)]
            steps.append(await _ask(ex, served, 'POST {"in_stock": false}', "POST", a_name, b'{"in_stock": false}'))
            steps.append(await _ask(ex, served, 'POST {"in_stock": true}', "POST", b_name, b'{"in_stock": true}'))
            steps.append(await _ask(ex, served, "GET after the POST", "GET", a_name))
            steps.append(await _ask(ex, served, "POST for a name no item has", "POST", missing, b'{"in_stock": false}'))
            for label, body in (("POST with a body that is not JSON", b"in_stock=true"),
                                ('POST without "in_stock"', b'{"stock": true}'),
                                ('POST with "in_stock": "true" (a string, not a boolean)', b'{"in_stock": "true"}')):
                steps.append(await _ask(ex, served, label, "POST", a_name, body))
            async with asyncio.timeout(10):
                created = await Item.objects.filter(name=missing).aexists()
    finally:
        async with asyncio.timeout(10):  # the check restores the catalogue, whatever the view did to it
            await Item.objects.filter(name__in=[a_name, b_name, missing]).adelete()
            now = await _stock()
            for pk, in_stock in before.items():
                if now.get(pk, in_stock) != in_stock:
                    await Item.objects.filter(pk=pk).aupdate(in_stock=in_stock)
    _async_mistakes(ex, served)
    item = {a.pk: {"name": a_name, "price": f"{prices[0]:.2f}", "in_stock": True},
            b.pk: {"name": b_name, "price": f"{prices[1]:.2f}", "in_stock": False}}
    stock = before
    get_a, get_b, get_missing, post_a, post_b, get_after, post_missing, *bad = steps
    _expect_item(ex, get_a, item[a.pk], other=item[b.pk])
    _expect_item(ex, get_b, item[b.pk], other=item[a.pk])
    _expect_status(ex, get_missing, 404, "a name that no item has")
    _expect_update(ex, post_a, stock, a.pk, False, item)
    _expect_update(ex, post_b, post_a.stock, b.pk, True, item)
    _expect_item(ex, get_after, {**item[a.pk], "in_stock": False}, after_post=True)
    _expect_status(ex, post_missing, 404, "a name that no item has")
    if created:
        raise ExerciseFailed(ex, "a POST for a name that no item has created that item: answer 404 and create "
                                 "nothing")
    stock = get_after.stock
    for step in bad:
        _expect_status(ex, step, 400, 'a body that is not a JSON object with a boolean "in_stock"')
        if step.stock != stock:
            raise ExerciseFailed(ex, f"{step.label} changed the database: a bad body must change nothing")
    passed(ex, f"{name} is async: GET answered two new items at once, 404 for a missing one; POST set in_stock "
               "false on one and true on the other, and only there; every bad body got 400 and changed nothing")


def _async_mistakes(ex: str, served) -> None:
    """The async mistakes a view makes, whichever request showed them."""
    for exc in served.errors:
        if isinstance(exc, SynchronousOnlyOperation):
            raise ExerciseFailed(ex, "the sync ORM was called on the event loop's thread (SynchronousOnlyOperation): "
                                     "in an async handler use the ORM's async methods (aget, aupdate, asave), "
                                     "and await them")
        if "coroutine" in str(exc):
            raise ExerciseFailed(ex, f"the view failed with {type(exc).__name__}: {exc}. A coroutine was used as a "
                                     "value: a missing `await` before an async ORM call")
    expect_all_awaited(ex, served.never_awaited, "an async ORM call without `await` only creates the coroutine; the "
                                                 "query never runs")


def _expect_status(ex: str, step: Answer, status: int, what: str) -> None:
    if step.status == status:
        return
    cause = f": {_raised('the view', step.errors[0])}" if step.errors else ""
    raise ExerciseFailed(ex, f"{step.label} answered HTTP {step.status}{cause}; {what} must get HTTP {status}")


def _expect_json(ex: str, step: Answer, what: str):
    _expect_status(ex, step, 200, what)
    if step.content_type != "application/json":
        raise ExerciseFailed(ex, f"{step.label} answered with Content-Type {step.content_type or '(none)'!r}, "
                                 "expected 'application/json': JSON text in an HttpResponse is still labelled "
                                 "text/html; JsonResponse sets the content type")
    body = step.json()
    if body is None:
        raise ExerciseFailed(ex, f"{step.label} said application/json but its body is not JSON: {step.body[:80]!r}")
    return body


def _expect_item(ex: str, step: Answer, expected: dict, *, other: dict | None = None,
                 after_post: bool = False) -> None:
    body = _expect_json(ex, step, "an item that exists")
    if body == expected:
        return
    if not isinstance(body, dict):
        raise ExerciseFailed(ex, f"{step.label} should answer a JSON object, got {str(body)[:80]}")
    if other is not None and body == other:
        raise ExerciseFailed(ex, f"{step.label} answered the other item, {other['name']}, which was asked for at "
                                 "the same time: state kept on the class is shared by every request")
    if set(body) != set(expected):
        raise ExerciseFailed(ex, f"{step.label} answered the keys {sorted(body)}, expected exactly "
                                 f"{sorted(expected)}")
    if body["price"] != expected["price"]:
        kind = "a string" if isinstance(body["price"], str) else f"a {type(body['price']).__name__}"
        raise ExerciseFailed(ex, f"{step.label} answered the price {body['price']!r} ({kind}), expected the string "
                                 f"{expected['price']!r}: the price as Django stores it, two decimals, as text (a "
                                 "float drops the trailing zero)")
    if after_post and body.get("in_stock") != expected["in_stock"]:
        raise ExerciseFailed(ex, f"{step.label} answered in_stock {json.dumps(body.get('in_stock'))}, the state "
                                 "before the POST: an answer kept from an earlier request is stale. Read the item "
                                 "from the database on every request")
    raise ExerciseFailed(ex, f"{step.label} should answer {json.dumps(expected)}, got "
                             f"{step.body[:120].decode(errors='replace')}")


def _expect_update(ex: str, step: Answer, before: dict, pk: int, value: bool, item: dict) -> None:
    _expect_status(ex, step, 200, "a POST with a good body to an item that exists")
    if step.stock.get(pk) != value:
        raise ExerciseFailed(ex, f"{step.label} left in_stock {json.dumps(step.stock.get(pk))} in the database: "
                                 f"the update must store the value the body sends ({json.dumps(value)})")
    changed = [k for k, v in step.stock.items() if k != pk and before.get(k) != v]
    if changed:
        raise ExerciseFailed(ex, f"{step.label} also changed {len(changed)} other item(s) in the database: update "
                                 "only the item named in the URL")
    body = _expect_json(ex, step, "a POST with a good body to an item that exists")
    expected = {**item[pk], "in_stock": value}
    if isinstance(body, dict) and body.get("in_stock") == (not value) and set(body) == set(expected):
        raise ExerciseFailed(ex, f"{step.label} answered in_stock {json.dumps(not value)}, but the database now "
                                 f"holds {json.dumps(value)}: answer the item as it is after the update")
    if body != expected:
        raise ExerciseFailed(ex, f"{step.label} should answer the updated item, {json.dumps(expected)}, got "
                                 f"{step.body[:120].decode(errors='replace')}")


# --- exercise 'sse-stream' --------------------------------------------------------------------------------------

SLACK = 0.05  # an event may arrive this much sooner than `every` after the one before (timer resolution)
TOGETHER = 0.25  # events all closer than this arrived in one burst: made first, sent at the end


@dataclass
class Event:
    """One event as an EventSource dispatches it: its data, when its first line arrived, when its blank line did."""

    data: str
    started: float
    dispatched: float


@dataclass
class Parsed:
    events: list[Event]
    unended: str | None  # the data of an event that no blank line ended: an EventSource drops it


def _event_source(chunks: list[tuple[float, bytes, bool]]) -> Parsed:
    """Parse a text/event-stream body as the HTML standard's EventSource does ("Interpreting an event stream"):
    lines end with CRLF, LF or CR; a line starting with a colon is a comment; `field: value` (one leading space of
    the value dropped); a blank line dispatches the event when it has data; an unended event is dropped."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    state = {"data": [], "started": None}
    events: list[Event] = []

    def line(text: str, seconds: float) -> None:
        if not text:
            if state["data"]:
                events.append(Event("\n".join(state["data"]), state["started"], seconds))
            state.update(data=[], started=None)
        elif not text.startswith(":"):
            name, _, value = text.partition(":")
            state["started"] = seconds if state["started"] is None else state["started"]
            if name == "data":
                state["data"].append(value[1:] if value.startswith(" ") else value)

    pending, seconds = "", 0.0
    for seconds, body, _ in chunks:
        pending += decoder.decode(body)
        # a CR at the very end may be the first half of a CRLF that the next chunk completes
        while (m := re.search(r"\r\n|\r|\n", pending)) and not (m.group() == "\r" and m.end() == len(pending)):
            line(pending[:m.start()], seconds)
            pending = pending[m.end():]
    if pending.endswith("\r"):
        line(pending[:-1], seconds)
        pending = ""
    if pending:  # a last line with no line break: it never ends, but what it holds tells the learner why
        line(pending, seconds)
    return Parsed(events, "\n".join(state["data"]) if state["data"] else None)


@exercise_check("sse-stream")
async def sse_stream(countdown) -> None:
    """Exercise 'sse-stream': a countdown as server-sent events, each sent as soon as it is made."""
    ex = "sse-stream"
    require_async_function(ex, countdown, "countdown")
    responses = []

    async def observed(request):
        response = await countdown(request)
        responses.append((request.GET.get("n"), response))
        return response

    n, every = random.choice((2, 3)), random.choice((0.4, 0.45))
    runs = {n: f"/exercise/?n={n}&every={every}", 1: f"/exercise/?n=1&every={every}",
            0: f"/exercise/?n=0&every={every}"}
    async with serving(ex, observed) as served:
        answers = dict(zip(runs, await asyncio.gather(
            *(served.exchange("GET", path, timeout=n * every + 10) for path in runs.values()),
            return_exceptions=True), strict=True))
    for exc in served.errors:
        if "coroutine" in str(exc):
            raise ExerciseFailed(ex, f"the view failed with {type(exc).__name__}: {exc}. A coroutine was used as a "
                                     "value: an `await` is missing")
    if served.errors:
        raise ExerciseFailed(ex, _raised("the view", served.errors[0]))
    for count, answer in answers.items():
        if isinstance(answer, TimeoutError):
            if str(count) not in {asked for asked, _ in responses}:
                raise ExerciseFailed(ex, f"with ?n={count} the view had not returned a response after "
                                         f"{n * every + 10:.0f} s: it awaits something that never comes")
            raise ExerciseFailed(ex, f"with ?n={count} the stream had not ended after {n * every + 10:.0f} s: the "
                                     "countdown must stop after the event {\"left\": 0}")
        if isinstance(answer, BaseException):
            raise answer
    for _, response in responses:
        if not getattr(response, "streaming", False):
            raise ExerciseFailed(ex, f"the events were not streamed: the view returned {type(response).__name__}, "
                                     "not a streaming response, and that is sent in one piece once it is complete. "
                                     "Return a "
                                     "StreamingHttpResponse over an async generator that yields each event")
        if isinstance(response, StreamingHttpResponse) and not response.is_async:
            raise ExerciseFailed(ex, "the stream is a sync iterator (a `def` generator, or a list): under ASGI, "
                                     "Django consumes all of it in a thread first and then sends it in one go. "
                                     "Write an async generator (`async def` with `yield`), and wait the async way")
    expect_not_blocked(ex, served.max_gap, "time.sleep inside the async generator stops every other request "
                                           "between events; wait the async way")
    expect_all_awaited(ex, served.never_awaited, "a missing `await`, so the generator never waited between events")
    main = answers[n]
    for count, answer in answers.items():
        _expect_stream(ex, count, every, answer)
    spread = _expect_timing(ex, _event_source(main.chunks).events, every)
    passed(ex, f"{n} events parsed as an EventSource parses them, each complete as it arrived, at least {every} s "
               f"apart ({spread:.2f} s in all); n=1 and n=0 at the same time; the loop never stalled")


def _expect_stream(ex: str, n: int, every: float, answer) -> None:
    what = f"GET ?n={n}&every={every}"
    expect_status(ex, answer.status, 200, what)
    if answer.content_type != "text/event-stream":
        raise ExerciseFailed(ex, f"{what} answered with Content-Type {answer.content_type or '(none)'!r}: "
                                 "server-sent events must be labelled 'text/event-stream', or an EventSource "
                                 "refuses the stream")
    parsed = _event_source(answer.chunks)
    if parsed.unended is not None and not parsed.events and "\n" in parsed.unended:
        raise ExerciseFailed(ex, f"{what}: an EventSource found no blank line after any of the "
                                 f"{parsed.unended.count(chr(10)) + 1} `data:` lines, so they ran together into one "
                                 "event that never ended, and it dispatched nothing: end each event with an empty "
                                 "line")
    if parsed.unended is not None:
        raise ExerciseFailed(ex, f"{what}: the last event ({parsed.unended[:40]!r}) was never ended by a blank line, "
                                 "so an EventSource drops it: each event is its `data:` line and then an empty "
                                 "line, the empty line after the event, not before it")
    values = []
    for event in parsed.events:
        try:
            values.append(json.loads(event.data))
        except json.JSONDecodeError:
            lines = event.data.split("\n")
            if len(lines) > 1:
                raise ExerciseFailed(ex, f"{what}: an EventSource saw one event with {len(lines)} data lines "
                                         f"({event.data[:60]!r}): the events were not separated by a blank line, so "
                                         "they ran together. End each event with an empty line") from None
            hint = " (single quotes: a Python dict's text, not JSON)" if "'" in event.data else ""
            raise ExerciseFailed(ex, f"{what}: an event's data is not JSON: {event.data[:60]!r}{hint}") from None
    expected = [{"left": k} for k in range(n - 1, -1, -1)]
    if values == expected:
        return
    if sorted(map(str, values)) == sorted(map(str, expected)):
        raise ExerciseFailed(ex, f"{what}: the events came in the wrong order, {values}: a countdown goes from "
                                 f"{expected[0]} down to {expected[-1]}")
    raise ExerciseFailed(ex, f"{what}: expected the {n} event(s) {expected}, got {len(values)}: {str(values)[:120]}")


def _expect_timing(ex: str, events: list[Event], every: float) -> float:
    for k, event in enumerate(events):
        if event.dispatched - event.started > every / 2:
            raise ExerciseFailed(ex, f"event {k + 1} was complete only {event.dispatched - event.started:.2f} s "
                                     "after its data arrived: an event reaches the page when its blank line does, so "
                                     "send the blank line together with the event's data")
    gaps = [later.dispatched - earlier.dispatched for earlier, later in zip(events, events[1:], strict=False)]
    if gaps and max(gaps) < TOGETHER:
        raise ExerciseFailed(ex, f"all {len(events)} events arrived together, within "
                                 f"{events[-1].dispatched - events[0].dispatched:.2f} s: they were made first and sent "
                                 "at the end. Yield each event as soon as it is made, and wait between them")
    short = [g for g in gaps if g < every - SLACK]
    if short:
        raise ExerciseFailed(ex, f"two events arrived only {min(short):.2f} s apart, with ?every={every}: wait "
                                 "`every` seconds (the query's value) between two events")
    return events[-1].dispatched - events[0].dispatched
