"""Checks for the exercises of chapter 01, sync vs async.

Each one runs the learner's code against real I/O (the slow upstream server, Django's ASGI handler) while a
heartbeat watches the event loop, so a blocking call, a missing `await` or calls made one after another are told
apart by what happened, not by reading the code. The inputs are new on every run (ids, delays, report numbers), so
an answer copied from an earlier output cannot pass.
"""

from __future__ import annotations

import asyncio
import random
import time

import httpx

from sandbox.checks.common import BLOCKED, ExerciseFailed, passed, require_async_function, watch_loop

# the chapter's givens, re-exported: the notebook calls `check.legacy_report`
from sandbox.checks.givens.sync_vs_async import LEGACY_SECONDS, legacy_report, legacy_threads  # noqa: F401
from sandbox.checks.harness import (
    Requirements,
    call,
    exercise_check,
    expect_all_awaited,
    expect_json,
    expect_not_blocked,
    expect_status,
    serving,
    upstream,
)
from sandbox.lab.trace import InFlight

REQUIREMENTS = {
    "fan-out": Requirements("11ba1cf17cc8", (
        ("`fetch_all(client, urls)` gets an `httpx.AsyncClient` and a list of URLs",
         "called with a client of the check's and 4 to 7 new URLs on the slow upstream, then with no URLs at all"),
        ("Return the JSON bodies as a list",
         "the result must be a list of the bodies the upstream sent: each holds an id drawn at random for this run"),
        ("in the order of `urls`",
         "the first URL is the slowest and the last the quickest, so the order calls finish in is the reverse"),
        ("with all calls in flight at once: five calls should take about as long as one",
         "the upstream counts the calls it serves at once: all of them; and the event loop never stalls"),
    )),
    "non-blocking-view": Requirements("5be53179b0a3", (
        ("Write `slow_hello`, an async view", "an `async def` function, served by Django's ASGI handler"),
        ("that waits 0.5 s", "every answer comes at least 0.45 s after its request"),
        ('answers `{"hello": "world"}` as JSON',
         "HTTP 200, Content-Type application/json, and exactly that object"),
        ("Five requests at once must all finish after about 0.5 s, and the event loop must stay free while they wait",
         "five requests at once: all five inside the view at the same moment, and no stall of the loop"),
    )),
    "offload-blocking": Requirements("b649d9ce4af8", (
        ("Complete `report_view` so that it returns `{\"report\": legacy_report(n)}` for `?n=...`",
         "four requests at once, each with its own random n: each answer must be that request's report"),
        ("without running `legacy_report` on the event loop's thread",
         "legacy_report records the thread it runs on: never the loop's; and the loop never stalls"),
    )),
    "capped-fan-out": Requirements("6bd183ad8a29", (
        ("`fetch_politely(client, urls, limit, deadline)`: fetch every URL with `client`",
         "called with a limit of 2 or 4 drawn for the run and 5 to 8 new URLs; the check's client counts every call "
         "that goes through it"),
        ("never more than `limit` calls in flight at once but up to `limit` at a time",
         "the client counts the calls in flight at each moment: the peak must be exactly `limit`"),
        ("each call at most `deadline` seconds from when it starts (waiting for a free slot does not count)",
         "the first `limit` URLs take 1.2 s and hold every slot past the deadline (0.3-0.4 s): the quick ones "
         "queued behind them must still come back with their bodies"),
        ("A call that misses its deadline gives `None` in its place",
         "None for each slow URL; a TimeoutError that escapes fetch_politely fails"),
        ("Return the JSON bodies (or `None`) in the order of `urls`",
         "each body holds an id drawn at random for this run, compared position by position"),
    )),
}


# --- exercise 'fan-out' ---------------------------------------------------------------------------------------

@exercise_check("fan-out")
async def fan_out(fetch_all) -> None:
    """`fetch_all(client, urls)` must fetch every URL at once and return the bodies in the order of `urls`."""
    ex = "fan-out"
    require_async_function(ex, fetch_all, "fetch_all")
    base = (await upstream()).url
    n = random.randint(4, 7)
    ids = random.sample(range(100, 1000), n)
    delays = [round(0.25 + 0.1 * (n - k), 2) for k in range(n)]  # the first is the slowest: it finishes last
    urls = [f"{base}/slow?s={s}&i={i}" for s, i in zip(delays, ids, strict=True)]
    async with httpx.AsyncClient(timeout=10) as client:
        await client.get(f"{base}/reset")
        start = time.perf_counter()
        async with watch_loop() as watch:
            result = await call(ex, fetch_all, client, urls, what="fetch_all", timeout=30)
        elapsed = time.perf_counter() - start
        stats = (await client.get(f"{base}/stats")).json()
        empty = await call(ex, fetch_all, client, [], what="fetch_all with no URLs", timeout=10)
    expect_not_blocked(ex, watch.max_gap, "a sync call (time.sleep, requests, httpx.Client) inside async code stops "
                                          "every other task")
    if stats["max_in_flight"] < n:
        raise ExerciseFailed(ex, f"the calls ran one after another (at most {stats['max_in_flight']} of {n} in "
                                 f"flight at once, {elapsed:.2f} s in all): start them all before you wait for any")
    expected = [{"i": i, "slept": s} for s, i in zip(delays, ids, strict=True)]
    _expect_bodies(ex, result, expected)
    if empty != []:
        raise ExerciseFailed(ex, f"with no URLs, fetch_all should return an empty list, got {str(empty)[:80]}")
    passed(ex, f"{n} calls of up to {max(delays)} s took {elapsed:.2f} s together, all {n} in flight at once, "
               "the bodies in the order of the URLs")


def _expect_bodies(ex: str, result, expected: list[dict]) -> None:
    if not isinstance(result, list):
        raise ExerciseFailed(ex, f"return a list of the JSON bodies, got a {type(result).__name__}")
    if any(isinstance(r, httpx.Response) for r in result):
        raise ExerciseFailed(ex, "the list holds httpx Response objects: return each response's JSON body")
    if len(result) != len(expected) or any(not isinstance(r, dict) for r in result):
        raise ExerciseFailed(ex, f"return one JSON body per URL ({len(expected)}), got {str(result)[:120]}")
    if sorted(map(str, result)) == sorted(map(str, expected)) and result != expected:
        raise ExerciseFailed(ex, "the bodies are all there but not in the order of `urls` (the first URL was the "
                                 "slowest: the order the calls finished in is not the order asked for)")
    if result != expected:
        raise ExerciseFailed(ex, f"these are not the bodies the upstream sent for these URLs: got {result[:2]}..., "
                                 f"expected {expected[:2]}...")


# --- exercise 'non-blocking-view' -----------------------------------------------------------------------------

@exercise_check("non-blocking-view")
async def non_blocking_view(slow_hello, n: int = 5) -> None:
    """An async view that waits 0.5 s without holding up the others, then answers {"hello": "world"}."""
    ex = "non-blocking-view"
    require_async_function(ex, slow_hello, "slow_hello")
    inside = InFlight()

    async def counted(request):
        with inside:
            return await slow_hello(request)

    async with serving(ex, counted) as served:
        async def one():
            start = time.perf_counter()
            response = await served.client.get("/exercise/")
            return response, time.perf_counter() - start
        answers = await asyncio.gather(*(one() for _ in range(n)))
    _view_errors(ex, served)
    expect_not_blocked(ex, served.max_gap, "time.sleep (or another sync wait) inside `async def` makes every request "
                                           "wait: wait the async way")
    expect_all_awaited(ex, served.never_awaited, "calling a coroutine function without `await` only creates the "
                                                 "coroutine; it never waits")
    for response, _ in answers:
        expect_status(ex, response.status_code, 200, "the view")
    quickest = min(seconds for _, seconds in answers)
    if quickest < 0.45:
        raise ExerciseFailed(ex, f"an answer came after {quickest:.2f} s: the view should wait 0.5 s before it "
                                 "answers")
    for response, _ in answers:
        body = expect_json(ex, response, "the view")
        if body != {"hello": "world"}:
            raise ExerciseFailed(ex, f'the body should be the object {{"hello": "world"}}, got {body}')
    if inside.peak < n:
        raise ExerciseFailed(ex, f"only {inside.peak} of the {n} requests were inside the view at once: they "
                                 "waited for each other")
    passed(ex, f"{n} requests waited {quickest:.2f} s or more each, all {n} in the view at once; the loop never "
               "stalled")


def _view_errors(ex: str, served) -> None:
    """What the learner's view raised, explained."""
    for exc in served.errors:
        if "coroutine" in str(exc):
            raise ExerciseFailed(ex, f"the view failed with {type(exc).__name__}: {exc}. A coroutine was used as a "
                                     "value: an `await` is missing")
    if served.errors:
        exc = served.errors[0]
        raise ExerciseFailed(ex, f"the view raised {type(exc).__name__}: {exc}")


# --- exercise 'offload-blocking' ------------------------------------------------------------------------------

@exercise_check("offload-blocking")
async def offload_blocking(report_view, n: int = 4) -> None:
    """Call `legacy_report` from an async view without blocking the loop: each request gets its own report."""
    ex = "offload-blocking"
    require_async_function(ex, report_view, "report_view")
    legacy_threads.clear()
    numbers = random.sample(range(100, 1000), n)
    async with serving(ex, report_view) as served:
        start = time.perf_counter()
        responses = await asyncio.gather(*(served.client.get(f"/exercise/?n={k}") for k in numbers))
        elapsed = time.perf_counter() - start
    if "MainThread" in legacy_threads or served.max_gap > BLOCKED:
        raise ExerciseFailed(ex, f"legacy_report ran on the event loop's thread and blocked it ({served.max_gap:.2f} "
                                 "s): hand the function itself (not its result) to sync_to_async, and await what "
                                 "that gives back")
    expect_all_awaited(ex, served.never_awaited, "sync_to_async(...)(...) gives back a coroutine: it runs only when "
                                                 "it is awaited")
    _view_errors(ex, served)
    for response in responses:
        expect_status(ex, response.status_code, 200, "the view")
    bodies = [expect_json(ex, response, "the view") for response in responses]
    reports = [body.get("report") if isinstance(body, dict) else body for body in bodies]
    wrong = [(k, r) for k, r in zip(numbers, reports, strict=True) if r != f"report #{k}"]
    if wrong:
        k, r = wrong[0]
        raise ExerciseFailed(ex, f"the request with ?n={k} got the report {r!r}: each request needs the report for "
                                 "its own n")
    passed(ex, f"{n} requests ran legacy_report in {len(set(legacy_threads))} worker thread(s), {elapsed:.2f} s in "
               "all; the loop never stalled")


# --- exercise 'capped-fan-out' --------------------------------------------------------------------------------

class _CountingClient(httpx.AsyncClient):
    """Counts the calls in flight from the caller's side: a call cut off by its deadline leaves the count at once,
    whatever the upstream goes on doing."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.in_flight = self.peak = self.calls = 0

    async def send(self, request: httpx.Request, **kwargs) -> httpx.Response:
        self.in_flight += 1
        self.calls += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            return await super().send(request, **kwargs)
        finally:
            self.in_flight -= 1


async def _capped_round(ex: str, fetch_politely, base: str, limit: int) -> str:
    """One call of the learner's function: `limit` slow URLs first (they miss the deadline and hold every slot),
    then quick ones that must wait for a slot and still get their full deadline once they start."""
    deadline = round(random.uniform(0.3, 0.4), 2)
    ids = random.sample(range(100, 1000), limit + random.randint(3, 4))
    delays = [1.2] * limit + [round(random.uniform(0.05, 0.12), 2) for _ in ids[limit:]]
    urls = [f"{base}/slow?s={s}&i={i}" for s, i in zip(delays, ids, strict=True)]

    async def guarded(*args):
        try:
            return await fetch_politely(*args)
        except TimeoutError:  # the learner's, not the check's own deadline (that one is `call`'s)
            raise ExerciseFailed(ex, "a TimeoutError escaped fetch_politely: a call that misses its deadline gives "
                                     "None in its place, it does not stop the others") from None

    async with _CountingClient(timeout=10) as client:
        async with watch_loop() as watch:
            result = await call(ex, guarded, client, urls, limit, deadline, what="fetch_politely", timeout=20)
    expect_not_blocked(ex, watch.max_gap, "a sync call inside async code stops every other task")
    if client.calls == 0:
        raise ExerciseFailed(ex, "no call went through the client you were given: make every call with `client`")
    if client.peak > limit:
        raise ExerciseFailed(ex, f"{client.peak} calls were in flight at once with limit={limit}: never more than "
                                 "`limit` at the same moment")
    if client.peak < limit:
        raise ExerciseFailed(ex, f"at most {client.peak} call(s) were in flight at once with limit={limit}: the calls "
                                 f"ran one after another, not up to `limit` at a time")
    expected = [None if s > 1 else {"i": i, "slept": s} for s, i in zip(delays, ids, strict=True)]
    if not isinstance(result, list) or len(result) != len(urls):
        raise ExerciseFailed(ex, f"return one entry per URL ({len(urls)}), in a list; got {str(result)[:100]}")
    if any(isinstance(r, httpx.Response) for r in result):
        raise ExerciseFailed(ex, "the list holds httpx Response objects: return each response's JSON body")
    cut = [k for k, (got, want) in enumerate(zip(result, expected, strict=True)) if got is None and want is not None]
    if cut:
        raise ExerciseFailed(ex, f"the call to URL {cut[0]} (a quick one) came back as None: it waited for a free "
                                 "slot and was cut off before it started. The deadline counts from when a call starts")
    if sorted(map(str, result)) == sorted(map(str, expected)) and result != expected:
        raise ExerciseFailed(ex, "the entries are all there but not in the order of `urls`")
    if result != expected:
        raise ExerciseFailed(ex, "expected None for the calls that missed their deadline and the bodies of the "
                                 f"others, got {str(result)[:120]}")
    return f"limit={limit}: at most {client.peak} in flight, {limit} slow call(s) cut at {deadline} s"


@exercise_check("capped-fan-out")
async def capped_fan_out(fetch_politely) -> None:
    """At most `limit` calls at once, each cut off `deadline` seconds after it starts (None in its place), the rest's
    bodies in the order of the URLs; with a limit drawn for the run."""
    ex = "capped-fan-out"
    require_async_function(ex, fetch_politely, "fetch_politely")
    base = (await upstream()).url
    limit = random.choice([2, 4])  # never 3, the number a learner might copy from somewhere else
    passed(ex, await _capped_round(ex, fetch_politely, base, limit))
