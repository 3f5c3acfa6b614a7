"""Checks for the exercises of chapter 04, the async ORM.

Each check runs the learner's code against the real library database: a view through Django's own ASGI
handler, functions awaited on the notebook's event loop. It then reads the rows back (counts, authors, tags)
and puts every row it or the learner changed back the way it was, so the notebook can be run again.

When the learner's code raises `SynchronousOnlyOperation`, the feedback says *what* ran the sync ORM on the
event loop's thread, read from the traceback of the error that really happened: a lazy foreign key, a related
manager's queryset that was not prefetched, a QuerySet evaluated with a plain `for`, a sync manager method,
`transaction.atomic`, a template, a cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sysconfig
import threading
import warnings
from datetime import date
from pathlib import Path

from asgiref.sync import sync_to_async

from sandbox.lab.checks.common import ExerciseFailed, not_attempted, passed, reject_coroutine, require_async_function

PUBLISHED = date(2026, 12, 1)  # the publication date exercise 3 gives its new books
SOO = "SynchronousOnlyOperation"


# --- what ran the sync ORM on the event loop's thread ---------------------------------------------------------

def _roots() -> tuple[str, str, str]:
    import asgiref
    import django

    return (str(Path(django.__file__).parent), str(Path(asgiref.__file__).parent), sysconfig.get_paths()["stdlib"])


def _frames(exc: BaseException) -> list:
    frames, tb = [], exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    return frames


def _tail(exc: BaseException) -> list:
    """The Django frames after the last frame of the learner's own code: the way into Django that failed."""
    django_root, asgiref_root, stdlib = _roots()
    frames = _frames(exc)
    last = max((i for i, f in enumerate(frames)
                if not f.f_code.co_filename.startswith((django_root, asgiref_root, stdlib))), default=-1)
    return [f for f in frames[last + 1:] if f.f_code.co_filename.startswith(django_root)]


def _local(frame, name: str, default=None):
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
    """Name what ran the sync ORM on the event loop's thread, from the traceback of a SynchronousOnlyOperation."""
    from django.db.models import Model
    from django.db.models.query import QuerySet

    head = f"{SOO}: the sync ORM was called from the event loop's thread. "
    tail = _tail(exc)
    names = [f.f_code.co_qualname for f in tail]
    files = [f.f_code.co_filename.replace("\\", "/") for f in tail]
    entry, entry_file = (names[0], files[0]) if names else ("", "")
    if entry == "Atomic.__enter__":
        return head + ("transaction.atomic does not work in async code: write the whole transaction as one sync "
                       "function and call it with `await sync_to_async(fn)(...)`")
    if entry_file.endswith("db/models/fields/related_descriptors.py") and "__get__" not in entry:
        method, manager = entry.rsplit(".", 1)[-1], _local(tail[0], "self")
        where = f"{type(getattr(manager, 'instance', None)).__name__.lower()}.{_accessor(manager)}"
        return head + (f"`{where}.{method}(...)` is a related manager's sync method: await its async twin, "
                       f"`await {where}.a{method}(...)`")
    if any("/django/template/" in f for f in files):
        return head + ("a template iterated a lazy QuerySet while it rendered: evaluate it first, "
                       "`[x async for x in qs]`, and pass the list")
    for frame, name in zip(tail, names, strict=True):
        if name.endswith("Descriptor.__get__") and frame.f_code.co_filename.endswith("related_descriptors.py"):
            field = getattr(getattr(_local(frame, "self"), "field", None), "name", "a relation")
            return head + (f"`.{field}` is a lazy foreign key: it runs a query when first read. Load it with "
                           f"the rows, `select_related(\"{field}\")`")
        if name == "DeferredAttribute.__get__":
            field = getattr(getattr(_local(frame, "self"), "field", None), "attname", "a field")
            return head + (f"`.{field}` was deferred (only()/defer()) and reading it runs a query: leave it out of "
                           f"only()/defer(), or `await obj.arefresh_from_db(fields=[\"{field}\"])` first")
    if entry in {"get_object_or_404", "get_list_or_404"}:
        return head + f"`{entry}` is sync: use `await a{entry}(...)`"
    if entry.endswith("create_method.<locals>.manager_method"):
        method = tail[1].f_code.co_name if len(tail) > 1 else "get"
        model = getattr(getattr(_local(tail[0], "self"), "model", None), "__name__", "Model")
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
            qs = _local(frame, "self")
            if isinstance(qs, QuerySet) and qs._hints.get("instance") is not None:
                return head + (f"a QuerySet of related rows ({qs.model.__name__} rows of one "
                               f"{type(qs._hints['instance']).__name__}, from a related manager) was evaluated "
                               "synchronously (list(), a plain `for`, len(), unpacking with `*`): evaluate it with "
                               "`async for`, or, when you read it for every object of a loop, fetch it with the "
                               "objects using `prefetch_related(...)`")
            return head + ("a QuerySet was evaluated synchronously (list(), a plain `for`, len(), unpacking "
                           "with `*`): use `async for`, e.g. `[x async for x in qs]`")
    if entry.startswith("async_unsafe.") and getattr(_local(tail[0], "func"), "__name__", "") == "cursor":
        return head + ("connection.cursor() is sync-only: put the cursor code in a sync function and await it "
                       "with sync_to_async")
    return head + "await the `a`-prefixed method, or move the sync code into one function called with sync_to_async"


def _raise_for(exercise: str, exc: BaseException, what: str) -> None:
    """Turn an exception from the learner's code into feedback naming the async mistake."""
    from django.core.exceptions import SynchronousOnlyOperation

    if isinstance(exc, ExerciseFailed):
        raise exc
    if isinstance(exc, NotImplementedError):
        raise not_attempted(exercise) from None
    if isinstance(exc, SynchronousOnlyOperation):
        raise ExerciseFailed(exercise, f"{what}: {explain_sync_only(exc)}")
    text = str(exc)
    if isinstance(exc, AttributeError) and "'aall'" in text:
        raise ExerciseFailed(exercise, f"{what}: {type(exc).__name__}: {text}. There is no aall() in Django: "
                                       "`Model.objects.all()` is lazy and safe in async code; evaluate it with "
                                       "`async for`")
    if isinstance(exc, TypeError) and "asynchronous context manager" in text:
        raise ExerciseFailed(exercise, f"{what}: TypeError: {text}. transaction.atomic does not work in async "
                                       "code, not even as `async with`: put the transaction in one sync function "
                                       "and call it with sync_to_async")
    if "coroutine" in text:
        raise ExerciseFailed(exercise, f"{what}: {type(exc).__name__}: {text}. A coroutine was used as a value: "
                                       "a missing `await`")
    raise ExerciseFailed(exercise, f"{what}: {type(exc).__name__}: {text}")


def _async_mistake(exc: BaseException) -> bool:
    """An error that an async mistake causes, as opposed to the error a task asks for (a missing row)."""
    from django.core.exceptions import SynchronousOnlyOperation

    text = str(exc)
    return (isinstance(exc, NotImplementedError | SynchronousOnlyOperation | ExerciseFailed)
            or "coroutine" in text or "await" in text or "asynchronous context manager" in text)


async def _within(exercise: str, what: str, awaitable, seconds: float = 20):
    """Await the learner's code with a deadline: a top-level await in a notebook cannot be interrupted."""
    try:
        async with asyncio.timeout(seconds):
            return await awaitable
    except TimeoutError:
        raise ExerciseFailed(exercise, f"{what} did not finish within {seconds:.0f} s: is it waiting for something "
                                       "that never happens?") from None


# --- counting queries in every thread ---------------------------------------------------------------------------

class _Queries(logging.Handler):
    """Django logs every query to `django.db.backends` when DEBUG is on, from whichever thread ran it."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.sql: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.sql.append((threading.current_thread().name, str(getattr(record, "sql", record.getMessage()))))


@contextlib.contextmanager
def count_queries():
    """Collect the SQL run while the block runs, in any thread (the async ORM queries from worker threads)."""
    logger = logging.getLogger("django.db.backends")
    handler, level, propagate = _Queries(), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield handler.sql
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


# --- exercise 1: an async view over the library ------------------------------------------------------------------

def _expected_by_tag(name: str) -> dict:
    from sandbox.library.models import Book

    books = Book.objects.filter(tags__name=name).select_related("author").prefetch_related("tags").order_by("title")
    return {"tag": name, "books": [{"title": b.title, "author": b.author.name,
                                    "tags": sorted(t.name for t in b.tags.all())} for b in books]}


async def _serve(exercise: str, view, paths: list[str]):
    """Serve `view` at /exercise/ through Django's ASGI handler; one request at a time, queries counted each."""
    from sandbox.lab.checks.exercise_urls import serving

    results = []
    async with serving(exercise, view, DEBUG=True) as (c, errors):
        for path in paths:
            with count_queries() as sql:
                response = await c.get(path)
            results.append((response, len(sql)))
    for exc in errors:
        _raise_for(exercise, exc, "the view raised")
    return results


async def books_by_tag(view) -> None:
    """Exercise 'books-by-tag': an async view answering the books of one tag, with authors and tags, as JSON."""
    ex = "books-by-tag"
    require_async_function(ex, view, "books_by_tag")
    (fiction, queries), (science, _), (missing, _) = await _serve(
        ex, view, ["/exercise/?tag=fiction", "/exercise/?tag=science", "/exercise/?tag=poetry"])
    for name, response in (("fiction", fiction), ("science", science)):
        if response.status_code != 200:
            raise ExerciseFailed(ex, f"?tag={name} answered HTTP {response.status_code}, expected 200")
        expected = await sync_to_async(_expected_by_tag)(name)
        try:
            body = response.json()
            got = {"tag": body["tag"], "books": [{**b, "tags": sorted(b["tags"])} for b in body["books"]]}
        except (ValueError, KeyError, TypeError):
            raise ExerciseFailed(ex, f"answer JSON shaped like {str(expected)[:90]}..., got {response.text[:120]}"
                                 ) from None
        if got != expected:
            raise ExerciseFailed(ex, f"?tag={name}: expected {str(expected)[:150]}..., got {str(got)[:150]}...")
    if missing.status_code != 404:
        raise ExerciseFailed(ex, f"?tag=poetry (no such tag) answered HTTP {missing.status_code}: answer 404, "
                                 "e.g. with `await aget_object_or_404(Tag, name=...)`")
    books = len((await sync_to_async(_expected_by_tag)("fiction"))["books"])
    if queries > 4:
        raise ExerciseFailed(ex, f"?tag=fiction ran {queries} queries for {books} books: N+1 queries, each one also "
                                 "a hop to a worker thread. Fetch the authors with select_related(\"author\") and "
                                 "the tags with prefetch_related(\"tags\")")
    passed(ex, f"{books} fiction books with authors and tags in {queries} queries, "
               "a 404 for an unknown tag, and nothing ran the sync ORM on the event loop")


# --- exercise 2: a transaction from async code ----------------------------------------------------------------

def _owners() -> dict[int, int]:
    from sandbox.library.models import Book

    return dict(Book.objects.values_list("pk", "author_id"))


def _restore_owners(owners: dict[int, int]) -> None:
    from django.db import transaction

    from sandbox.library.models import Book

    with transaction.atomic():
        for pk, author_id in owners.items():
            Book.objects.filter(pk=pk).exclude(author_id=author_id).update(author_id=author_id)


def _author_of(title: str) -> str | None:
    from sandbox.library.models import Book

    book = Book.objects.select_related("author").filter(title=title).first()
    return book.author.name if book else None


@contextlib.contextmanager
def _watch_saves():
    """Record, for every Book save, whether the saving thread's connection was inside transaction.atomic."""
    from django.db import connection
    from django.db.models.signals import pre_save

    from sandbox.library.models import Book

    in_atomic: list[bool] = []

    def record(sender, **kwargs):
        in_atomic.append(connection.in_atomic_block)

    pre_save.connect(record, sender=Book, weak=False)
    try:
        yield in_atomic
    finally:
        pre_save.disconnect(record, sender=Book)


async def move_books_atomically(move_books) -> None:
    """Exercise 'move-books': give books to another author, all or nothing, from async code."""
    ex = "move-books"
    require_async_function(ex, move_books, "move_books")
    owners = await sync_to_async(_owners)()
    good = ["Copper and Salt", "A Field Guide to Clouds"]
    bad = ["The Quiet Harbour", "Harbour Lights", "No Such Book", "The Last Harbour"]
    try:
        try:
            reject_coroutine(ex, await _within(ex, "move_books", move_books(good, "Iris Vane")),
                             "what move_books returned")
        except Exception as exc:
            _raise_for(ex, exc, "move_books raised")
        moved = {title: await sync_to_async(_author_of)(title) for title in good}
        if set(moved.values()) != {"Iris Vane"}:
            raise ExerciseFailed(ex, f"after move_books({good}, 'Iris Vane') the authors are {moved}")
        await sync_to_async(_restore_owners)(owners)

        with _watch_saves() as in_atomic:
            try:
                await _within(ex, "move_books", move_books(bad, "Tomas Reed"))
            except Exception as exc:
                error = exc
            else:
                error = None
        if error is not None and _async_mistake(error):
            _raise_for(ex, error, "move_books raised")
        after = {title: await sync_to_async(_author_of)(title) for title in bad if title != "No Such Book"}
        kept = [t for t, a in after.items() if a != "Mara Quill"]
        if kept:
            if in_atomic and not any(in_atomic):
                how = "No transaction was open: every save committed on its own. "
            elif in_atomic and all(in_atomic):
                how = ("Each step ran in its own transaction (one sync_to_async call, or one atomic block, per "
                       "book), so the first ones were committed before the error. ")
            else:
                how = ""
            raise ExerciseFailed(ex, f"{', '.join(kept)} moved and stayed moved although 'No Such Book' failed: "
                                     f"the changes were not rolled back. {how}Put the whole loop in one sync "
                                     "function inside `with transaction.atomic():` and await it once with "
                                     "sync_to_async")
        if error is None:
            raise ExerciseFailed(ex, "move_books(..., 'No Such Book', ...) returned normally: let the error "
                                     "(Book.DoesNotExist) propagate, so the caller knows nothing was moved")
    finally:
        await sync_to_async(_restore_owners)(owners)
    passed(ex, f"two books moved; a list with a missing title raised {type(error).__name__} and moved nothing")


# --- exercise 3: related managers -------------------------------------------------------------------------------

NEW_TITLES = ["Rain Over Copper", "The Weather Almanac"]


def _new_books() -> list[tuple[str, str, list[str], date]]:
    from sandbox.library.models import Book

    books = Book.objects.filter(title__in=NEW_TITLES).select_related("author").prefetch_related("tags")
    return [(b.title, b.author.name, sorted(t.name for t in b.tags.all()), b.published) for b in books]


def _delete_new_books() -> int:
    from sandbox.library.models import Book

    return Book.objects.filter(title__in=NEW_TITLES).delete()[0]


async def publish_books(publish) -> None:
    """Exercise 'publish': create books through an author's related manager and tag them."""
    from sandbox.library.models import Book

    ex = "publish"
    require_async_function(ex, publish, "publish")
    await sync_to_async(_delete_new_books)()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = await _within(ex, "publish", publish("Tomas Reed", NEW_TITLES, ["fiction", "science"]))
            except Exception as exc:
                _raise_for(ex, exc, "publish raised")
        reject_coroutine(ex, result, "what publish returned (or an item of it)")
        never = [str(w.message) for w in caught if "never awaited" in str(w.message)]
        rows = await sync_to_async(_new_books)()
        if never or (rows and not any(tags for _, _, tags, _ in rows)):
            what = never[0] if never else "the new books have no tags"
            raise ExerciseFailed(ex, f"{what}: a coroutine that was never awaited never runs; "
                                     "write `await book.tags.aadd(...)` (or aset)")
        if sorted(r[0] for r in rows) != sorted(NEW_TITLES):
            raise ExerciseFailed(ex, f"expected the books {NEW_TITLES} in the database, found {[r[0] for r in rows]}")
        wrong = [r for r in rows if r[1] != "Tomas Reed" or r[2] != ["fiction", "science"] or r[3] != PUBLISHED]
        if wrong:
            raise ExerciseFailed(ex, f"expected each new book by Tomas Reed, tagged ['fiction', 'science'], "
                                     f"published {PUBLISHED}; got {wrong[0]}")
        if not (isinstance(result, list) and [getattr(b, "title", None) for b in result] == NEW_TITLES
                and all(isinstance(b, Book) and b.pk for b in result)):
            raise ExerciseFailed(ex, f"return the new Book objects as a list, in the order of titles (got "
                                     f"{str(result)[:120]})")
    finally:
        await sync_to_async(_delete_new_books)()
    passed(ex, f"{len(NEW_TITLES)} books created for Tomas Reed and tagged; the check deleted them again")
