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
