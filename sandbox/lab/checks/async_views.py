"""Checks for the exercises of chapter 03, async views.

Each check runs the learner's code for real: a fan-out against the slow upstream server through a client
that counts the calls in flight, a class-based view and a streaming view served by Django's own ASGI handler
(driven message by message, so the check sees when each chunk of a stream was sent). A heartbeat watches the
event loop throughout.

This module is also the URLconf those views are served from (`urlpatterns` below).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import warnings
from dataclasses import dataclass, field

import httpx
from django.urls import clear_url_caches, path

from sandbox.lab.checks.common import (
    BLOCKED,
    ExerciseFailed,
    not_attempted,
    passed,
    reject_coroutine,
    require_async_function,
    watch_loop,
)

urlpatterns = []  # filled by _serve(): the one view a check is testing
_upstream = None


def _serve(route: str, view) -> None:
    urlpatterns[:] = [path(route, view)]
    clear_url_caches()


async def _upstream_url() -> str:
    """One slow upstream per kernel for these checks, started on first use."""
    global _upstream
    from sandbox.lab.servers import start_server

    if _upstream is None or not _upstream.alive():
        _upstream = await start_server("upstream", quiet=True)
    return _upstream.url


# --- Exercise 'partial-fan-out' ------------------------------------------------------------------------------

class CountingTransport(httpx.AsyncBaseTransport):
    """A transport that counts the requests in flight: calls made at once versus one after another."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.in_flight = self.max_in_flight = 0

    async def handle_async_request(self, request):
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self.inner.handle_async_request(request)
        finally:
            self.in_flight -= 1

    async def aclose(self) -> None:
        await self.inner.aclose()


FAST, FAIL, SLOW, TIMEOUT, GIVE_UP = 0.4, 0.1, 4.0, 1.0, 3.0


async def partial_fan_out(fetch_parts) -> None:
    """Exercise 'partial-fan-out': call every URL at once, each with its own deadline; failed or slow -> None."""
    ex = "partial-fan-out"
    require_async_function(ex, fetch_parts, "fetch_parts")
    base = await _upstream_url()
    urls = {"profile": f"{base}/slow?s={FAST}&i=0", "orders": f"{base}/slow?s={FAST}&i=1",
            "reviews": f"{base}/fail?s={FAIL}&i=2", "recommendations": f"{base}/slow?s={SLOW}&i=3"}
    transport = CountingTransport()
    async with httpx.AsyncClient(transport=transport, timeout=10) as client, watch_loop() as watch:
        start = time.perf_counter()
        guard = asyncio.timeout(GIVE_UP)
        failure = None  # raised after the `except` blocks: IPython garbles a traceback whose context is a group
        try:
            async with guard:
                result = await fetch_parts(client, urls, TIMEOUT)
        except NotImplementedError:
            raise not_attempted(ex) from None
        except TimeoutError:
            if guard.expired():
                failure = (f"fetch_parts was still waiting after {GIVE_UP:.0f} s: the slow call ({SLOW:.0f} s) had "
                           "no deadline of its own. Give each call a timeout (`async with asyncio.timeout(timeout):` "
                           "around it, or httpx's `timeout=`)")
            else:
                failure = ("a TimeoutError escaped from fetch_parts: the per-call deadline worked, but catch its "
                           "TimeoutError for that call and record None, so the other results survive")
        except BaseExceptionGroup as group:
            failure = (f"an ExceptionGroup escaped ({len(group.exceptions)} error(s), first: "
                       f"{type(group.exceptions[0]).__name__}): in a TaskGroup, one failing call cancels its "
                       "siblings and the group raises, so every result is lost. Catch each call's error inside the "
                       "task, or use asyncio.gather(..., return_exceptions=True)")
        except Exception as exc:
            if any(word in str(exc).lower() for word in ("coroutine", "future")):
                failure = (f"fetch_parts failed with {type(exc).__name__}: {str(exc)[:80]}. A coroutine or future "
                           "was used as a value: a missing `await` (before asyncio.gather, or a call)")
            else:
                failure = (f"{type(exc).__name__} escaped from fetch_parts ({str(exc)[:80]}): one failing call lost "
                           "every result. asyncio.gather without return_exceptions=True re-raises the first "
                           "error; catch it per call, or pass return_exceptions=True and turn exceptions into None")
        if failure:
            raise ExerciseFailed(ex, failure)
        elapsed = time.perf_counter() - start
        left_running = transport.in_flight
    reject_coroutine(ex, list(result.values()) if isinstance(result, dict) else result,
                     "what fetch_parts returned (or a value in it)")
    if watch.max_gap > BLOCKED:
        raise ExerciseFailed(ex, f"the event loop was blocked for {watch.max_gap:.2f} s: a sync call (time.sleep, "
                                 "requests, httpx.Client) inside async code stops every other task")
    if transport.max_in_flight < len(urls):
        raise ExerciseFailed(ex, f"the calls ran one after another (at most {transport.max_in_flight} in flight, "
                                 f"{elapsed:.2f} s in all): start them all, then wait for them together with "
                                 "asyncio.gather or a TaskGroup")
    if left_running:
        raise ExerciseFailed(ex, f"{left_running} call(s) were still running when fetch_parts returned: a call "
                                 "that misses its deadline must be cancelled, not left behind")
    if not isinstance(result, dict) or set(result) != set(urls):
        raise ExerciseFailed(ex, f"return a dict with one entry per name in `urls` ({', '.join(urls)}), "
                                 f"got {str(result)[:120]}")
    if result["reviews"] is not None:
        raise ExerciseFailed(ex, "'reviews' answered HTTP 503, so it failed: its entry should be None. "
                                 "Check the status (`response.raise_for_status()`) before using the body")
    if result["recommendations"] is not None:
        raise ExerciseFailed(ex, f"'recommendations' takes {SLOW:.0f} s, longer than the {TIMEOUT} s deadline: "
                                 "its entry should be None")
    for name, i in (("profile", 0), ("orders", 1)):
        if not isinstance(result[name], dict) or result[name].get("i") != i:
            raise ExerciseFailed(ex, f"'{name}' answered in time: its entry should be the JSON body "
                                     f"(response.json()), got {str(result[name])[:80]}")
    passed(ex, f"{len(urls)} calls in flight at once; 2 results, 1 failure and 1 timeout after {elapsed:.2f} s "
               f"(the slow call alone takes {SLOW:.0f} s)")


# --- Serving a view through Django's ASGI handler, message by message ------------------------------------------

@dataclass
class Exchange:
    """One request through the ASGI handler: what was sent back, when, and what went wrong on the way."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[tuple[float, bytes, bool]] = field(default_factory=list)  # (seconds, body, more_body)
    errors: list[BaseException] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    max_gap: float = 0.0

    @property
    def body(self) -> bytes:
        return b"".join(c[1] for c in self.chunks)

    def json(self):
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None


async def _exchange(method: str, url: str, body: bytes = b"", timeout: float = 20) -> Exchange:
    """Send one request to Django's ASGIHandler with this module as the URLconf; record every message."""
    from django.core.handlers.asgi import ASGIHandler
    from django.core.signals import got_request_exception
    from django.test import override_settings

    route, _, query = url.partition("?")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": route, "raw_path": route.encode(), "query_string": query.encode(),
             "root_path": "", "headers": [(b"host", b"testserver"), (b"content-type", b"application/json")],
             "client": ("127.0.0.1", 50000), "server": ("testserver", 80)}
    result, start, done = Exchange(), time.perf_counter(), asyncio.Event()
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        if messages:
            return messages.pop(0)
        await done.wait()  # the client stays connected until the response is complete
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            result.status = message["status"]
            result.headers = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            more = message.get("more_body", False)
            result.chunks.append((time.perf_counter() - start, message.get("body", b""), more))
            if not more:
                done.set()

    def record(sender, request=None, **kwargs):
        result.errors.append(sys.exc_info()[1])

    got_request_exception.connect(record, weak=False)
    try:
        with (override_settings(ROOT_URLCONF=__name__), warnings.catch_warnings(record=True) as caught):
            warnings.simplefilter("always")
            async with watch_loop() as watch, asyncio.timeout(timeout):
                await ASGIHandler()(scope, receive, send)
            result.max_gap = watch.max_gap
    finally:
        got_request_exception.disconnect(record)
        done.set()
    result.warnings = [f"{w.category.__name__}: {w.message}" for w in caught]
    return result


def _view_errors(exercise: str, exchange: Exchange) -> None:
    """Turn an exception the view raised into feedback that names the async mistake."""
    from django.core.exceptions import SynchronousOnlyOperation

    for exc in exchange.errors:
        if isinstance(exc, NotImplementedError):
            raise not_attempted(exercise)
    for exc in exchange.errors:
        if isinstance(exc, SynchronousOnlyOperation):
            raise ExerciseFailed(exercise, "the ORM was called from the event loop's thread "
                                           "(SynchronousOnlyOperation): in an async view use the async ORM "
                                           "(`await Item.objects.aget(...)`, `aupdate`, `asave`) or wrap the "
                                           "sync code in sync_to_async")
        if "coroutine" in str(exc):
            raise ExerciseFailed(exercise, f"the view failed with {type(exc).__name__}: {exc}. A coroutine was "
                                           "used as a value: a missing `await`")
    if exchange.errors:
        exc = exchange.errors[0]
        raise ExerciseFailed(exercise, f"the view raised {type(exc).__name__}: {exc}")


# --- Exercise 'async-class-view' -------------------------------------------------------------------------------

def _user_class(exercise: str, name: str):
    """The learner's class, found by name in the notebook: its cell still raises NotImplementedError until
    it is written, so the class may not exist yet."""
    try:
        from IPython import get_ipython

        namespace = get_ipython().user_ns
    except (ImportError, AttributeError):
        namespace = vars(sys.modules["__main__"])
    cls = namespace.get(name)
    if cls is None:
        raise NotImplementedError(f"Exercise {exercise!r} is not attempted yet: `{name}` is not defined. Write the "
                                  "class in the cell above (replace `raise NotImplementedError`) and run it.")
    return cls


async def async_class_view(name: str = "ItemView") -> None:
    """Exercise 'async-class-view': an async class-based view that reads and updates a catalogue item."""
    from django.core.exceptions import ImproperlyConfigured
    from django.views import View

    from sandbox.catalog.models import Item

    ex = "async-class-view"
    cls = _user_class(ex, name)
    if not (isinstance(cls, type) and issubclass(cls, View)):
        raise ExerciseFailed(ex, f"{name} should be a class that subclasses django.views.View, got {cls!r}")
    try:
        view = cls.as_view()
    except ImproperlyConfigured as exc:
        raise ExerciseFailed(ex, f"Django refused the class: {exc} A class-based view's handlers are all sync or "
                                 "all async; with an `async def get`, write `async def post` too") from None
    if not cls.view_is_async:
        raise ExerciseFailed(ex, "the handlers are sync (`def get`): Django runs a sync view in a worker thread, "
                                 "so nothing in it can await. Write them as `async def get` and `async def post`")
    _serve("exercise/<str:name>/", view)
    item = await Item.objects.aget(name="Espresso")
    try:
        got = await _exchange("GET", "/exercise/Espresso/")
        _view_errors(ex, got)
        missing = await _exchange("GET", "/exercise/Tea/")
        _view_errors(ex, missing)
        posted = await _exchange("POST", "/exercise/Espresso/", json.dumps({"in_stock": False}).encode())
        _view_errors(ex, posted)
        after = await Item.objects.aget(pk=item.pk)
    finally:
        await Item.objects.filter(pk=item.pk).aupdate(in_stock=item.in_stock)
    for ex_name, exchange in (("GET", got), ("POST", posted)):
        if exchange.status != 200:
            raise ExerciseFailed(ex, f"{ex_name} /exercise/Espresso/ answered HTTP {exchange.status}, expected 200")
    expected = {"name": "Espresso", "price": str(item.price), "in_stock": True}
    if got.json() != expected:
        raise ExerciseFailed(ex, f"GET should answer {expected}, got {got.body[:120].decode(errors='replace')}")
    if missing.status != 404:
        raise ExerciseFailed(ex, f"GET for an item that does not exist answered HTTP {missing.status}, expected "
                                 "404 (catch Item.DoesNotExist, or use aget_object_or_404)")
    if after.in_stock is not False:
        raise ExerciseFailed(ex, 'POST {"in_stock": false} did not change the item in the database: '
                                 "is an `await` missing before aupdate/asave?")
    if posted.json() != {**expected, "in_stock": False}:
        raise ExerciseFailed(ex, f"POST should answer the updated item, {({**expected, 'in_stock': False})}, got "
                                 f"{posted.body[:120].decode(errors='replace')}")
    passed(ex, f"{name} is async (view_is_async is True): GET, 404 and POST all answered through the ASGI "
               "handler with the async ORM, on the event loop's thread")


# --- Exercise 'sse-stream' ------------------------------------------------------------------------------------

N_EVENTS, EVERY = 3, 0.4


def _events(body: bytes) -> list:
    """The `data:` payloads of a server-sent event stream, decoded as JSON where possible."""
    out = []
    for block in body.decode(errors="replace").split("\n\n"):
        for line in block.splitlines():
            if line.startswith("data:"):
                text = line[5:].strip()
                try:
                    out.append(json.loads(text))
                except json.JSONDecodeError:
                    out.append(text)
    return out


async def sse_stream(countdown) -> None:
    """Exercise 'sse-stream': a countdown as server-sent events, each sent as soon as it is made."""
    ex = "sse-stream"
    require_async_function(ex, countdown, "countdown")
    _serve("exercise/", countdown)
    got = await _exchange("GET", f"/exercise/?n={N_EVENTS}&every={EVERY}")
    _view_errors(ex, got)
    sync_iter = [w for w in got.warnings if "must consume synchronous iterators" in w]
    if sync_iter:
        raise ExerciseFailed(ex, "the stream is a sync iterator (a `def` generator, or a list): under ASGI, Django "
                                 "consumed all of it in a thread first and sent it in one go. It warned: "
                                 f"\"{sync_iter[0].split(': ', 1)[1]}\" Write an async generator (`async def` "
                                 "with `yield`) and wait with `await asyncio.sleep`")
    if got.max_gap > BLOCKED:
        raise ExerciseFailed(ex, f"the event loop was blocked for {got.max_gap:.2f} s: time.sleep inside the async "
                                 "generator stops every other request between events; use `await asyncio.sleep`")
    unawaited = [w for w in got.warnings if "never awaited" in w]
    if unawaited:
        raise ExerciseFailed(ex, f"{unawaited[0].split(': ', 1)[1].splitlines()[0]}: a missing `await`, so the "
                                 "generator never waited between events")
    if got.status != 200:
        raise ExerciseFailed(ex, f"the view answered HTTP {got.status}, expected 200")
    if not got.headers.get("content-type", "").startswith("text/event-stream"):
        raise ExerciseFailed(ex, f"the content type is {got.headers.get('content-type')!r}: server-sent events "
                                 "are `text/event-stream`")
    with_data = [(t, body) for t, body, _ in got.chunks if body.strip()]
    if len(with_data) < 2 or not got.chunks[0][2]:
        raise ExerciseFailed(ex, "the response was not streamed: it arrived as one body. Return a "
                                 "StreamingHttpResponse built from an async generator that yields each event")
    events = _events(got.body)
    expected = [{"left": n} for n in range(N_EVENTS - 1, -1, -1)]
    if events != expected:
        raise ExerciseFailed(ex, f"expected the events {expected}, each as `data: <json>` followed by a blank line; "
                                 f"got {events}")
    spread = with_data[-1][0] - with_data[0][0]
    if spread < EVERY:
        raise ExerciseFailed(ex, f"all {N_EVENTS} events arrived within {spread:.2f} s: wait `every` seconds "
                                 "between them with `await asyncio.sleep(every)`")
    passed(ex, f"{N_EVENTS} events streamed over {spread:.2f} s, one chunk each, and the loop never stalled")

