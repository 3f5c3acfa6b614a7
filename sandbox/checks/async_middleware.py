"""Checks for the exercises of chapter 05, async middleware.

Each check installs the learner's middleware for real: in `settings.MIDDLEWARE`, under a freshly built
`ASGIHandler` (the harness's `serving`: Django loads middleware when the handler is built) and under Django's sync
test `Client` run in a worker thread (the WSGI path, kept here: `_wsgi`). Mistakes are told apart by what Django did
with the middleware: the "adapted" debug log it writes while building the chain, what the middleware outside the
learner's was handed (a coroutine function or not), the errors and never-awaited coroutines the requests produced,
which thread ran the learner's calls, the adapter hops they made, and whether the event loop stalled.

The requests overlap on purpose (`Stage`): the first one's view holds on until every other request has passed the
learner's middleware, so a value the middleware keeps on `self`, in a global or in a `threading.local` is
overwritten while the first request is still inside it. Every id, token and delay is new on every run.

The exercises are classes and decorated functions, whose stubs cannot be defined, so each check takes the *name*
the learner's cell defines and looks it up in the notebook's namespace.
"""

from __future__ import annotations

import asyncio
import random
import re
import secrets
import time
import traceback
import uuid
from dataclasses import dataclass, field
from inspect import iscoroutinefunction

from django.http import JsonResponse
from django.test import Client, override_settings
from django.utils.decorators import sync_and_async_middleware
from django.utils.deprecation import MiddlewareMixin

from sandbox.checks import exercise_urls
from sandbox.checks.common import BLOCKED, ExerciseFailed, not_attempted, passed
from sandbox.checks.givens import async_middleware as given

# the chapter's givens, re-exported: the notebook calls `check.audit` and `check.audit_sync`
from sandbox.checks.givens.async_middleware import (  # noqa: F401
    AUDIT_SECONDS,
    TOGETHER_DEADLINE,
    AuditBook,
    audit,
    audit_sync,
)
from sandbox.checks.harness import (
    Requirements,
    exercise_check,
    expect_all_awaited,
    expect_not_blocked,
    learner_class,
    learner_frames,
    learner_object,
    meaning,
    never_awaited,
    serving,
)
from sandbox.lab.experiments.middleware_probe import adapted_log
from sandbox.lab.trace import count_hops

REQUIREMENTS = {
    "async-only-class": Requirements("1c1f6a47c6f1", (
        ("Write a class `DurationMiddleware`", "the name is looked up in the notebook; it must be a class"),
        ("an async-only middleware; under ASGI it must not be adapted",
         "Django's 'adapted' debug log, captured while a fresh ASGIHandler loads it: no line for it"),
        ("the middleware outside it must be handed a coroutine function (Django sees it is async without calling it)",
         "a hybrid probe middleware outside the learner's records whether its get_response is a coroutine function"),
        ("that awaits the rest of the stack",
         "no coroutine left unawaited, no request failing on a coroutine, every response HTTP 200; no loop stall"),
        ("adds an `X-Duration` response header with the seconds that took",
         "every response has the header; its value is at least the time that request's own view took (measured "
         "inside the view) and at most the time the whole request took, seen from the client"),
        ("overlapping requests, a different wait for each: every X-Duration covers its own request",
         "random waits per run; the first request stays in the view until the others have passed the middleware, "
         "so a start time kept on self or in a global is overwritten and its X-Duration comes out too short"),
        ("formatted like f\"{seconds:.3f}\"", "the header must be a number with exactly three decimals"),
        ("under WSGI, Django adapts an async-only middleware on purpose",
         "one request through the sync test Client: Django must log that it adapted the middleware (so it does "
         "not say sync_capable), and the answer must be HTTP 200 with a right X-Duration"),
    )),
    "hybrid-function": Requirements("71bf2f7487f6", (
        ("a middleware factory function `request_id_middleware`", "looked up by name; a function, not a class"),
        ("works natively in both modes (Django must adapt it in neither)",
         "no 'adapted' log line for it under ASGI nor under WSGI; under ASGI the probe outside it is handed a "
         "coroutine function (the factory returned an async middleware)"),
        ("under ASGI get_response is a coroutine function; under WSGI a plain function",
         "no coroutine left unawaited and no request failing in either mode; every response HTTP 200"),
        ("take the id from the request's X-Request-ID header when the client sent one",
         "requests with a random id per run in the header must get exactly that id back"),
        ("otherwise make a new one with uuid.uuid4().hex",
         "requests without the header get 32 hex digits of a version-4 UUID, a different one for each request"),
        ("store it as request.request_id before the view runs",
         "the view records request.request_id when it starts: it must equal the response's header"),
        ("send it back in the X-Request-ID response header", "every response carries the header"),
        ("overlapping requests: each response carries its own request's id",
         "the first request stays in its view until the others have passed the middleware: an id kept in the "
         "factory, a global or a threading.local shows up in another request's response"),
    )),
    "fix-document-middleware": Requirements("1cfd3279f363", (
        ("Write `AuditMiddleware`, which stays a MiddlewareMixin subclass",
         "looked up by name; must be a class and a subclass of MiddlewareMixin"),
        ("audits every request before the view runs; each request audited once",
         "each request names itself with a random token; the audit functions record the token, when they started "
         "and finished; the view records when it started: one audit per token, finished before its view began"),
        ("under WSGI, call the sync audit_sync(request)",
         "two requests, one at a time, through the sync test Client: each audited by audit_sync, once, before "
         "its view, and not by the async audit"),
        ("under ASGI, await audit(request), on the event loop",
         "four requests at once: each audited by the async audit on the loop's thread; no coroutine left "
         "unawaited; the loop never stalls (audit_sync on the loop would block it)"),
        ("with no thread hop for your code",
         "every sync_to_async / async_to_sync call is counted: none may run the learner's class or an audit "
         "function; audit_sync must not run at all under ASGI"),
        ("the document's async def process_request fails on every request",
         "the refusal of sync_to_async ('can only be applied to sync functions') is named as that mistake"),
        ("under ASGI the audits of requests sent together must overlap",
         "the async audit counts the audits in flight: all four at once (it waits, with a deadline, for the "
         "others before its 0.4 s)"),
    )),
}

def __getattr__(name: str):
    """`check.book` is the given's current one: the check starts a new book for each round of audits."""
    if name == "book":
        return given.book
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# The learner's middleware is installed under this dotted path, whatever its name in the notebook.
LEARNER = None
LEARNER_PATH = f"{__name__}.LEARNER"
PROBE_PATH = f"{__name__}.outer_probe"
TOLERANCE = 0.0006  # seconds: a value formatted with three decimals is within 0.0005 s of what was measured
GAP = 0.15  # seconds between the first request reaching its view and the others being sent


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


# -- overlapping requests ------------------------------------------------------------------------------------------
def _token() -> str:
    return secrets.token_hex(4)


class Stage:
    """The view the checks serve, and the requests sent to it; each request names itself with `?r=<token>`.

    With `hold`, the first request's view waits until every other request has reached its own view (or `hold`
    seconds went by: `held_out`), so all of them are inside the learner's middleware at once. The view records,
    per token, when it started and finished and the `request.request_id` it saw; it keeps nothing else (no
    response, no exception), so a finished stage holds on to no coroutine of the learner's.
    """

    def __init__(self, tokens: list[str], delays: dict[str, float] | None = None, hold: float | None = 5.0):
        self.tokens, self.first = list(tokens), tokens[0]
        self.delays, self.hold = delays or {}, hold
        self.entered: dict[str, float] = {}
        self.left: dict[str, float] = {}
        self.saw: dict[str, object] = {}
        self.held_out = False
        self.reached = 0  # how many requests had reached the view when the first one stopped waiting for them

    async def view(self, request):
        token = request.GET.get("r", "")
        start = time.perf_counter()
        self.entered.setdefault(token, start)
        self.saw[token] = getattr(request, "request_id", None)
        if token == self.first and self.hold:
            deadline = start + self.hold
            while not all(t in self.entered for t in self.tokens) and time.perf_counter() < deadline:
                await asyncio.sleep(0.01)
            self.reached = sum(t in self.entered for t in self.tokens)
            self.held_out = self.reached < len(self.tokens)
        await asyncio.sleep(self.delays.get(token, 0))
        self.left[token] = time.perf_counter()
        return JsonResponse({"r": token})

    def view_seconds(self, token: str) -> float | None:
        if token in self.entered and token in self.left:
            return self.left[token] - self.entered[token]
        return None

    async def send(self, client, headers: dict[str, dict] | None = None, *, staggered: bool = True) -> dict:
        """Send one request per token; staggered: the first, then (once it is in its view, and GAP seconds
        later) all the others at once. {token: Answer}."""
        headers = headers or {}

        async def one(token: str) -> Answer:
            start = time.perf_counter()
            try:
                response = await client.get(f"/exercise/?r={token}", headers=headers.get(token) or {})
            except Exception as exc:  # the handler itself failed: no response at all
                return Answer(None, _describe(exc), time.perf_counter() - start)
            return Answer(response, None, time.perf_counter() - start)

        if not staggered:
            return dict(zip(self.tokens, await asyncio.gather(*(one(t) for t in self.tokens)), strict=True))
        first = asyncio.create_task(one(self.first))
        deadline = time.perf_counter() + 15
        while self.first not in self.entered and not first.done() and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(GAP)
        rest = await asyncio.gather(*(one(t) for t in self.tokens[1:]))
        return {self.first: await first, **dict(zip(self.tokens[1:], rest, strict=True))}


@dataclass
class Answer:
    response: object  # an httpx or Django response, or None when the request raised instead
    error: str | None  # what it raised, described
    seconds: float  # from the client's side

    @property
    def status(self) -> int | None:
        return getattr(self.response, "status_code", None)

    def header(self, name: str) -> str | None:
        return getattr(self.response, "headers", {}).get(name)


@dataclass
class Run:
    """What one round of requests did, in one mode (ASGI or WSGI)."""

    mode: str
    answers: dict = field(default_factory=dict)  # {token: Answer}
    errors: list[str] = field(default_factory=list)  # what the requests raised inside Django, described
    adapted: list[str] = field(default_factory=list)  # Django's "... handler adapted for middleware ..." lines
    never_awaited: list[str] = field(default_factory=list)
    max_gap: float = 0.0

    @property
    def learner_adapted(self) -> list[str]:
        return [line for line in self.adapted if LEARNER_PATH in line and "adapted" in line]

    def all_errors(self) -> list[str]:
        return list(dict.fromkeys(self.errors + [a.error for a in self.answers.values() if a.error]))


def _fail_if_serialised(ex: str, stage: Stage) -> None:
    if stage.held_out:
        got, n = stage.reached, len(stage.tokens)
        raise ExerciseFailed(ex, f"the requests did not overlap: {got} of {n} reached the view while the first was "
                                 "still in it. Something in your middleware makes requests wait for each other")


def _describe(exc: BaseException) -> str:
    """An exception as feedback: what it is, where in the learner's code it was raised (never their line), and what
    it means (after a " | ", which the coroutine verdict leaves out: it says what it means itself)."""
    frames = learner_frames(exc)
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if frames:
        text += f", raised in your {frames[-1].name}() (line {frames[-1].lineno})"
    why = meaning(exc)
    if isinstance(exc, KeyError):
        why = ("A KeyError is a lookup of a key that is not there: a header the client did not send, read with [...] "
               "instead of .get()?")
    return f"{text} | {why}" if why else text


def _install(middleware, view) -> None:
    global LEARNER
    LEARNER = middleware
    exercise_urls.serve(view)


async def _asgi(exercise: str, middleware, stage: Stage, headers: dict | None = None, *,
                staggered: bool = True) -> Run:
    """The ASGI path: the harness's `serving`, the probe outside the learner's middleware."""
    global LEARNER
    LEARNER = middleware
    _probe["saw_async"] = None
    run = Run("ASGI")
    async with serving(exercise, stage.view, middleware=[PROBE_PATH, LEARNER_PATH], timeout=15) as served:
        run.answers = await stage.send(served.client, headers, staggered=staggered)
    run.errors = [_describe(e) for e in served.errors if e is not None]
    run.adapted, run.never_awaited, run.max_gap = served.adapted, served.never_awaited, served.max_gap
    return run


async def _wsgi(exercise: str, middleware, view, tokens: list[str], headers: dict | None = None) -> Run:
    """The WSGI path: Django's sync test Client, in a worker thread, one request after another. What a request
    raised is described, and its frames cleared, inside the never-awaited capture: nothing of it outlives it."""
    run = Run("WSGI")
    headers = headers or {}
    _install(middleware, view)

    def get_all() -> dict:
        out = {}
        for token in tokens:
            start = time.perf_counter()
            try:
                kw = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in (headers.get(token) or {}).items()}
                response = Client().get(f"/exercise/?r={token}", **kw)
            except NotImplementedError:
                raise
            except Exception as exc:  # the sync Client re-raises what the request raised
                out[token] = Answer(None, _describe(exc), time.perf_counter() - start)
                traceback.clear_frames(exc.__traceback__)
                continue
            out[token] = Answer(response, None, time.perf_counter() - start)
        return out

    with override_settings(MIDDLEWARE=[LEARNER_PATH], ROOT_URLCONF=exercise_urls.__name__), \
            never_awaited() as names, adapted_log() as lines:
        try:
            async with asyncio.timeout(20):
                run.answers = await asyncio.to_thread(get_all)
        except NotImplementedError:
            raise not_attempted(exercise) from None
        except TimeoutError:
            raise ExerciseFailed(exercise, "under WSGI a request through your middleware did not finish within 20 s: "
                                           "does it wait for something that never comes?") from None
        run.adapted = list(lines)
    run.never_awaited = names
    return run


# -- the verdicts this chapter shares -------------------------------------------------------------------------------
def _fail_on_coroutines(exercise: str, run: Run, hint: str) -> None:
    """A coroutine never awaited, or used as a value (a response): an `await` is missing, or Django called an async
    callable as if it were sync."""
    said = [e.split(" | ")[0] for e in run.all_errors() if "coroutine" in e.split(" | ")[0]]
    expect_all_awaited(exercise, run.never_awaited, hint, said=said[0] if said else None, limit=200,
                       wording="under {mode}, a coroutine was never awaited ({names}). {hint}", mode=run.mode)


def _fail_on_errors(exercise: str, run: Run) -> None:
    errors = run.all_errors()
    if errors:
        text, _, why = errors[0].partition(" | ")
        raise ExerciseFailed(exercise, f"under {run.mode} a request failed: {text[:240]}. {why}".strip())
    bad = [a for a in run.answers.values() if a.status != 200]
    if bad:
        raise ExerciseFailed(exercise, f"under {run.mode} a response was HTTP {bad[0].status}, expected 200: your "
                                       "middleware should hand back the response the rest of the stack gave")


# -- exercise 1: an async-only class that adds X-Duration ---------------------------------------------------------
DURATION = re.compile(r"^\d+\.\d{3}$")


@exercise_check("async-only-class")
async def async_only_class(name: str, n: int = 5) -> None:
    """Exercise 'async-only-class': an async-only middleware class that sets X-Duration (seconds)."""
    ex = "async-only-class"
    cls = learner_class(ex, name)
    tokens = [_token() for _ in range(n)]
    delays = {t: round(random.uniform(0.15, 0.35), 3) for t in tokens}
    stage = Stage(tokens, delays)
    run = await _asgi(ex, cls, stage)
    if run.learner_adapted:
        raise ExerciseFailed(ex, f"this middleware is not async-capable: Django adapted it ({run.learner_adapted[0]!r})"
                                 " and runs it in a worker thread on every request, behind async_to_sync. The class "
                                 "must say it can only be awaited: the async_capable and sync_capable attributes")
    if _probe["saw_async"] is False:
        raise ExerciseFailed(ex, "Django took your middleware for a sync callable: the middleware outside it was "
                                 "handed a plain function, called it without await and got a coroutine back. In "
                                 "__init__, mark the instance with inspect.markcoroutinefunction when get_response is "
                                 "a coroutine function")
    _fail_on_coroutines(ex, run, "Is an `await` missing where your __call__ calls the rest of the stack?")
    expect_not_blocked(ex, run.max_gap, "a sync call (time.sleep, a sync client) inside async def __call__ stops "
                                        "every request")
    _fail_on_errors(ex, run)
    _fail_if_serialised(ex, stage)
    values = {t: a.header("X-Duration") for t, a in run.answers.items()}
    _durations(ex, run, values, stage)
    wsgi_token = _token()
    wsgi_stage = Stage([wsgi_token], {wsgi_token: round(random.uniform(0.1, 0.2), 3)}, hold=None)
    wsgi = await _wsgi(ex, cls, wsgi_stage.view, [wsgi_token])
    _fail_on_coroutines(ex, wsgi, "Under WSGI, Django calls a middleware that says it can run sync without await: "
                                  "an async-only middleware says sync_capable = False, and Django adapts it instead")
    _fail_on_errors(ex, wsgi)
    if not wsgi.learner_adapted:
        raise ExerciseFailed(ex, "under WSGI Django did not adapt your middleware: it says it can run sync "
                                 "(sync_capable), so it is not async-only. Say sync_capable = False and let Django "
                                 "adapt it")
    _durations(ex, wsgi, {wsgi_token: wsgi.answers[wsgi_token].header("X-Duration")}, wsgi_stage)
    seconds = [float(v) for v in values.values()]
    passed(ex, f"{n} overlapping requests through {name} under ASGI, each X-Duration ({min(seconds):.3f}-"
               f"{max(seconds):.3f} s) covering its own view and within its request; Django did not adapt it (and "
               "under WSGI it adapted it, which works)")


def _durations(ex: str, run: Run, values: dict[str, str | None], stage: Stage) -> None:
    if any(v is None for v in values.values()):
        raise ExerciseFailed(ex, f"under {run.mode} a response has no X-Duration header: set it on the response "
                                 "after the rest of the stack has answered")
    for value in values.values():
        if not DURATION.match(value.strip()):
            raise ExerciseFailed(ex, f"X-Duration should be seconds formatted with three decimals (like 0.250), got "
                                     f"{value!r}")
    for token, value in values.items():
        seconds, answer = float(value), run.answers[token]
        if seconds > answer.seconds + TOLERANCE:
            raise ExerciseFailed(ex, f"under {run.mode} X-Duration says {value} s, more than the whole request took "
                                     f"from the client's side ({answer.seconds:.3f} s): is it in seconds (not "
                                     "milliseconds), and does the clock start when the request comes in?")
    short = {t: (v, stage.view_seconds(t)) for t, v in values.items()
             if stage.view_seconds(t) is not None and float(v) < stage.view_seconds(t) - TOLERANCE}
    if stage.first in short and len(short) < len(values) and stage.hold:
        value, inner = short[stage.first]
        raise ExerciseFailed(ex, f"the request that overlapped the others got X-Duration {value} s, but its own view "
                                 f"took {inner:.3f} s: its clock was restarted by another request. A value kept on "
                                 "self (or in a global) is shared by every request in flight: keep the start time in a "
                                 "local variable of __call__")
    if short:
        value, inner = next(iter(short.values()))
        raise ExerciseFailed(ex, f"under {run.mode} X-Duration says {value} s, but the view alone took {inner:.3f} s "
                                 "for that request: start the clock before you await the rest of the stack, and stop "
                                 "it after")


# -- exercise 2: a hybrid function middleware that sets X-Request-ID ---------------------------------------------
HEX32 = re.compile(r"^[0-9a-f]{32}$")


@exercise_check("hybrid-function")
async def hybrid_function(name: str) -> None:
    """Exercise 'hybrid-function': one middleware factory serving ASGI and WSGI natively, setting X-Request-ID."""
    ex = "hybrid-function"
    factory = learner_object(ex, name)
    if not callable(factory) or isinstance(factory, type):
        raise ExerciseFailed(ex, f"{name} should be a middleware factory function, got {type(factory).__name__}")
    tokens = [_token() for _ in range(4)]
    sent = {tokens[0]: f"req-{secrets.token_hex(6)}", tokens[1]: f"req-{secrets.token_hex(6)}"}
    headers = {t: {"X-Request-ID": v} for t, v in sent.items()}
    stage = Stage(tokens)
    run = await _asgi(ex, factory, stage, headers)
    if run.learner_adapted:
        raise ExerciseFailed(ex, f"this middleware is not async-capable: Django adapted it ({run.learner_adapted[0]!r})"
                                 ", so under ASGI every request hops to a worker thread to run it. Decorate the "
                                 "factory with @sync_and_async_middleware")
    _fail_on_coroutines(ex, run, "Under ASGI Django hands the factory a coroutine function: the middleware it returns "
                                 "must be `async def` and await the next handler")
    if _probe["saw_async"] is False:
        raise ExerciseFailed(ex, "under ASGI your factory returned a plain function (def): Django handed it a "
                                 "coroutine function as get_response, and expects an async middleware back")
    expect_not_blocked(ex, run.max_gap, "a sync call (time.sleep, a sync client) in the async branch stops every "
                                        "request")
    _fail_on_errors(ex, run)
    _fail_if_serialised(ex, stage)
    _request_ids(ex, run, stage, sent)
    wsgi_tokens = [_token() for _ in range(3)]
    wsgi_sent = {wsgi_tokens[0]: f"req-{secrets.token_hex(6)}"}
    wsgi_stage = Stage(wsgi_tokens, hold=None)
    wsgi = await _wsgi(ex, factory, wsgi_stage.view, wsgi_tokens,
                       {t: {"X-Request-ID": v} for t, v in wsgi_sent.items()})
    _fail_on_coroutines(ex, wsgi, "Under WSGI Django hands the factory a plain function and calls the middleware "
                                  "without await: return a plain `def` middleware in that case (the branch for a "
                                  "get_response that is not a coroutine function)")
    _fail_on_errors(ex, wsgi)
    if wsgi.learner_adapted:
        raise ExerciseFailed(ex, f"under WSGI Django adapted your middleware ({wsgi.learner_adapted[0]!r}): it should "
                                 "say it can run sync too (@sync_and_async_middleware)")
    _request_ids(ex, wsgi, wsgi_stage, wsgi_sent)
    passed(ex, "X-Request-ID set under ASGI and WSGI, each response with its own request's id (the client's when it "
               "sent one, a new uuid4 otherwise) while requests overlapped; Django adapted nothing")


def _request_ids(ex: str, run: Run, stage: Stage, sent: dict[str, str]) -> None:
    got = {t: a.header("X-Request-ID") for t, a in run.answers.items()}
    if any(v is None for v in got.values()):
        raise ExerciseFailed(ex, f"under {run.mode} a response has no X-Request-ID header: send the id back on the "
                                 "response")
    for token in stage.tokens:
        mine, seen = got[token], stage.saw.get(token)
        expected = sent.get(token)
        others = {v for t, v in got.items() if t != token} | {v for t, v in sent.items() if t != token}
        if expected is not None and mine != expected and mine in others:
            raise ExerciseFailed(ex, f"under {run.mode} a request that sent X-Request-ID: {expected} got back "
                                     f"{mine}, another request's id: the id was kept where every request in flight "
                                     "shares it (a variable of the factory, a global, a threading.local). Keep it on "
                                     "the request")
        if seen is None:
            raise ExerciseFailed(ex, f"under {run.mode} the view saw no request.request_id: set it on the request "
                                     "before you call the rest of the stack")
        if seen != mine:
            raise ExerciseFailed(ex, f"under {run.mode} the view saw request.request_id = {seen!r} but the response "
                                     f"header says {mine!r}: send back the id you stored on the request")
        if expected is not None and mine != expected:
            raise ExerciseFailed(ex, f"under {run.mode} the client sent X-Request-ID: {expected} but got back "
                                     f"{mine!r}: when the client sends an id, reuse it")
    fresh = [got[t] for t in stage.tokens if t not in sent]
    for value in fresh:
        if not HEX32.match(value) or uuid.UUID(value).version != 4:
            raise ExerciseFailed(ex, f"under {run.mode} a request without the header got the id {value!r}: a new id "
                                     "should be uuid.uuid4().hex, 32 hex digits")
    if len(set(fresh)) != len(fresh):
        raise ExerciseFailed(ex, f"under {run.mode} two requests without the header got the same id ({fresh[0]}): "
                                 "each request needs a new one, made when the request comes in")


# -- exercise 3: the document's middleware, fixed -------------------------------------------------------------------
@exercise_check("fix-document-middleware")
async def fix_document_middleware(name: str, n: int = 4) -> None:
    """Exercise 'fix-document-middleware': a MiddlewareMixin subclass, sync hook for WSGI, `__acall__` for ASGI."""
    ex = "fix-document-middleware"
    cls = learner_class(ex, name)
    if not issubclass(cls, MiddlewareMixin):
        raise ExerciseFailed(ex, f"{name} should stay a subclass of MiddlewareMixin, as the document's class is: the "
                                 "task is to fix it, not to replace it with another shape")
    given.book = AuditBook(expected=n)  # a new round: audits an earlier answer left running keep to their own book
    tokens = [_token() for _ in range(n)]
    stage = Stage(tokens, hold=None)
    with count_hops() as hops:
        run = await _asgi(ex, cls, stage, staggered=False)
    asgi_book, given.book = given.book, AuditBook()
    if any("can only be applied to sync functions" in e for e in run.all_errors()):
        raise ExerciseFailed(ex, "process_request is still `async def`, the document's mistake: MiddlewareMixin's "
                                 "own __acall__ runs process_request through sync_to_async, which refuses coroutine "
                                 "functions ('sync_to_async can only be applied to sync functions.'). Keep "
                                 "process_request sync and do the async work in `async def __acall__`")
    _fail_on_coroutines(ex, run, "Is an `await` missing in __acall__, before the audit or before the rest of the "
                                 "stack?")
    sync_runs = [e for e in asgi_book.entries if e["kind"] == "sync" and e["token"] in tokens]
    if any(e["where"] == "event loop" for e in sync_runs) or run.max_gap > BLOCKED:
        raise ExerciseFailed(ex, f"the event loop was blocked ({run.max_gap:.2f} s): audit_sync ran on the event "
                                 "loop's thread. Under ASGI, await the async audit instead")
    _fail_on_errors(ex, run)
    mine = (cls.__qualname__, "audit")
    hopped = list(dict.fromkeys(f for f in hops.to_thread + hops.to_loop if f.startswith(mine)))
    if sync_runs or hopped:
        ran = f"{sync_runs[0]['kind']} audit in {sync_runs[0]['thread']}" if sync_runs else ", ".join(hopped)
        raise ExerciseFailed(ex, f"under ASGI your code ran in a worker thread ({ran}): MiddlewareMixin's own "
                                 "__acall__ wraps process_request in sync_to_async, one thread hop per hook. Override "
                                 "`async def __acall__` and await the async audit there")
    _audited(ex, run, stage, "async", asgi_book)
    if asgi_book.gave_up or asgi_book.max_in_flight < n:
        most = asgi_book.max_in_flight
        raise ExerciseFailed(ex, f"only {most} audit(s) were in flight at once for {n} requests sent together: "
                                 "something in your middleware makes them wait for each other")
    wsgi_tokens = [_token() for _ in range(2)]
    wsgi_stage = Stage(wsgi_tokens, hold=None)
    wsgi = await _wsgi(ex, cls, wsgi_stage.view, wsgi_tokens)
    _fail_on_coroutines(ex, wsgi, "Under WSGI, MiddlewareMixin calls process_request without await: keep it a plain "
                                  "`def` that calls audit_sync")
    _fail_on_errors(ex, wsgi)
    _audited(ex, wsgi, wsgi_stage, "sync", given.book)
    passed(ex, f"{n} ASGI requests awaited audit() together on the event loop, each before its view, with no thread "
               "hop of yours; under WSGI process_request audited each request with audit_sync before its view")


def _audited(ex: str, run: Run, stage: Stage, kind: str, seen: AuditBook) -> None:
    """Each request audited once, by the audit of its mode, finished before its view started."""
    right = "the async audit, awaited" if kind == "async" else "audit_sync, in process_request"
    for token in stage.tokens:
        entries = seen.of(token)
        other = [e for e in entries if e["kind"] != kind]
        if other:
            raise ExerciseFailed(ex, f"under {run.mode} a request was audited by {other[0]['kind']} audit: under "
                                     f"{run.mode} use {right}")
        if not entries:
            raise ExerciseFailed(ex, f"under {run.mode} a request was not audited at all: audit every request with "
                                     f"{right}")
        if len(entries) > 1:
            raise ExerciseFailed(ex, f"under {run.mode} a request was audited {len(entries)} times: once is enough")
        end, began = entries[0]["end"], stage.entered.get(token)
        if began is not None and (end is None or end > began):
            raise ExerciseFailed(ex, f"under {run.mode} a request's view ran before its audit had finished: audit "
                                     "before the view runs, and wait for the audit to finish first")
