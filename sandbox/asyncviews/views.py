"""Views for chapter 03, async views: the source document's example, class-based views, fan-out to a slow
upstream, sync/async adapters, server-sent events, and async-capable decorators.

Views answer with the thread that ran them (`thread`), so a load test can show who did the work.
"""

from __future__ import annotations

import asyncio
import functools
import json
import threading
import time

import httpx
from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse, StreamingHttpResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_GET
from django.views.generic import ListView

from sandbox.catalog.models import Item
from sandbox.concurrency.views import _upstream, _who
from sandbox.http_client import shared_client

# --- The source document's example, as written ------------------------------------------------------------

async def async_view(request):
    await asyncio.sleep(2)  # Simulating a delay
    return JsonResponse({"message": "Async response"})


# --- Class-based views -------------------------------------------------------------------------------------

class AsyncHello(View):
    """An async class-based view: every HTTP handler is `async def`."""

    async def get(self, request):
        await asyncio.sleep(float(request.GET.get("s", 0.1)))
        return JsonResponse(_who(view="AsyncHello.get", accept=request.headers.get("Accept")))

    async def post(self, request):
        return JsonResponse(_who(view="AsyncHello.post", body=request.body.decode()))


class ItemList(ListView):
    """A generic view: its `get` is sync, so under ASGI Django runs it in a worker thread."""

    model = Item

    def render_to_response(self, context, **kwargs):
        names = [item.name for item in context["object_list"]]
        return JsonResponse(_who(view="ItemList", items=names))


# --- Fan-out to the slow upstream: three "services" behind one dashboard ------------------------------------

PARTS = ("profile", "orders", "recommendations")
SLOW_SECONDS = 3.0  # what `?slow=<part>` makes that part take
FAIL_SECONDS = 0.1  # how fast `?fail=<part>` answers its 503


def part_urls(request) -> dict[str, str]:
    """One upstream URL per part: `?s=` seconds per call (default 0.5); `?fail=<part>` makes that part answer
    503 after 0.1 s; `?slow=<part>` makes it take 3 s."""
    base, seconds = _upstream(request), float(request.GET.get("s", 0.5))
    fail, slow = request.GET.get("fail"), request.GET.get("slow")
    urls = {}
    for i, name in enumerate(PARTS):
        if name == fail:
            urls[name] = f"{base}/fail?s={FAIL_SECONDS}&i={i}"
        else:
            urls[name] = f"{base}/slow?s={SLOW_SECONDS if name == slow else seconds}&i={i}"
    return urls


async def fetch_part(client: httpx.AsyncClient, url: str) -> dict:
    """One upstream call; an HTTP error status (the 503 of /fail) raises httpx.HTTPStatusError."""
    response = await client.get(url)
    response.raise_for_status()
    return response.json()


def describe(exc: BaseException) -> str:
    """A short, stable description of what went wrong with one call."""
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTPStatusError: {exc.response.status_code} from {exc.request.url.path}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def dashboard_sync(request):
    """The sync way: one call after another, each blocking this view's thread."""
    start, parts = time.perf_counter(), {}
    with httpx.Client(timeout=10) as client:
        for name, url in part_urls(request).items():
            response = client.get(url)
            response.raise_for_status()
            parts[name] = response.json()
    return JsonResponse(_who(view="dashboard_sync", parts=parts, elapsed=time.perf_counter() - start))


async def dashboard_gather(request):
    """All calls at once with asyncio.gather. One failing call fails the whole view."""
    start, urls = time.perf_counter(), part_urls(request)
    client = shared_client()  # the process's client (sandbox/http_client.py): one per request costs tens of ms of CPU
    results = await asyncio.gather(*(fetch_part(client, url) for url in urls.values()))
    return JsonResponse(_who(view="dashboard_gather", parts=dict(zip(urls, results, strict=True)),
                             elapsed=time.perf_counter() - start))


async def fetch_part_within(client: httpx.AsyncClient, url: str, seconds: float) -> dict:
    """`fetch_part` with a deadline: TimeoutError after `seconds`, whatever the call was doing."""
    async with asyncio.timeout(seconds):
        return await fetch_part(client, url)


async def dashboard_partial(request):
    """gather(return_exceptions=True) and a deadline per call: a failing or slow part becomes an error entry."""
    start, urls = time.perf_counter(), part_urls(request)
    deadline = float(request.GET.get("timeout", 1.0))
    client = shared_client()
    results = await asyncio.gather(*(fetch_part_within(client, url, deadline) for url in urls.values()),
                                   return_exceptions=True)
    parts = {name: {"error": describe(r)} if isinstance(r, Exception) else r
             for name, r in zip(urls, results, strict=True)}
    return JsonResponse(_who(view="dashboard_partial", parts=parts, elapsed=time.perf_counter() - start))


async def dashboard_taskgroup(request):
    """A TaskGroup: the first failure cancels the other calls; `except*` turns the group into a 502."""
    start, urls, tasks, errors = time.perf_counter(), part_urls(request), {}, []
    try:
        async with asyncio.TaskGroup() as tg:
            for name, url in urls.items():
                tasks[name] = tg.create_task(fetch_part(shared_client(), url))
    except* httpx.HTTPError as group:  # `return` is not allowed inside except*: note the errors, answer below
        errors = [describe(e) for e in group.exceptions]
    if errors:
        states = {name: "cancelled" if t.cancelled() else describe(t.exception()) if t.exception() else "done"
                  for name, t in tasks.items()}
        return JsonResponse(_who(view="dashboard_taskgroup", errors=errors, tasks=states,
                                 elapsed=time.perf_counter() - start), status=502)
    return JsonResponse(_who(view="dashboard_taskgroup", parts={n: t.result() for n, t in tasks.items()},
                             elapsed=time.perf_counter() - start))


# --- sync_to_async and async_to_sync inside a request ---------------------------------------------------------

def blocking_step(seconds: float) -> str:
    """A sync step (think: a sync library call). Returns the thread that ran it."""
    time.sleep(seconds)
    return threading.current_thread().name


async def two_steps(request):
    """Two thread-sensitive sync steps started at once inside one request: they share the request's thread."""
    seconds, start = float(request.GET.get("s", 0.25)), time.perf_counter()
    threads = await asyncio.gather(sync_to_async(blocking_step)(seconds), sync_to_async(blocking_step)(seconds))
    return JsonResponse(_who(view="two_steps", steps=threads, elapsed=time.perf_counter() - start))


async def loop_thread() -> str:
    await asyncio.sleep(0)
    return threading.current_thread().name


def sync_calls_async(request):
    """A sync view (run in a worker thread under ASGI) calling async code with async_to_sync."""
    return JsonResponse(_who(view="sync_calls_async", async_part_ran_on=async_to_sync(loop_thread)()))


# --- Server-sent events ---------------------------------------------------------------------------------------

STREAM_LOG: list[str] = []  # what the stream generators did, in this process


def log_stream(line: str) -> None:
    """Record a stream event here and in the data directory, which a notebook shares with its servers."""
    STREAM_LOG.append(line)
    with open(settings.DATA_DIR / "streams.log", "a") as f:
        f.write(line + "\n")


def sse(data: dict) -> str:
    """One server-sent event: a `data:` line and a blank line."""
    return f"data: {json.dumps(data)}\n\n"


async def ticks(request):
    """Server-sent events from an async generator: one every `?every=` seconds, `?n=` of them."""
    n, every, stream = int(request.GET.get("n", 5)), float(request.GET.get("every", 0.5)), request.GET.get("id", "-")

    async def events():
        sent = 0
        log_stream(f"stream {stream}: started")
        try:
            for i in range(n):
                yield sse({"tick": i, "thread": threading.current_thread().name})
                sent += 1
                await asyncio.sleep(every)
            log_stream(f"stream {stream}: finished after {sent} events")
        except asyncio.CancelledError:
            log_stream(f"stream {stream}: CancelledError after {sent} events (the client went away)")
            raise

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    return response


async def ticks_sync_generator(request):
    """A mistake on purpose: a sync generator under ASGI is consumed whole in a thread, then sent at once."""
    n, every = int(request.GET.get("n", 5)), float(request.GET.get("every", 0.5))

    def events():
        for i in range(n):
            yield sse({"tick": i, "thread": threading.current_thread().name})
            time.sleep(every)

    return StreamingHttpResponse(events(), content_type="text/event-stream")


# --- Async-capable decorators ---------------------------------------------------------------------------------

@require_GET
@never_cache
async def fresh(request):
    """Django's decorators keep an async view async (5.0+): GET only, and never cached."""
    await asyncio.sleep(0)
    return JsonResponse(_who(view="fresh"))


@login_required
async def private(request):
    """login_required wraps async views since Django 5.1: anonymous users are redirected to LOGIN_URL."""
    user = await request.auser()
    return JsonResponse({"user": user.get_username()})


class CachedHello(View):
    """method_decorator on an async method (5.2+): the wrapped method stays async."""

    @method_decorator(cache_control(max_age=60, public=True))
    async def get(self, request):
        return JsonResponse(_who(view="CachedHello.get"))


def timed(view):
    """A mistake on purpose: a homemade decorator with a sync wrapper. On an async view, `view(request)` is a
    coroutine, not a response, and Django, seeing a sync wrapper, runs it in a thread without awaiting."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        start = time.perf_counter()
        response = view(request, *args, **kwargs)
        response["X-Elapsed"] = f"{time.perf_counter() - start:.3f}"
        return response

    return wrapper


@timed
async def timed_hello(request):
    return JsonResponse(_who(view="timed_hello"))
