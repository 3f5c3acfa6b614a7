"""Views for the sync-vs-async lessons, in pairs that differ only in their concurrency style.

Every view answers with the thread and process that ran it, so a load test can show who did the work.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import os
import threading
import time
from urllib.parse import urlsplit

import httpx
from channels.layers import get_channel_layer
from django.conf import settings
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse

from sandbox.http_client import shared_client


def _seconds(request: HttpRequest, default: float = 1.0) -> float:
    return float(request.GET.get("s", default))


_BEGAN: contextvars.ContextVar[float | None] = contextvars.ContextVar("began", default=None)


def stamped(view):
    """Note the server's clock when `view` starts running, for `_who`: a timeline then tells the time a request
    waited for a thread or for the loop from the time its view ran."""
    if inspect.iscoroutinefunction(view):
        @functools.wraps(view)
        async def run_async(request, *args, **kwargs):
            _BEGAN.set(time.time())
            return await view(request, *args, **kwargs)
        return run_async

    @functools.wraps(view)
    def run_sync(request, *args, **kwargs):
        _BEGAN.set(time.time())
        return view(request, *args, **kwargs)
    return run_sync


def _who(**extra) -> dict:
    """Who answered, and when by the server's clock (`began`, when the view is `stamped`, and `at`): a load test
    tells views that ran together from views that ran one after another by it, whatever else the machine does."""
    began = _BEGAN.get()
    _BEGAN.set(None)  # a WSGI thread keeps its context from one request to the next
    return {"thread": threading.current_thread().name, "pid": os.getpid(), "began": began, "at": time.time(), **extra}


@stamped
async def wait_async(request):
    """Waits on I/O the async way: the event loop is free while it waits."""
    await asyncio.sleep(_seconds(request))
    return JsonResponse(_who(view="wait_async"))


@stamped
def wait_sync(request):
    """Waits on I/O the sync way: the thread that runs it is blocked while it waits."""
    time.sleep(_seconds(request))
    return JsonResponse(_who(view="wait_sync"))


@stamped
async def blocking_async(request):
    """A mistake on purpose: `time.sleep` in an async view blocks the event loop, and every request with it."""
    time.sleep(_seconds(request))
    return JsonResponse(_who(view="blocking_async"))


def _upstream(request: HttpRequest) -> str:
    """The upstream base URL: `?upstream=` or settings; loopback only, so the sandbox never calls out."""
    url = request.GET.get("upstream") or settings.UPSTREAM_URL
    if not url:
        raise ValueError("no upstream: start one with `await lab.start_upstream()`")
    if urlsplit(url).hostname not in {"127.0.0.1", "localhost"}:
        raise ValueError(f"upstream must be on loopback, got {url!r}")
    return url.rstrip("/")


def _fanout_urls(request: HttpRequest) -> list[str]:
    base, n, s = _upstream(request), int(request.GET.get("n", 5)), _seconds(request)
    return [f"{base}/slow?s={s}&i={i}" for i in range(n)]


@stamped
async def fanout_async(request):
    """Calls n upstream endpoints at once with `asyncio.gather`: total time is about one call."""
    try:
        urls = _fanout_urls(request)
    except ValueError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    start, client = time.perf_counter(), shared_client()  # the process's client: building one costs tens of ms of CPU
    responses = await asyncio.gather(*(client.get(url, timeout=30) for url in urls))
    results = [r.json() for r in responses]
    return JsonResponse(_who(view="fanout_async", results=results, elapsed=time.perf_counter() - start))


@stamped
def fanout_sync(request):
    """Calls the same n endpoints one after another: total time is the sum of the calls."""
    try:
        urls = _fanout_urls(request)
    except ValueError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    start = time.perf_counter()
    with httpx.Client(timeout=30) as client:
        results = [client.get(url).json() for url in urls]
    return JsonResponse(_who(view="fanout_sync", results=results, elapsed=time.perf_counter() - start))


def _burn(n: int) -> int:
    return sum(i * i for i in range(n))


@stamped
async def cpu_async(request):
    """CPU-bound work in an async view: `async def` makes it no faster, and it holds the loop while it runs."""
    return JsonResponse(_who(view="cpu_async", result=_burn(int(request.GET.get("n", 2_000_000)))))


@stamped
def cpu_sync(request):
    """The same CPU-bound work in a sync view."""
    return JsonResponse(_who(view="cpu_sync", result=_burn(int(request.GET.get("n", 2_000_000)))))


async def stream(request):
    """A long-lived response: one line every `every` seconds for `s` seconds (an async iterator under ASGI)."""
    seconds, every = _seconds(request, 5.0), float(request.GET.get("every", 1.0))

    async def ticks():
        for i in range(max(1, round(seconds / every))):
            await asyncio.sleep(every)
            yield f"tick {i} {threading.current_thread().name}\n"

    return StreamingHttpResponse(ticks(), content_type="text/plain")


async def broadcast(request):
    """Sends one message to every WebSocket in the `hold` group (see `HoldConsumer`)."""
    text = request.GET.get("text", "hello")
    await get_channel_layer().group_send("hold", {"type": "hold.message", "text": text})
    return JsonResponse(_who(view="broadcast", text=text))


def whoami(request):
    """Process facts for a readiness probe and for counting threads from the outside."""
    return JsonResponse(_who(view="whoami", threads=threading.active_count()))
