"""Checks for the exercises of chapter 02, Django's async support.

Each check runs the learner's code for real: the async ORM against the seeded catalogue, a view through Django's
ASGI handler with a cache that records which thread touched it, an email sent through a backend that records
which thread sent it. "Is it really async?" is answered the way the chapter answers it: by which thread did the
I/O, and by whether Django raised SynchronousOnlyOperation.
"""

from __future__ import annotations

import asyncio
import re

from django.core.cache.backends.locmem import LocMemCache
from django.core.mail.backends.locmem import EmailBackend

from sandbox.lab.checks.common import (
    ExerciseFailed,
    not_attempted,
    passed,
    raise_view_errors,
    reject_coroutine,
    require_async_function,
)
from sandbox.lab.trace import where

LOOP_THREAD = "event loop"


# --- exercise 'stock-report': the async ORM --------------------------------------------------------------------

def _attribute_feedback(exc: AttributeError) -> str | None:
    """Feedback for an a-method that does not exist, such as `aall()` or `afilter()`."""
    from django.db.models.query import QuerySet

    match = re.search(r"has no attribute '(a\w+)'", str(exc))
    if not match:
        return None
    name = match.group(1)
    if name == "aall":
        return ("aall() does not exist: all() runs no SQL (it returns a lazy QuerySet), so it needs no async "
                "twin. Evaluate the QuerySet with `async for`, or call an a-method such as acount()")
    if name == "adelete":
        return ("a manager has no adelete(), just as it has no delete(): delete through a QuerySet, "
                "`await Model.objects.filter(...).adelete()` (or `.all().adelete()`)")
    if callable(getattr(QuerySet, name[1:], None)):
        return (f"{name}() does not exist: {name[1:]}() returns a new, lazy QuerySet without running SQL, so it "
                "has no async twin. Only methods that run SQL have one (acount, aget, afirst, ...); evaluate a "
                "QuerySet with `async for`")
    return None


async def stock_report(report) -> None:
    """Exercise 'stock-report': `await report()` returns (count, names) of the in-stock items, via the async ORM."""
    from django.core.exceptions import SynchronousOnlyOperation
    from django.db.models.query import QuerySet

    from sandbox.catalog.models import Item

    ex = "stock-report"
    require_async_function(ex, report, "stock_report")
    in_stock = Item.objects.filter(in_stock=True).order_by("name")
    expected = [name async for name in in_stock.values_list("name", flat=True)]
    try:
        async with asyncio.timeout(10):
            result = await report()
    except NotImplementedError:
        raise not_attempted(ex) from None
    except SynchronousOnlyOperation:
        raise ExerciseFailed(ex, "SynchronousOnlyOperation: the ORM was called from the event loop's thread. A "
                                 "sync call that runs SQL (count(), list(qs), a plain `for` loop over a QuerySet) "
                                 "is refused in async code: use `await qs.acount()` and `async for`") from None
    except AttributeError as exc:
        feedback = _attribute_feedback(exc)
        raise ExerciseFailed(ex, feedback or f"stock_report raised AttributeError: {exc}") from None
    if isinstance(result, QuerySet):
        raise ExerciseFailed(ex, "stock_report returned a QuerySet, not a pair: return (count, names)")
    if not isinstance(result, tuple | list) or len(result) != 2:
        raise ExerciseFailed(ex, f"return a pair (count, names), got {type(result).__name__}: {str(result)[:80]}")
    count, names = result
    reject_coroutine(ex, [count, names], "a value stock_report returned")
    if isinstance(names, QuerySet):
        raise ExerciseFailed(ex, "names is a QuerySet, not a list: a QuerySet is lazy, its SQL has not run yet, "
                                 "and evaluating it later in async code (repr(), a template, a plain `for` loop) "
                                 "raises SynchronousOnlyOperation. Evaluate it here with async for: "
                                 "[item.name async for item in qs]")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ExerciseFailed(ex, f"names should be a list of item names (strings), got {str(names)[:100]}")
    if names != expected:
        raise ExerciseFailed(ex, f"names should be the in-stock items in name order, {expected}; got {names}")
    if count != len(expected):
        raise ExerciseFailed(ex, f"count should be the number of in-stock items, {len(expected)}; got {count!r}")
    passed(ex, f"{count} items in stock ({', '.join(names)}), every query through the async ORM")


# --- exercise 'visit-counter': the async cache API --------------------------------------------------------------

class TracingCache(LocMemCache):
    """Django's local-memory cache, recording which thread ran each operation.

    It stands in for a network cache (Redis, Memcached), where a sync call on the event loop's thread would
    block every other request for a network round trip. Every LocMemCache operation makes its key first.
    """

    threads: list[str] = []

    def make_and_validate_key(self, key, version=None):
        TracingCache.threads.append(where())
        return super().make_and_validate_key(key, version=version)


TRACING_CACHES = {"default": {"BACKEND": f"{__name__}.TracingCache", "LOCATION": "exercise-visit-counter"}}


async def _serve_one_by_one(exercise: str, view, paths: list[str], **overrides):
    """Serve `view` at /exercise/ through Django's ASGI handler; send the requests one after another."""
    from sandbox.lab.checks.exercise_urls import serving

    async with serving(exercise, view, **overrides) as (c, errors):
        responses = [await c.get(p) for p in paths]
    return responses, errors


async def visit_counter(visits, n: int = 3) -> None:
    """Exercise 'visit-counter': an async view that counts its visits in the cache with the cache's a-methods."""
    from django.core.cache import caches
    from django.test import override_settings

    ex = "visit-counter"
    require_async_function(ex, visits, "visits")
    with override_settings(CACHES=TRACING_CACHES):
        await caches["default"].aclear()
    TracingCache.threads.clear()
    responses, errors = await _serve_one_by_one(ex, visits, ["/exercise/"] * n, CACHES=TRACING_CACHES)
    threads = list(TracingCache.threads)
    if LOOP_THREAD in threads:
        raise ExerciseFailed(ex, "a sync cache call (cache.get, cache.set, cache.incr...) ran on the event loop's "
                                 "thread. With a network cache such as Redis each one is a round trip that blocks "
                                 "every other request: use the a-methods, `await cache.aget(...)`")
    raise_view_errors(ex, errors, " before a cache a-method")
    bad = [r for r in responses if r.status_code != 200]
    if bad:
        raise ExerciseFailed(ex, f"the view answered HTTP {bad[0].status_code}, expected 200")
    if not threads:
        raise ExerciseFailed(ex, "the view never touched the cache: count the visits in Django's cache")
    try:
        counts = [r.json().get("visits") for r in responses]
    except (ValueError, AttributeError):
        raise ExerciseFailed(ex, f'answer JsonResponse({{"visits": n}}), got {responses[0].text[:80]}') from None
    if counts == [1] * n:
        raise ExerciseFailed(ex, f"{n} visits all answered 1: the new count was never stored. Was the write "
                                 "awaited? `cache.aset(...)` without `await` is a coroutine that never runs")
    if counts != list(range(1, n + 1)):
        raise ExerciseFailed(ex, f"{n} visits one after another should answer 1, 2, 3...; got {counts}")
    passed(ex, f"{n} visits counted {counts}; all {len(threads)} cache operations ran in a worker thread")


# --- exercise 'email-notify': no async email API ----------------------------------------------------------------

class TracingEmailBackend(EmailBackend):
    """Django's in-memory email backend (messages go to `django.core.mail.outbox`), recording the sending thread.

    It stands in for SMTP, where sending on the event loop's thread would block every other request.
    """

    threads: list[str] = []

    def send_messages(self, messages):
        TracingEmailBackend.threads.append(where())
        return super().send_messages(messages)


async def email_notify(notify, address: str = "ada@example.com") -> None:
    """Exercise 'email-notify': send an email from async code without running the sync mail API on the loop."""
    from django.core import mail
    from django.test import override_settings

    ex = "email-notify"
    require_async_function(ex, notify, "notify")
    TracingEmailBackend.threads.clear()
    mail.outbox = []
    error = None
    with override_settings(EMAIL_BACKEND=f"{__name__}.TracingEmailBackend"):
        try:
            async with asyncio.timeout(10):
                result = await notify(address)
        except NotImplementedError:
            raise not_attempted(ex) from None
        except (ImportError, AttributeError) as exc:
            if re.search(r"'a\w+'", str(exc)):
                message = str(exc).split(" (")[0]  # an ImportError ends with the module's file path
                raise ExerciseFailed(ex, f"{type(exc).__name__}: {message}. Django 6.1 has no async email API (no "
                                         "asend_mail, no EmailMessage.asend): run the sync send_mail in a worker "
                                         "thread, `await sync_to_async(send_mail)(...)`") from None
            error = exc
        except Exception as exc:  # judged below, after where the mail was sent
            error = exc
    if LOOP_THREAD in TracingEmailBackend.threads:
        raise ExerciseFailed(ex, "send_mail ran on the event loop's thread: with a real SMTP server every request "
                                 "on this loop waits for the mail server. Pass the function itself to "
                                 "sync_to_async and await the result: `await sync_to_async(send_mail)(...)`")
    if error is not None:
        raise ExerciseFailed(ex, f"notify raised {type(error).__name__}: {error}")
    reject_coroutine(ex, result, "what notify returned")
    if not mail.outbox:
        raise ExerciseFailed(ex, "no email was sent: call send_mail (in a worker thread) and await it")
    message = mail.outbox[-1]
    if message.to != [address]:
        raise ExerciseFailed(ex, f"the email went to {message.to}, expected [{address!r}]")
    if result != 1:
        raise ExerciseFailed(ex, f"return what send_mail returned (the number of emails sent, 1), got {result!r}")
    passed(ex, f"one email to {address} ({message.subject!r}), sent from a worker thread")
