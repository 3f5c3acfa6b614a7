"""Checks for the exercises of chapter 05, async middleware.

Each check installs the learner's middleware for real: in `settings.MIDDLEWARE` (with `override_settings`),
under a freshly built `ASGIHandler` (Django loads middleware when the handler is built) and under Django's sync
test `Client` run in a worker thread (the WSGI path). Mistakes are told apart by what Django did with the
middleware: the "adapted" debug log it writes while building the chain, what the next middleware out was handed
(a coroutine function or not), the errors and the never-awaited warnings the requests produced, which thread ran
the learner's calls, and whether the event loop stalled.

The exercises are classes and decorated functions, whose stubs cannot be defined, so each check takes the
*name* the learner's cell defines and looks it up in the notebook's namespace.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import warnings
from dataclasses import dataclass, field
from inspect import iscoroutinefunction

from django.http import JsonResponse
from django.utils.decorators import sync_and_async_middleware

from sandbox.lab.checks.common import BLOCKED, ExerciseFailed, not_attempted, passed, watch_loop
from sandbox.lab.trace import where

# The learner's middleware is installed under this dotted path, whatever its name in the notebook.
LEARNER = None
LEARNER_PATH = f"{__name__}.LEARNER"
PROBE_PATH = f"{__name__}.outer_probe"
URLCONF = "sandbox.lab.checks.exercise_urls"


def _lookup(exercise: str, name: str):
    """The object the learner's cell defined as `name`; a missing one means the stub was not replaced yet."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is not None:
        namespace = shell.user_ns
    else:
        import __main__

        namespace = vars(__main__)
    if name not in namespace:
        raise not_attempted(exercise)
    return namespace[name]


# -- the probe: a well-behaved hybrid middleware put outside the learner's, to see what Django handed it -------
_probe = {"saw_async": None}


@sync_and_async_middleware
def outer_probe(get_response):
    _probe["saw_async"] = iscoroutinefunction(get_response)
    if iscoroutinefunction(get_response):

        async def middleware(request):
            return await get_response(request)

    else:

        def middleware(request):
            return get_response(request)

    return middleware


# -- running the learner's middleware ----------------------------------------------------------------------------
@dataclass
class Run:
    """What one round of requests did, in one mode (ASGI or WSGI)."""

    mode: str
    responses: list = field(default_factory=list)  # httpx or Django responses, or the exception raised instead
    errors: list[BaseException] = field(default_factory=list)  # exceptions raised inside the request
    adapted: list[str] = field(default_factory=list)  # Django's "... handler adapted for middleware ..." lines
    never_awaited: list[str] = field(default_factory=list)
    max_gap: float = 0.0
    seconds: float = 0.0

    @property
    def learner_adapted(self) -> list[str]:
        return [line for line in self.adapted if LEARNER_PATH in line]

    def all_errors(self) -> list[BaseException]:
        return self.errors + [r for r in self.responses if isinstance(r, BaseException)]

    def error_text(self) -> str:
        return " | ".join(dict.fromkeys(f"{type(e).__name__}: {e}" for e in self.all_errors()))


def _install(middleware, view) -> None:
    global LEARNER
    from sandbox.lab.checks import exercise_urls

    LEARNER = middleware
    exercise_urls.serve(view)


def _settings(stack: list[str]):
    from django.test import override_settings

    return override_settings(MIDDLEWARE=stack, ROOT_URLCONF=URLCONF)


def _raise_if_stub(exercise: str, run: Run) -> None:
    if any(isinstance(e, NotImplementedError) for e in run.all_errors()):
        raise not_attempted(exercise)


async def _asgi(exercise: str, middleware, view, requests: list[dict], *, probe: bool = False) -> Run:
    """Build a fresh ASGIHandler with the learner's middleware and send `requests` (httpx kwargs) at once."""
    from django.core.handlers.asgi import ASGIHandler
    from django.core.signals import got_request_exception

    from sandbox.lab.clients import client
    from sandbox.middleware_lab.probe import adapted_log

    run = Run("ASGI")
    _install(middleware, view)
    _probe["saw_async"] = None

    def record(sender, request=None, **kwargs):
        import sys

        run.errors.append(sys.exc_info()[1])

    with _settings(([PROBE_PATH] if probe else []) + [LEARNER_PATH]), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with adapted_log() as lines:
            try:
                handler = ASGIHandler()  # loads the middleware: this is where Django adapts it, or refuses it
            except NotImplementedError:
                raise not_attempted(exercise) from None
            except Exception as exc:
                raise ExerciseFailed(exercise, f"Django could not load the middleware: {type(exc).__name__}: "
                                               f"{exc}") from None
        run.adapted = list(lines)
        got_request_exception.connect(record, weak=False)
        try:
            async with client(handler, timeout=20) as c, watch_loop() as watch:
                start = time.perf_counter()
                run.responses = await asyncio.gather(*(c.get("/exercise/", **kw) for kw in requests),
                                                     return_exceptions=True)
                run.seconds = time.perf_counter() - start
        finally:
            got_request_exception.disconnect(record)
        run.max_gap = watch.max_gap
        gc.collect()  # a coroutine nobody awaited warns when it is collected
    run.never_awaited = [str(w.message) for w in caught if "never awaited" in str(w.message)]
    _raise_if_stub(exercise, run)
    return run


async def _wsgi(exercise: str, middleware, view, requests: list[dict]) -> Run:
    """The WSGI path: Django's sync test Client, in a worker thread, one request after another."""
    from django.test import Client

    from sandbox.middleware_lab.probe import adapted_log

    run = Run("WSGI")
    _install(middleware, view)

    def get_all() -> list:
        out = []
        for kw in requests:
            try:
                out.append(Client().get("/exercise/", **kw))
            except Exception as exc:  # the sync Client re-raises what the request raised
                out.append(exc)
        return out

    with _settings([LEARNER_PATH]), warnings.catch_warnings(record=True) as caught, adapted_log() as lines:
        warnings.simplefilter("always")
        async with asyncio.timeout(20):
            run.responses = await asyncio.to_thread(get_all)
        run.adapted = list(lines)
        gc.collect()
    run.never_awaited = [str(w.message) for w in caught if "never awaited" in str(w.message)]
    _raise_if_stub(exercise, run)
    return run


def _status(response) -> int | None:
    return getattr(response, "status_code", None)


def _header(response, name: str) -> str | None:
    headers = getattr(response, "headers", {})
    return headers.get(name)


def _fail_on_coroutines(exercise: str, run: Run, hint: str) -> None:
    """Errors or warnings about a coroutine: something returned a coroutine where a value belonged."""
    text = run.error_text()
    if run.never_awaited or "coroutine" in text:
        said = text or run.never_awaited[0]
        raise ExerciseFailed(exercise, f"under {run.mode}, a coroutine was never awaited ({said[:160]}). {hint}")


def _fail_on_errors(exercise: str, run: Run) -> None:
    if run.all_errors():
        raise ExerciseFailed(exercise, f"under {run.mode} the request failed: {run.error_text()[:200]}")
    bad = [r for r in run.responses if _status(r) != 200]
    if bad:
        raise ExerciseFailed(exercise, f"under {run.mode} the response was HTTP {_status(bad[0])}, expected 200")


# -- exercise 1: an async-only class that adds X-Duration ---------------------------------------------------------
VIEW_SECONDS = 0.3


async def _slow_view(request):
    await asyncio.sleep(VIEW_SECONDS)
    return JsonResponse({"ok": True, "thread": threading.current_thread().name})


async def async_only_class(name: str, n: int = 5) -> None:
    """Exercise 'async-only-class': an async-only middleware class that sets X-Duration (seconds)."""
    ex = "async-only-class"
    cls = _lookup(ex, name)
    if not isinstance(cls, type):
        raise ExerciseFailed(ex, f"{name} should be a class, got {type(cls).__name__}")
    run = await _asgi(ex, cls, _slow_view, [{}] * n, probe=True)
    if run.learner_adapted:
        said = run.learner_adapted[0]
        raise ExerciseFailed(ex, f"this middleware is not async-capable: Django adapted it ({said!r}) "
                                 "and runs it in a worker thread on every request, behind async_to_sync. Set the "
                                 "class attributes async_capable = True and sync_capable = False")
    if _probe["saw_async"] is False:
        raise ExerciseFailed(ex, "Django took your middleware for a sync callable: the middleware outside it was "
                                 "handed a plain function, called it without await and got a coroutine back. In "
                                 "__init__, call markcoroutinefunction(self) when get_response is a coroutine "
                                 "function (inspect.iscoroutinefunction(get_response))")
    _fail_on_coroutines(ex, run, "Is an `await` missing before self.get_response(request)?")
    if run.max_gap > BLOCKED:
        raise ExerciseFailed(ex, f"the event loop was blocked for {run.max_gap:.2f} s: a sync call (time.sleep, "
                                 "a sync client) inside async def __call__ stops every request")
    _fail_on_errors(ex, run)
    values = [_header(r, "X-Duration") for r in run.responses]
    if None in values:
        raise ExerciseFailed(ex, "the response has no X-Duration header: set response['X-Duration'] after "
                                 "awaiting self.get_response(request)")
    try:
        seconds = [float(v) for v in values]
    except ValueError:
        raise ExerciseFailed(ex, f"X-Duration should be a number of seconds, got {values[0]!r}") from None
    if min(seconds) < VIEW_SECONDS * 0.8:
        raise ExerciseFailed(ex, f"X-Duration says {min(seconds):.3f} s, but the view alone waits {VIEW_SECONDS} s: "
                                 "start the clock before awaiting self.get_response(request), stop it after")
    wsgi = await _wsgi(ex, cls, _slow_view, [{}])
    _fail_on_coroutines(ex, wsgi, "Under WSGI, Django calls a middleware that says sync_capable = True "
                                  "without await: set sync_capable = False, and Django adapts it instead")
    _fail_on_errors(ex, wsgi)
    passed(ex, f"{n} requests through {name} under ASGI took {run.seconds:.2f} s together; X-Duration "
               f"{min(seconds):.3f}-{max(seconds):.3f} s; Django did not adapt it (and under WSGI it adapted it, "
               "which works)")


# -- exercise 2: a hybrid function middleware that sets X-Request-ID ---------------------------------------------
async def _request_id_view(request):
    return JsonResponse({"request_id": getattr(request, "request_id", None)})


async def hybrid_function(name: str) -> None:
    """Exercise 'hybrid-function': one middleware factory serving ASGI and WSGI natively, setting X-Request-ID."""
    ex = "hybrid-function"
    factory = _lookup(ex, name)
    if not callable(factory) or isinstance(factory, type):
        raise ExerciseFailed(ex, f"{name} should be a middleware factory function, got {type(factory).__name__}")
    requests = [{"headers": {"X-Request-ID": "from-the-client"}}, {}, {}]
    run = await _asgi(ex, factory, _request_id_view, requests)
    if run.learner_adapted:
        said = run.learner_adapted[0]
        raise ExerciseFailed(ex, f"this middleware is not async-capable: Django adapted it ({said!r}), "
                                 "so under ASGI every request hops to a worker thread to run it. Decorate the "
                                 "factory with @sync_and_async_middleware")
    _fail_on_coroutines(ex, run, "Under ASGI Django hands the factory a coroutine function: the middleware it "
                                 "returns must be `async def` and `await get_response(request)`")
    _fail_on_errors(ex, run)
    _request_ids(ex, run, requests)
    wsgi = await _wsgi(ex, factory, _request_id_view, requests[:2])
    _fail_on_coroutines(ex, wsgi, "Under WSGI Django hands the factory a plain function and calls the middleware "
                                  "without await: return a sync `def middleware(request)` in that case (the sync "
                                  "branch, when iscoroutinefunction(get_response) is False)")
    _fail_on_errors(ex, wsgi)
    if wsgi.learner_adapted:
        raise ExerciseFailed(ex, f"under WSGI Django adapted your middleware ({wsgi.learner_adapted[0]!r}): it "
                                 "should say sync_capable too (@sync_and_async_middleware)")
    _request_ids(ex, wsgi, requests[:2])
    passed(ex, "X-Request-ID set under ASGI and WSGI, echoed when the client sent one; Django adapted nothing")


def _request_ids(ex: str, run: Run, requests: list[dict]) -> None:
    sent = [kw.get("headers", {}).get("X-Request-ID") for kw in requests]
    got = [_header(r, "X-Request-ID") for r in run.responses]
    if None in got:
        raise ExerciseFailed(ex, f"under {run.mode} the response has no X-Request-ID header")
    seen = [r.json()["request_id"] if hasattr(r, "json") else None for r in run.responses]
    if seen != got:
        raise ExerciseFailed(ex, f"under {run.mode} the view saw request.request_id = {seen[0]!r} but the header "
                                 f"says {got[0]!r}: set request.request_id before calling get_response")
    if got[0] != sent[0]:
        raise ExerciseFailed(ex, f"the client sent X-Request-ID: {sent[0]} but got back {got[0]!r}: reuse the "
                                 "incoming header (request.headers.get('X-Request-ID'))")
    fresh = got[1:]
    if len(set(fresh)) != len(fresh) or any(not v for v in fresh):
        raise ExerciseFailed(ex, f"requests without the header should each get a new id, got {fresh}")


# -- exercise 3: the document's middleware, fixed -------------------------------------------------------------------
AUDIT_SECONDS = 0.4


@dataclass
class AuditBook:
    entries: list[dict] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0


book = AuditBook()


async def audit(request) -> None:
    """The async audit call (think: an HTTP call to an audit service): waits AUDIT_SECONDS without blocking."""
    book.entries.append({"kind": "async", "path": request.path, "thread": threading.current_thread().name,
                         "where": where()})
    book.in_flight += 1
    book.max_in_flight = max(book.max_in_flight, book.in_flight)
    try:
        await asyncio.sleep(AUDIT_SECONDS)
    finally:
        book.in_flight -= 1


def audit_sync(request) -> None:
    """The same call with a sync client: blocks its thread for AUDIT_SECONDS."""
    book.entries.append({"kind": "sync", "path": request.path, "thread": threading.current_thread().name,
                         "where": where()})
    time.sleep(AUDIT_SECONDS)


async def _plain_view(request):
    return JsonResponse({"ok": True})


async def fix_document_middleware(name: str, n: int = 5) -> None:
    """Exercise 'fix-document-middleware': a MiddlewareMixin subclass, sync hook for WSGI, `__acall__` for ASGI."""
    ex = "fix-document-middleware"
    cls = _lookup(ex, name)
    if not isinstance(cls, type):
        raise ExerciseFailed(ex, f"{name} should be a class, got {type(cls).__name__}")
    book.__init__()
    run = await _asgi(ex, cls, _plain_view, [{}] * n)
    text = run.error_text()
    if "sync_to_async can only be applied to sync functions" in text:
        raise ExerciseFailed(ex, "process_request is still `async def`, the document's mistake: MiddlewareMixin's "
                                 "__acall__ runs process_request through sync_to_async, which refuses coroutine "
                                 "functions ('sync_to_async can only be applied to sync functions.'). Keep "
                                 "process_request sync and do the async work in `async def __acall__`")
    _fail_on_coroutines(ex, run, "Is an `await` missing before self.get_response(request) in __acall__?")
    on_loop = [e for e in book.entries if e["kind"] == "sync" and e["where"] == "event loop"]
    if on_loop or run.max_gap > BLOCKED:
        raise ExerciseFailed(ex, f"the event loop was blocked ({run.max_gap:.2f} s): audit_sync ran on the event "
                                 "loop's thread. Under ASGI, await the async audit(request) instead")
    _fail_on_errors(ex, run)
    in_thread = [e for e in book.entries if e["kind"] == "sync"]
    if in_thread:
        raise ExerciseFailed(ex, f"under ASGI the sync hook ran in a worker thread ({in_thread[0]['thread']}): "
                                 "MiddlewareMixin's own __acall__ wraps process_request in sync_to_async, one thread "
                                 "hop per hook. Override `async def __acall__` and `await audit(request)` there")
    async_entries = [e for e in book.entries if e["kind"] == "async"]
    if len(async_entries) != n:
        raise ExerciseFailed(ex, f"under ASGI audit(request) was awaited {len(async_entries)} time(s) for {n} "
                                 "requests: await it once per request in __acall__")
    if book.max_in_flight < n:
        raise ExerciseFailed(ex, f"only {book.max_in_flight} audit call(s) were in flight at once for {n} concurrent "
                                 "requests: something serialised them")
    book.__init__()
    wsgi = await _wsgi(ex, cls, _plain_view, [{}])
    _fail_on_coroutines(ex, wsgi, "Under WSGI, MiddlewareMixin calls process_request without await: keep it a "
                                  "plain `def` that calls audit_sync(request)")
    _fail_on_errors(ex, wsgi)
    if len(book.entries) != 1:
        raise ExerciseFailed(ex, f"under WSGI the request was audited {len(book.entries)} time(s), expected once: "
                                 "process_request (sync) should call audit_sync(request)")
    passed(ex, f"{n} ASGI requests awaited audit() together on the event loop ({run.seconds:.2f} s for {n} x "
               f"{AUDIT_SECONDS} s); under WSGI process_request audited the request in its own thread")
