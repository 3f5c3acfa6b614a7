"""Probes for chapter 05: a middleware stack from the notebook's cells run under ASGI and under WSGI, in the kernel.

`adapted_log()` catches Django's "adapted" debug lines while a middleware chain is built. `through_asgi` serves a
view behind the stack with `lab.serve` (Django's `ASGIHandler`); `through_wsgi` sends the same request through
Django's sync test `Client`, the WSGI code path, in a new thread. `both_ways` prints where every step of the
request ran, each way. `peak_threads` counts the kernel's threads while requests are in flight. (The hop counter
the chapter also uses is the toolkit's `lab.count_hops()`.)
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sandbox.lab.trace import capture_log

Middleware = Sequence[str | Callable[..., Any]]
MODE_HEADERS = ("X-Hybrid", "X-Async-Only", "X-Dual-Path")  # the mode each of the chapter's patterns ran in


class _Lines(logging.Handler):
    """Keeps each message as it is logged, so that the block can read what came so far."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def adapted_log() -> Iterator[list[str]]:
    """Keep what the `django.request` logger says at DEBUG level while the block runs (a list of lines).

    Django logs "Synchronous handler adapted for ..." and "Asynchronous handler adapted for ..." when it
    builds the middleware chain (only with settings.DEBUG = True): build a fresh handler inside the block.
    The lines are kept, not printed (an error logged meanwhile lands in the list too).
    """
    kept = _Lines()
    with capture_log("django.request", kept):
        yield kept.lines


def _dotted(middleware: Middleware) -> list[str]:
    """Dotted paths for Django's loader (settings.MIDDLEWARE): a callable from a cell becomes a name here."""
    names = []
    for i, item in enumerate(middleware):
        if isinstance(item, str):
            names.append(item)
        else:
            setattr(sys.modules[__name__], f"cell_middleware_{i}", item)
            names.append(f"{__name__}.cell_middleware_{i}")
    return names


class _Routes:
    """A URLconf serving one view at `/`."""

    def __init__(self, view: Callable[..., Any]) -> None:
        from django.urls import path

        self.urlpatterns = [path("", view)]


async def through_asgi(view: Callable[..., Any], middleware: Middleware) -> tuple[Any, list[str]]:
    """One request to `view` behind `middleware` (outermost first) through Django's ASGI handler, built afresh:
    the response, and the "adapted" lines Django logged while it loaded the middleware."""
    from sandbox.lab.live import serve

    with adapted_log() as adapted:
        client = serve(view, middleware=middleware)  # Django loads (and adapts) the middleware here
    async with client as c:
        response = await c.get("/")
    return response, [line for line in adapted if "adapted" in line]


async def through_wsgi(view: Callable[..., Any], middleware: Middleware) -> tuple[Any, list[str], list[str]]:
    """The same request through Django's sync test `Client` (the WSGI code path), in a new thread: the response
    (or the text of what it raised), the "adapted" lines, and any "never awaited" warning."""
    from django.test import Client, override_settings

    def get() -> Any:
        try:
            return Client().get("/")
        except Exception as exc:  # the sync Client re-raises what the request raised; keep only its text, so
            return f"{type(exc).__name__}: {exc}"  # the coroutine it holds can be collected (and warn) below

    with override_settings(MIDDLEWARE=_dotted(middleware), ROOT_URLCONF=_Routes(view)), adapted_log() as adapted, \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # A new thread for each request, as a WSGI server's: no event loop, and nothing asgiref kept from an
        # earlier call (a reused thread could send an async view to the kernel's own loop).
        with ThreadPoolExecutor(1, thread_name_prefix="wsgi-request") as thread:
            async with asyncio.timeout(10):
                result = await asyncio.get_running_loop().run_in_executor(thread, get)
        gc.collect()  # "never awaited" is reported when the coroutine is garbage-collected
    never_awaited = [str(w.message) for w in caught if "never awaited" in str(w.message)]
    return result, [line for line in adapted if "adapted" in line], never_awaited


def report(response: Any, adapted: list[str]) -> None:
    """Status, the X-... headers the middleware set, where each step of the trail ran, and what Django adapted."""
    modes = {h: response.headers[h] for h in MODE_HEADERS if h in response.headers}
    print(response.status_code, modes)
    for step in response.json()["trail"]:
        print(f"  {step['step']:<45} {step['where']:<14} {step['thread']}")
    print("  adapted:", *(adapted or ["nothing"]), sep="\n    ")


async def both_ways(view: Callable[..., Any], middleware: Middleware) -> None:
    """Run `view` behind `middleware` under ASGI and under WSGI, and report where each step ran."""
    print("ASGI:", end=" ")
    report(*await through_asgi(view, middleware))
    response, adapted, never_awaited = await through_wsgi(view, middleware)
    assert not never_awaited, never_awaited
    print("WSGI:", end=" ")
    report(response, adapted)


async def peak_threads(client: Any, path: str, n: int) -> tuple[Any, int]:
    """Send `n` requests at once with `lab.fire` and sample this process's thread count meanwhile: (run, peak)."""
    from sandbox.lab.load import fire

    peak = threading.active_count()

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, threading.active_count())
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    try:
        run = await fire(client, path, n)
    finally:
        sampler.cancel()
    return run, peak
