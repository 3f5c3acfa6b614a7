"""Checks for the exercises of chapter 01, sync vs async.

Each one runs the learner's code against real I/O (the slow upstream server, Django's ASGI handler) while a
heartbeat watches the event loop, so a blocking call, a missing `await` or calls made one after another are
told apart by what happened, not by reading the code.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx

from sandbox.lab.checks.common import (
    BLOCKED,
    ExerciseFailed,
    not_attempted,
    passed,
    raise_view_errors,
    reject_coroutine,
    require_async_function,
    watch_loop,
)

_upstream = None


async def _upstream_url() -> str:
    """One slow upstream per kernel, started on first use."""
    global _upstream
    from sandbox.lab.servers import start_upstream

    if _upstream is None or not _upstream.alive():
        _upstream = await start_upstream(quiet=True)
    return _upstream.url


async def fan_out(fetch_all, n: int = 5, seconds: float = 0.4) -> None:
    """Exercise 'fan-out': `fetch_all(client, urls)` must fetch every URL at once, in order, without blocking."""
    ex = "fan-out"
    require_async_function(ex, fetch_all, "fetch_all")
    base = await _upstream_url()
    urls = [f"{base}/slow?s={seconds}&i={i}" for i in range(n)]
    async with httpx.AsyncClient(timeout=10) as client:
        await client.get(f"{base}/reset")
        start = time.perf_counter()
        async with watch_loop() as watch, asyncio.timeout(30):
            try:
                result = await fetch_all(client, urls)
            except NotImplementedError:
                raise not_attempted(ex) from None
        elapsed = time.perf_counter() - start
        stats = (await client.get(f"{base}/stats")).json()
    reject_coroutine(ex, result, "what fetch_all returned (or an item of it)")
    if watch.max_gap > BLOCKED:
        raise ExerciseFailed(ex, f"the event loop was blocked for {watch.max_gap:.2f} s: a sync call (time.sleep, "
                                 "requests, httpx.Client) inside async code stops every other task")
    if stats["max_in_flight"] < n:
        raise ExerciseFailed(ex, f"the calls ran one after another (at most {stats['max_in_flight']} in flight, "
                                 f"{elapsed:.2f} s in all): start them all, then await them together with "
                                 "asyncio.gather or a TaskGroup")
    if not isinstance(result, list) or [getattr(r, "get", dict().get)("i") for r in result] != list(range(n)):
        raise ExerciseFailed(ex, "return the JSON bodies as a list, in the order of `urls` "
                                 f"(got {str(result)[:120]})")
    passed(ex, f"{n} calls of {seconds} s each took {elapsed:.2f} s together, all {n} in flight at once")


async def _call_view(exercise: str, view, paths: list[str]):
    """Serve `view` at /exercise/ through Django's real ASGI handler and send the requests at once."""
    from sandbox.lab.checks.exercise_urls import serving

    async with serving(exercise, view) as (c, errors), watch_loop() as watch:
        start = time.perf_counter()
        responses = await asyncio.gather(*(c.get(p) for p in paths))
        elapsed = time.perf_counter() - start
    return responses, elapsed, watch, errors


async def non_blocking_view(slow_hello, n: int = 5) -> None:
    """Exercise 'non-blocking-view': an async view that waits 0.5 s without holding up other requests."""
    ex = "non-blocking-view"
    require_async_function(ex, slow_hello, "slow_hello")
    responses, elapsed, watch, errors = await _call_view(ex, slow_hello, ["/exercise/"] * n)
    if watch.max_gap > BLOCKED:
        raise ExerciseFailed(ex, f"the event loop was blocked for {watch.max_gap:.2f} s: time.sleep (or another "
                                 "sync wait) inside `async def` makes every request wait; use `await asyncio.sleep`")
    raise_view_errors(ex, errors)
    bad = [r for r in responses if r.status_code != 200]
    if bad:
        raise ExerciseFailed(ex, f"the view answered HTTP {bad[0].status_code}, expected 200")
    if elapsed < 0.4:
        raise ExerciseFailed(ex, f"the view answered after {elapsed:.2f} s without waiting 0.5 s: is an `await` "
                                 "missing before asyncio.sleep(...)? A coroutine that is never awaited never runs")
    if any(r.json() != {"hello": "world"} for r in responses):
        raise ExerciseFailed(ex, f'answer JsonResponse({{"hello": "world"}}), got {responses[0].text[:80]}')
    passed(ex, f"{n} requests waited 0.5 s each and finished together in {elapsed:.2f} s; the loop never stalled")


LEGACY_SECONDS = 0.5
legacy_threads: list[str] = []


def legacy_report(n: int) -> str:
    """A sync-only library call: blocks its thread for 0.5 s (think: a SOAP client, a PDF renderer)."""
    legacy_threads.append(threading.current_thread().name)
    time.sleep(LEGACY_SECONDS)
    return f"report #{n}"


async def offload_blocking(report_view, n: int = 4) -> None:
    """Exercise 'offload-blocking': call `legacy_report` from an async view without blocking the loop."""
    ex = "offload-blocking"
    require_async_function(ex, report_view, "report_view")
    legacy_threads.clear()
    responses, elapsed, watch, errors = await _call_view(ex, report_view, [f"/exercise/?n={i}" for i in range(n)])
    if "MainThread" in legacy_threads or watch.max_gap > BLOCKED:
        raise ExerciseFailed(ex, "legacy_report ran on the event loop's thread and blocked it "
                                 f"({watch.max_gap:.2f} s): pass the function itself to sync_to_async and await "
                                 "the result, `await sync_to_async(legacy_report)(n)`")
    raise_view_errors(ex, errors)
    bad = [r for r in responses if r.status_code != 200]
    if bad:
        raise ExerciseFailed(ex, f"the view answered HTTP {bad[0].status_code}, expected 200")
    bodies = [json.loads(r.text) for r in responses]
    if [b.get("report") for b in bodies] != [f"report #{i}" for i in range(n)]:
        raise ExerciseFailed(ex, f'answer {{"report": legacy_report(n)}} for ?n=..., got {bodies[0]}')
    passed(ex, f"{n} requests ran legacy_report in {len(set(legacy_threads))} worker thread(s); "
               f"{elapsed:.2f} s in all, and the loop never stalled")
