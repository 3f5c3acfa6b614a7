"""The one harness every chapter's checks run on.

- `exercise_check(id)`: the boundary around one check. It releases what an earlier failed cell left alive (the
  exception IPython keeps, with every coroutine its frames hold) before the check starts, so one exercise's
  failure can never change another's verdict; it reports an exception from the check's own code as the check's
  fault, and one from the learner's code as theirs, explained.
- `serving(...)`: the learner's view (or middleware) served through a fresh Django ASGI handler, with what it
  raised, the coroutines it never awaited and the event loop's longest stall recorded; `exchange` sends one request
  message by message (streams, disconnects).
- `call(...)`: call the learner's function with a deadline; a stub is "not attempted".
- `Kept`: a process kept for the kernel and started again when it died (the upstream, Redis, PostgreSQL).
- The recurring verdicts: `expect_status`, `expect_content_type`, `expect_json`, `expect_not_blocked`,
  `expect_all_awaited`, `learner_object`.
- Reading the learner's mistakes: which frames are theirs (`is_learner_file`, `learner_frames`), what an exception
  means (`meaning`), what ran the sync ORM on the event loop (`explain_sync_only`), which coroutines were never
  awaited (`never_awaited`, `names_in`).
- `Requirements`: each check module's REQUIREMENTS table, {exercise id: what its text asks and what enforces it}.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import inspect
import json
import re
import sys
import sysconfig
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import asgiref
import django
from django.core.handlers.asgi import ASGIHandler
from django.core.signals import got_request_exception
from django.db.models import Model
from django.db.models.query import QuerySet
from django.test import override_settings

from sandbox.checks import exercise_urls
from sandbox.checks.common import (
    BLOCKED,
    ExerciseFailed,
    not_attempted,
    reject_coroutine,
    watch_loop,
)
from sandbox.lab.clients import client
from sandbox.lab.experiments.middleware_probe import adapted_log
from sandbox.lab.servers import start_upstream
from sandbox.lab.services import start_redis

NEVER_AWAITED = re.compile(r"coroutine '([^']+)' was never awaited")


@dataclass(frozen=True)
class Requirements:
    """What an exercise's text asks, sentence by sentence, and what in its check enforces each.

    `task` is the fingerprint (`exercises.task_hash`) of the text the table was written from: a test fails when the
    exercise's text changes and its table does not.
    """

    task: str
    rows: tuple[tuple[str, str], ...]


# --- isolation and fault ---------------------------------------------------------------------------------------

def release_earlier_failures() -> None:
    """Let go of the exception an earlier cell raised, then collect the garbage with warnings silenced.

    IPython keeps the last exception (sys.last_exc and friends, and the last cell's result) until another cell
    fails; its frames can hold a coroutine an earlier answer never awaited, whose warning would otherwise fire in
    the middle of the next check and blame the wrong exercise.

    What survives is then frozen (gc.freeze), so that the collections of this check and the next scan only what
    was made since: a full collection costs about 75 ms in a kernel that has run a whole chapter, a few ms after.
    """
    for name in ("last_exc", "last_type", "last_value", "last_traceback"):
        if hasattr(sys, name):
            setattr(sys, name, None)
    with contextlib.suppress(Exception):
        from IPython import get_ipython

        shell = get_ipython()
        result = getattr(shell, "last_execution_result", None)
        if result is not None:
            result.error_before_exec = result.error_in_exec = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gc.collect()
    gc.freeze()


OWN_CODE = ("/sandbox/", "/site-packages/", "/lib/python")  # the course's own packages (checks included), installed
#                                                            packages, Python's own library


def is_cell_file(filename: str) -> bool:
    """Is code from `filename` a notebook cell's: `<ipython-input-...>`, or the file ipykernel names a cell after?
    Not the `<string>` of a method that dataclasses generate, nor `<frozen ...>`."""
    return ((filename.startswith("<") and filename != "<string>" and not filename.startswith("<frozen"))
            or "ipykernel" in filename)


def is_learner_file(filename: str) -> bool:
    """Is code from `filename` the learner's: a notebook cell, or a module outside the course's own packages,
    the installed ones and Python's (OWN_CODE)?"""
    return is_cell_file(filename) or (not filename.startswith("<") and not any(p in filename for p in OWN_CODE))


def learner_frames(exc: BaseException) -> list[traceback.FrameSummary]:
    """The frames of a traceback that are the learner's code (`is_learner_file`), outermost first."""
    return [f for f in traceback.extract_tb(exc.__traceback__) if is_learner_file(f.filename)]


def explain(exercise: str, exc: BaseException, what: str = "your code") -> Exception:
    """An exception that escaped a check, as feedback: the learner's when their code raised it (where, by function
    and line, never quoting the line: it could be the solution's), else the check's own fault."""
    mine = learner_frames(exc)
    if not mine:
        return RuntimeError(f"The check of {exercise!r} itself failed ({type(exc).__name__}: {exc}). This is the "
                            "course's fault, not yours: please report it.")
    said = str(exc).strip()
    raised = f"{type(exc).__name__}: {said[:160]}" if said else type(exc).__name__
    return ExerciseFailed(exercise, f"{what} raised {raised} in {mine[-1].name}() (line {mine[-1].lineno}). "
                                    f"{meaning(exc)}".strip())


def close_coroutines(exc: BaseException) -> None:
    """Close the never-started coroutines the frames of `exc` hold: the feedback already says they were never
    awaited, and their warning would otherwise come later, under another exercise's check."""
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        for value in frame.f_locals.values():
            if inspect.iscoroutine(value) and inspect.getcoroutinestate(value) == inspect.CORO_CREATED:
                value.close()


def meaning(exc: BaseException) -> str:
    """What the usual exceptions mean in async Django, in a sentence."""
    name = type(exc).__name__
    text = str(exc)
    if name == "SynchronousOnlyOperation":
        return ("Django's sync ORM (or another sync-only API) was called on the event loop's thread: use its async "
                "twin, or wrap the sync code in sync_to_async.")
    if "coroutine" in text:
        return "A coroutine was used as a value: an `await` is missing where it was created."
    if name in ("TimeoutError", "CancelledError"):
        return "It did not finish in time: something waited that should not have (a missing `await`, a lock held)."
    if name == "RuntimeError" and "event loop" in text:
        return "async_to_sync cannot run in a thread that already runs an event loop: await the coroutine instead."
    return ""


# --- what ran the sync ORM on the event loop's thread -------------------------------------------------------------

DJANGO_ROOT, ASGIREF_ROOT = str(Path(django.__file__).parent), str(Path(asgiref.__file__).parent)
STDLIB = sysconfig.get_paths()["stdlib"]


def sync_only_head(orm: str = "the ORM") -> str:
    """How an explanation of a SynchronousOnlyOperation starts."""
    return f"SynchronousOnlyOperation: {orm} was called from the event loop's thread. "


def django_tail(exc: BaseException) -> list:
    """The Django frames after the last frame that is not Django's, asgiref's or Python's (the learner's code, or
    code it called): the way into Django that failed."""
    frames = [frame for frame, _ in traceback.walk_tb(exc.__traceback__)]
    last = max((i for i, f in enumerate(frames)
                if not f.f_code.co_filename.startswith((DJANGO_ROOT, ASGIREF_ROOT, STDLIB))), default=-1)
    return [f for f in frames[last + 1:] if f.f_code.co_filename.startswith(DJANGO_ROOT)]


def frame_local(frame, name: str, default=None):
    """A local variable of a live frame, or `default`."""
    try:
        return frame.f_locals.get(name, default)
    except Exception:  # a frame's locals can fail to materialise; the explanation then stays general
        return default


def _accessor(manager) -> str:
    """The attribute a related manager hangs on: `tags` for book.tags, `books` for author.books."""
    if getattr(manager, "prefetch_cache_name", None):
        return manager.prefetch_cache_name
    field = getattr(manager, "field", None)
    try:
        return field.remote_field.get_accessor_name()
    except AttributeError:
        return "related"


def explain_sync_only(exc: BaseException) -> str:
    """Name what ran the sync ORM on the event loop's thread, from the traceback of a SynchronousOnlyOperation: a
    lazy foreign key, related rows that were not prefetched, a QuerySet evaluated with a plain `for`, a sync manager
    or model method, `transaction.atomic`, a template, a cursor."""
    head = sync_only_head("the sync ORM")
    tail = django_tail(exc)
    names = [f.f_code.co_qualname for f in tail]
    files = [f.f_code.co_filename.replace("\\", "/") for f in tail]
    entry, entry_file = (names[0], files[0]) if names else ("", "")
    if entry == "Atomic.__enter__":
        return head + ("transaction.atomic does not work in async code: write the whole transaction as one sync "
                       "function and call it with `await sync_to_async(fn)(...)`")
    if entry_file.endswith("db/models/fields/related_descriptors.py") and "__get__" not in entry:
        method, manager = entry.rsplit(".", 1)[-1], frame_local(tail[0], "self")
        where = f"{type(getattr(manager, 'instance', None)).__name__.lower()}.{_accessor(manager)}"
        return head + (f"`{where}.{method}(...)` is a related manager's sync method: await its async twin, "
                       f"`await {where}.a{method}(...)`")
    if any("/django/template/" in f for f in files):
        return head + ("a template iterated a lazy QuerySet while it rendered: evaluate it first, "
                       "`[x async for x in qs]`, and pass the list")
    for frame, name in zip(tail, names, strict=True):
        if name.endswith("Descriptor.__get__") and frame.f_code.co_filename.endswith("related_descriptors.py"):
            field = getattr(getattr(frame_local(frame, "self"), "field", None), "name", "a relation")
            return head + (f"`.{field}` is a lazy foreign key: it runs a query when first read. Load it with "
                           f"the rows, `select_related(\"{field}\")`")
        if name == "DeferredAttribute.__get__":
            field = getattr(getattr(frame_local(frame, "self"), "field", None), "attname", "a field")
            return head + (f"`.{field}` was deferred (only()/defer()) and reading it runs a query: leave it out of "
                           f"only()/defer(), or `await obj.arefresh_from_db(fields=[\"{field}\"])` first")
    if entry in {"get_object_or_404", "get_list_or_404"}:
        return head + f"`{entry}` is sync: use `await a{entry}(...)`"
    if entry.endswith("create_method.<locals>.manager_method"):
        method = tail[1].f_code.co_name if len(tail) > 1 else "get"
        model = getattr(getattr(frame_local(tail[0], "self"), "model", None), "__name__", "Model")
        return head + f"`{model}.objects.{method}(...)` is the sync ORM: use `await {model}.objects.a{method}(...)`"
    if entry.startswith("QuerySet.") and not entry.endswith("__"):
        method = entry.split(".")[-1]
        if method.lstrip("_") == "iterator":
            return head + "`qs.iterator()` is the sync ORM: use `async for row in qs.aiterator()`"
        if hasattr(QuerySet, f"a{method}"):
            return head + f"`qs.{method}(...)` is the sync ORM: use `await qs.a{method}(...)`"
        return head + f"`qs.{method}(...)` is the sync ORM and has no async twin: run it in `sync_to_async`"
    if entry.startswith("Model."):
        method = entry.split(".")[-1]
        if hasattr(Model, f"a{method}"):
            return head + f"`obj.{method}()` is the sync ORM: use `await obj.a{method}()`"
        return head + f"`obj.{method}()` is sync ORM code with no async twin: run it in `sync_to_async`"
    for frame, name in zip(tail, names, strict=True):
        if name.startswith("QuerySet.") and name.endswith("__"):
            qs = frame_local(frame, "self")
            if isinstance(qs, QuerySet) and qs._hints.get("instance") is not None:
                return head + (f"a QuerySet of related rows ({qs.model.__name__} rows of one "
                               f"{type(qs._hints['instance']).__name__}, from a related manager) was evaluated "
                               "synchronously (list(), a plain `for`, len(), unpacking with `*`): evaluate it with "
                               "`async for`, or, when you read it for every object of a loop, fetch it with the "
                               "objects using `prefetch_related(...)`")
            return head + ("a QuerySet was evaluated synchronously (list(), a plain `for`, len(), unpacking "
                           "with `*`): use `async for`, e.g. `[x async for x in qs]`")
    if entry.startswith("async_unsafe.") and getattr(frame_local(tail[0], "func"), "__name__", "") == "cursor":
        return head + ("connection.cursor() is sync-only: put the cursor code in a sync function and await it "
                       "with sync_to_async")
    return head + "await the `a`-prefixed method, or move the sync code into one function called with sync_to_async"


def exercise_check(exercise: str):
    """Decorate a check: its boundary (see `release_earlier_failures`) and its fault reporting (see `explain`)."""
    def decorate(check):
        @functools.wraps(check)
        async def run(*args, **kwargs):
            release_earlier_failures()
            try:
                return await check(*args, **kwargs)
            except (ExerciseFailed, NotImplementedError):
                raise
            except Exception as exc:
                raise explain(exercise, exc) from None
        return run
    return decorate


def names_in(text: str) -> list[str]:
    """The coroutines that `text` (a warning, a server's log) says were never awaited, in order, repeats kept."""
    return NEVER_AWAITED.findall(text)


@contextlib.contextmanager
def never_awaited():
    """The names of the coroutines created inside the block and dropped without an `await`."""
    names: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield names
        finally:
            gc.collect()  # a dropped coroutine warns when it is collected
            names += [name for w in caught for name in names_in(str(w.message))]


# --- calling the learner's code ---------------------------------------------------------------------------------

async def call(exercise: str, fn, *args, what: str, timeout: float = 20, **kwargs):
    """Call (and await, if it is async) the learner's `fn`; its result, never a coroutine. "Not attempted" for the
    stub; a clear message when it does not finish within `timeout` seconds."""
    try:
        async with asyncio.timeout(timeout):
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result) and inspect.iscoroutinefunction(fn):
                result = await result
    except NotImplementedError:
        raise not_attempted(exercise) from None
    except TimeoutError:
        raise ExerciseFailed(exercise, f"{what} did not finish within {timeout:.0f} s: does it await something "
                                       "that never comes, or hold a lock it never releases?") from None
    reject_coroutine(exercise, result, f"what {what} returned")
    return result


def learner_object(exercise: str, name: str, *, kind: type | None = None, namespace: dict | None = None):
    """The object the learner defined as `name` in the notebook (its `__main__`), or a clear message."""
    space = namespace if namespace is not None else vars(sys.modules["__main__"])
    if name not in space:
        raise not_attempted(exercise)
    obj = space[name]
    if kind is not None and not (isinstance(obj, type) and issubclass(obj, kind)):
        raise ExerciseFailed(exercise, f"`{name}` should be a subclass of {kind.__name__}, got {obj!r}")
    return obj


def learner_class(exercise: str, name: str) -> type:
    """The class the learner defined as `name`, or a clear message when `name` holds something else."""
    cls = learner_object(exercise, name)
    if not isinstance(cls, type):
        raise ExerciseFailed(exercise, f"{name} should be a class, got {type(cls).__name__}")
    return cls


# --- serving a view through Django's ASGI handler ---------------------------------------------------------------

@dataclass
class Exchange:
    """One request through the ASGI handler, message by message: what came back, and when."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[tuple[float, bytes, bool]] = field(default_factory=list)  # (seconds, body, more_body)

    @property
    def body(self) -> bytes:
        return b"".join(c[1] for c in self.chunks)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip()

    def json(self):
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None


@dataclass
class Served:
    """What a block of `serving` saw: the in-process client, what the view raised, what it never awaited, the loop's
    longest stall (set when the block ends), and the middleware Django adapted."""

    client: object = None
    handler: object = None
    errors: list[BaseException] = field(default_factory=list)
    never_awaited: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)
    max_gap: float = 0.0

    async def exchange(self, method: str, path: str, body: bytes = b"", *, headers: dict | None = None,
                       disconnect_after: float | None = None, timeout: float = 20) -> Exchange:
        """Send one request and record every message back; `disconnect_after` seconds: the client goes away."""
        return await _exchange(self.handler, method, path, body, headers or {}, disconnect_after, timeout)


async def _exchange(handler, method, path, body, headers, disconnect_after, timeout) -> Exchange:
    route, _, query = path.partition("?")
    sent_headers = [(b"host", b"testserver"), *((k.lower().encode(), v.encode()) for k, v in headers.items())]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": route, "raw_path": route.encode(), "query_string": query.encode(),
             "root_path": "", "headers": sent_headers, "client": ("127.0.0.1", 50000),
             "server": ("testserver", 80)}
    result, start, done = Exchange(), time.perf_counter(), asyncio.Event()
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        if messages:
            return messages.pop(0)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(disconnect_after):
                await done.wait()  # the client stays until the response is complete, or until it leaves
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

    try:
        async with asyncio.timeout(timeout):
            await handler(scope, receive, send)
    finally:
        done.set()
    return result


@contextlib.asynccontextmanager
async def serving(exercise: str, view=None, *, routes: dict | None = None, middleware: list | None = None,
                  timeout: float = 20, **settings):
    """Serve the learner's `view` at /exercise/ (or `routes`, {"path/": view}) through a fresh ASGIHandler.

    `middleware`: a MIDDLEWARE list for the block (dotted paths); `settings`: more settings for the block. Yields a
    `Served`. An untouched stub's NotImplementedError, wherever it was raised, is "not attempted".
    """
    served = Served()

    def record(sender, request=None, **kwargs):
        served.errors.append(sys.exc_info()[1])

    exercise_urls.serve(routes or {"exercise/": view})
    if middleware is not None:
        settings["MIDDLEWARE"] = middleware
    got_request_exception.connect(record, weak=False)
    try:
        with override_settings(ROOT_URLCONF=exercise_urls.__name__, **settings), never_awaited() as names:
            with adapted_log() as adapted:
                try:
                    served.handler = ASGIHandler()  # loads the middleware: where Django adapts it, or refuses it
                except NotImplementedError:
                    raise not_attempted(exercise) from None
                except Exception as exc:
                    raise ExerciseFailed(exercise, f"Django could not load the middleware: {type(exc).__name__}: "
                                                   f"{exc}") from None
            served.adapted = list(adapted)
            async with client(served.handler, timeout=timeout) as c, watch_loop() as watch:
                served.client = c
                yield served
            served.max_gap = watch.max_gap
    finally:
        got_request_exception.disconnect(record)
    served.never_awaited = names
    if any(isinstance(exc, NotImplementedError) for exc in served.errors):
        raise not_attempted(exercise)


# --- processes kept for the kernel -----------------------------------------------------------------------------

class Kept:
    """A process the checks share for the kernel's lifetime, started on first use and again when it died."""

    def __init__(self, start):
        self.start, self.process = start, None

    async def __call__(self):
        if self.process is None or not self.process.alive():
            self.process = await self.start()
        return self.process


async def _start_upstream():
    return await start_upstream(quiet=True)


async def _start_redis():
    return await start_redis(quiet=True)


upstream = Kept(_start_upstream)  # the slow upstream; start_upstream also points the sandbox at it (UPSTREAM_URL)
redis = Kept(_start_redis)


# --- the recurring verdicts ------------------------------------------------------------------------------------

def expect_status(exercise: str, got: int | None, expected: int, what: str) -> None:
    if got != expected:
        raise ExerciseFailed(exercise, f"{what} answered HTTP {got}, expected {expected}")


def expect_content_type(exercise: str, got: str, expected: str, what: str) -> None:
    if got != expected:
        raise ExerciseFailed(exercise, f"{what} answered with Content-Type {got or '(none)'!r}, expected "
                                       f"{expected!r}")


def expect_json(exercise: str, answer, what: str):
    """The JSON body of an answer (an `Exchange` or an httpx response) that must be JSON: Content-Type
    application/json, and a body that parses."""
    content_type = answer.headers.get("content-type", "").split(";")[0].strip()
    expect_content_type(exercise, content_type, "application/json", what)
    body = answer.body if isinstance(answer, Exchange) else answer.content
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ExerciseFailed(exercise, f"{what} said application/json but its body is not JSON: "
                                       f"{body[:80]!r}") from None


def expect_not_blocked(exercise: str, max_gap: float, cause: str) -> None:
    """The event loop must never have stalled longer than BLOCKED seconds; `cause` says what usually does it."""
    if max_gap > BLOCKED:
        raise ExerciseFailed(exercise, f"the event loop was blocked for {max_gap:.2f} s: {cause}")


NOT_AWAITED = "a coroutine was never awaited ({names}): {hint}"


def expect_all_awaited(exercise: str, names: list[str], hint: str, *, said: str | None = None,
                       wording: str = NOT_AWAITED, limit: int | None = None, **fields) -> None:
    """No coroutine may have been left unawaited: `names` (from `never_awaited` or `names_in`), or what an error
    `said` about a coroutine it was handed instead of a value (shown rather than the names). The feedback is
    `wording` filled in with {names} (sorted, once each, cut to `limit` characters), {hint} and any `fields`."""
    shown = said or ", ".join(sorted(set(names)))
    if shown:
        raise ExerciseFailed(exercise, wording.format(names=shown[:limit], hint=hint, **fields))
