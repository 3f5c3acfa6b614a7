"""Checks for the exercises of chapter 02, Django's async support.

Each check runs the learner's code for real: the async ORM against catalogue rows the check creates for the run, a
view through Django's ASGI handler with a cache (new for every run) that records which thread touched it, an email
sent through a backend that records which thread sent it. "Is it really async?" is answered the way the chapter
answers it: by which thread did the I/O, and by whether Django raised SynchronousOnlyOperation. The values the
checks expect are new on every run (item names, a count already in the cache, addresses), so an answer copied from
the lesson's output cannot pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import secrets
import sys
import time
import traceback
from decimal import Decimal

from asgiref.sync import SyncToAsync
from django.core import mail
from django.core.cache.backends import locmem
from django.core.cache.backends.locmem import LocMemCache
from django.core.exceptions import SynchronousOnlyOperation
from django.core.mail.backends.locmem import EmailBackend
from django.db.models.query import QuerySet
from django.test import override_settings

from sandbox.checks.common import ExerciseFailed, passed, reject_coroutine, require_async_function
from sandbox.checks.harness import (
    Requirements,
    call,
    exercise_check,
    expect_all_awaited,
    expect_json,
    expect_status,
    explain,
    is_cell_file,
    serving,
    sync_only_head,
)
from sandbox.lab.clients import client
from sandbox.lab.trace import where

LOOP_THREAD = "event loop"

REQUIREMENTS = {
    "stock-report": Requirements("b78b121c30cb", (
        ("`stock_report()` returns a pair", "the result must be a tuple or list of two: (count, names)"),
        ("how many catalogue items are in stock",
         "count must equal the number of in-stock rows, with 2 to 5 in-stock and 1 to 4 out-of-stock items of new, "
         "random names added by the check for this run (so the lesson's four names are not the answer)"),
        ("and their names as a list",
         "names must be a list of strings, evaluated (not a QuerySet), holding every in-stock item (the seeded and "
         "the new ones) and no item that is out of stock"),
        ("in name order",
         "the new rows are inserted in reverse name order, so an order by id (or by -name) gives another order"),
        ("Use the async ORM ..., not the sync ORM wrapped in `sync_to_async`",
         "SynchronousOnlyOperation is reported as the sync ORM on the loop; a function of the learner's handed to "
         "sync_to_async or asyncio.to_thread is reported; only Django's own functions may run in worker threads"),
        ("The check calls `await stock_report()` from the event loop's thread",
         "called with `await` on the loop, twice: the second call after the check marked every item out of stock "
         "must return (0, []), so a kept or cached result fails"),
    )),
    "visit-counter": Requirements("d8c45bd0d3c2", (
        ("Write `visits`, an async view", "an `async def` function, served through Django's ASGI handler"),
        ('keeping the count in Django\'s cache under the key `"visits"`',
         "a new cache (new LOCATION) for every run; after the visits the cache must hold the last count under "
         '"visits", and a neighbouring key with a random value must be left untouched'),
        ('answers `{"visits": n}` (1 for the first request, then 2, 3, ...)',
         "three requests one after another on an empty cache: HTTP 200, application/json, 1, 2, 3"),
        ("The count lives in the cache only: when the cache already holds a count, the next request answers one more",
         "the check stores a random count (10 to 999) under \"visits\"; the next requests must continue from it"),
        ("overlapping requests must each get their own number",
         "four requests at once, every read of the cache held until all four have read: the answers must be the "
         "four next numbers, each once, and the cache must end at the last"),
        ("Use the cache's a-methods",
         "the check's cache records the thread of every operation: none on the event loop's thread; every "
         "coroutine awaited; no sync cache method handed to sync_to_async or asyncio.to_thread by the view itself"),
    )),
    "email-notify": Requirements("b8e1e8b6188e", (
        ("`notify(address)` emails the order confirmation below to `address`",
         "called with a new random address: exactly one email, to [address], from SENDER, with SUBJECT and BODY"),
        ("with `django.core.mail.send_mail`", "an in-memory email backend is swapped in and records each email"),
        ("and returns what `send_mail` returns (the number of emails sent)", "notify must return 1"),
        ("once the email is sent, returns",
         "the email must be in the outbox when notify returns; one that arrives later is reported as such"),
        ("without running `send_mail` on the event loop's thread",
         "the backend records the thread that sent each email: never the loop's (sync_to_async, asyncio.to_thread "
         "or another worker thread are all fine)"),
        ("emails ... to `address` (each call its own)",
         "two calls at once with two other new addresses: each returns 1, one email to each address"),
    )),
    "async-login": Requirements("3d54112a5589", (
        ("Write `account_view`, one async view that answers three methods",
         "an `async def` function, served by Django's ASGI handler with the sandbox's session and auth middleware"),
        ("POST with `username` and `password`: wrong ones answer 401 with `{\"ok\": false}` and log no one in",
         "a user made for this run, a wrong password: 401 and exactly that body, then GET still answers 403"),
        ("Right ones log the user in, count this session's logins under the session key \"logins\" (1 for the "
         "first), and answer `{\"ok\": true, \"user\": <username>, \"logins\": <count>}`",
         "the right password twice in one browser: logins 1, then 2; then another user in another browser: 1"),
        ("GET: for a logged-in user `{\"user\": <username>, \"can_view_users\": ...}`, whether they have "
         "auth.view_user; for anyone else 403 with `{\"user\": null}`",
         "GET before logging in (403), after (the user without the permission: false), and for a second user "
         "given the permission for this run (true)"),
        ("DELETE: log out and answer `{\"ok\": true}`", "after DELETE, GET answers 403 again"),
        ("No sync ORM, session or authentication call may run on the event loop's thread",
         "any SynchronousOnlyOperation fails the check and names the sync call (authenticate, login, logout, "
         "request.user, has_perm, the session's dict API); every coroutine must be awaited"),
    )),
}

# --- exercise 'stock-report': the async ORM --------------------------------------------------------------------

WORDS = ["Affogato", "Bagel", "Biscotti", "Brioche", "Chai latte", "Cortado", "Danish", "Eclair", "Focaccia",
         "Ginger cake", "Lemon tart", "Macchiato", "Matcha", "Mocha", "Muffin", "Pretzel", "Scone", "Teacake"]


def _attribute_feedback(exc: AttributeError) -> str | None:
    """Feedback for an a-method that does not exist, such as `aall()` or `afilter()`."""
    match = re.search(r"has no attribute '(a\w+)'", str(exc))
    if not match:
        return None
    name = match.group(1)
    if name == "aall":
        return ("aall() does not exist: all() runs no SQL (it returns a lazy QuerySet), so it needs no async "
                "twin. Evaluate a QuerySet with `async for`, or call an a-method such as acount()")
    if name == "adelete":
        return "a manager has no adelete(), just as it has no delete(): delete through a QuerySet"
    if callable(getattr(QuerySet, name[1:], None)):
        return (f"{name}() does not exist: {name[1:]}() returns a new, lazy QuerySet without running SQL, so it "
                "has no async twin. Only methods that run SQL have one (acount, aget, afirst, ...); evaluate a "
                "QuerySet with `async for`")
    return None


def _function_name(fn) -> str:
    fn = getattr(fn, "func", fn)  # functools.partial
    return (getattr(fn, "__qualname__", None) or type(fn).__qualname__).replace(".<locals>", "")


def _learners(frame) -> bool:
    """Is this frame the learner's code: a notebook cell, or a function defined in one?

    Narrower than the harness's `is_learner_file` on purpose: a module outside the course's packages does not count.
    This test decides who made a sync_to_async wrapper while the answer runs, and code that is neither the answer
    nor Django (a test harness, a kernel extension) may make one meanwhile; only a cell's code is the answer."""
    return frame.f_globals.get("__name__") == "__main__" or is_cell_file(frame.f_code.co_filename)


@contextlib.contextmanager
def _offloaded():
    """The names of the functions the learner's own code handed to a worker thread inside the block (through
    sync_to_async or asyncio.to_thread). Django's a-methods hand their sync twins to sync_to_async too: those are
    Django's doing, not the learner's, and are not listed.

    Generic (it belongs in the harness): "use the async API" cannot be told from "wrap the sync API in
    sync_to_async yourself" by threads or results, only by who made the wrapper.
    """
    seen: list[str] = []
    init, s2a_call, to_thread = SyncToAsync.__init__, SyncToAsync.__call__, asyncio.to_thread

    def noted_init(self, func, *args, **kwargs):
        frame = sys._getframe(1)
        while frame is not None and frame.f_globals.get("__name__", "").startswith("asgiref"):
            frame = frame.f_back  # sync_to_async() and its decorator form
        init(self, func, *args, **kwargs)
        self.course_by_learner = frame is not None and _learners(frame)

    async def noted_call(self, *args, **kwargs):
        inner = getattr(self.func, "func", self.func)
        if getattr(self, "course_by_learner", False) or getattr(inner, "__module__", None) == "__main__":
            seen.append(_function_name(self.func))
        return await s2a_call(self, *args, **kwargs)

    async def noted_to_thread(fn, /, *args, **kwargs):
        seen.append(_function_name(fn))  # Django never calls asyncio.to_thread
        return await to_thread(fn, *args, **kwargs)

    SyncToAsync.__init__, SyncToAsync.__call__, asyncio.to_thread = noted_init, noted_call, noted_to_thread
    try:
        yield seen
    finally:
        SyncToAsync.__init__, SyncToAsync.__call__, asyncio.to_thread = init, s2a_call, to_thread


async def _report(ex: str, report, when: str):
    """Call the learner's stock_report, its exceptions explained."""
    with _offloaded() as offloaded:
        try:
            result = await call(ex, report, what="stock_report()", timeout=20)
        except SynchronousOnlyOperation:
            raise ExerciseFailed(ex, sync_only_head() + "A sync call that runs SQL (count(), list(qs), a plain "
                                     "`for` loop over a QuerySet) is refused in async code: use the QuerySet's "
                                     "a-methods and `async for`") from None
        except AttributeError as exc:
            feedback = _attribute_feedback(exc)
            if feedback is None:
                raise
            raise ExerciseFailed(ex, feedback) from None
    if offloaded:
        raise ExerciseFailed(ex, f"{when}, stock_report handed `{offloaded[0]}` to a worker thread itself (with "
                                 "sync_to_async or asyncio.to_thread): that runs the sync ORM in a thread, which "
                                 "works, but the exercise asks for the async ORM: the QuerySet's a-methods and "
                                 "`async for`, which do the hand-over for you")
    return result


def _expect_pair(ex: str, result) -> tuple[object, list[str]]:
    if isinstance(result, QuerySet):
        raise ExerciseFailed(ex, "stock_report returned a QuerySet, not a pair: return (count, names)")
    if not isinstance(result, tuple | list) or len(result) != 2:
        raise ExerciseFailed(ex, f"return a pair (count, names), got {type(result).__name__}: {str(result)[:80]}")
    count, names = result
    reject_coroutine(ex, [count, names], "a value stock_report returned")
    if isinstance(names, QuerySet):
        raise ExerciseFailed(ex, "names is a QuerySet, not a list: a QuerySet is lazy, its SQL has not run yet, "
                                 "and evaluating it later in async code (repr(), a template, a plain `for` loop) "
                                 "raises SynchronousOnlyOperation. Evaluate it inside stock_report with `async for`")
    if isinstance(count, list) and isinstance(names, int):
        raise ExerciseFailed(ex, "the pair is (names, count): return the count first, then the names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ExerciseFailed(ex, f"names should be a list of item names (strings), got {str(names)[:100]}")
    return count, names


@exercise_check("stock-report")
async def stock_report(report) -> None:
    """Exercise 'stock-report': `await report()` returns (count, names) of the in-stock items, via the async ORM."""
    from sandbox.catalog.models import Category, Item

    ex = "stock-report"
    require_async_function(ex, report, "stock_report")
    words = random.sample(WORDS, random.randint(3, 6))
    new = sorted(f"{w} {random.randint(100, 999)}" for w in words)
    stocked = set(random.sample(new, random.randint(2, len(new) - 1)))
    flipped: list[int] = []
    async with asyncio.timeout(20):
        category = await Category.objects.acreate(name=f"check {secrets.token_hex(4)}")
    try:
        async with asyncio.timeout(20):
            await Item.objects.abulk_create(  # reverse name order: the order of the ids is not the order asked for
                Item(name=n, price=Decimal(random.randint(100, 900)) / 100, in_stock=n in stocked, category=category)
                for n in reversed(new))
            everything = [(name, s) async for name, s in Item.objects.order_by("name").values_list("name", "in_stock")]
        expected = [name for name, s in everything if s]
        result = await _report(ex, report, "called once")
        count, names = _expect_pair(ex, result)
        _expect_names(ex, names, expected, everything, stocked)
        if type(count) is not int or count != len(expected):
            also = " (that is every item, in stock or not)" if count == len(everything) else ""
            raise ExerciseFailed(ex, f"count should be the number of in-stock items, {len(expected)}; got "
                                     f"{count!r}{also}")
        async with asyncio.timeout(20):
            flipped = [pk async for pk in Item.objects.filter(in_stock=True).values_list("pk", flat=True)]
            await Item.objects.filter(pk__in=flipped).aupdate(in_stock=False)
        count, names = _expect_pair(ex, await _report(ex, report, "called again"))
        if count != 0 or names != []:
            raise ExerciseFailed(ex, f"after the check marked every item out of stock, stock_report() should "
                                         f"return (0, []), got ({count!r}, {str(names)[:80]}): does it keep a result "
                                         "from an earlier call, or count something other than the items in stock?")
    finally:
        async with asyncio.timeout(20):
            if flipped:
                await Item.objects.filter(pk__in=flipped).aupdate(in_stock=True)
            await Category.objects.filter(pk=category.pk).adelete()  # and its items
    passed(ex, f"{len(expected)} items in stock, {len(stocked)} of them added for this run, in name order; then none "
               "in stock: every query through the async ORM")


def _expect_names(ex: str, names: list[str], expected: list[str], everything, stocked: set[str]) -> None:
    if names == expected:
        return
    out_of_stock = {name for name, s in everything if not s}
    wrong = [n for n in names if n in out_of_stock]
    if wrong:
        raise ExerciseFailed(ex, f"names include items that are not in stock ({', '.join(wrong[:3])}): keep only "
                                 "the items whose in_stock is True")
    missing = [n for n in expected if n not in names]
    if missing and all(n in stocked for n in missing):
        raise ExerciseFailed(ex, f"names miss the in-stock items the check added just now ({', '.join(missing)}): "
                                 "read the names from the database on every call, not from the lesson's output")
    if missing:
        raise ExerciseFailed(ex, f"names miss in-stock items: {', '.join(missing[:3])}")
    unknown = [n for n in names if n not in expected]
    if unknown:
        raise ExerciseFailed(ex, f"names hold values that are no in-stock item's name: {unknown[:3]}")
    if sorted(names) == expected:
        raise ExerciseFailed(ex, f"the names are right but not in name order: got {names}")
    raise ExerciseFailed(ex, f"each in-stock item should appear once, in name order: got {names}")


# --- exercise 'visit-counter': the async cache API --------------------------------------------------------------

class _Gate:
    """Holds every read until `n` readers have read (or `timeout` seconds passed): requests that overlap then
    overlap for sure, and a read-then-write counter loses updates every time instead of now and then."""

    def __init__(self, n: int, timeout: float = 3.0):
        self.n, self.timeout, self.readers, self.open = n, timeout, 0, asyncio.Event()

    async def arrive(self) -> None:
        self.readers += 1
        if self.readers >= self.n:
            self.open.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.timeout):
                await self.open.wait()


class TracingCache(LocMemCache):
    """Django's local-memory cache, recording which thread ran each operation.

    It stands in for a network cache (Redis, Memcached), where a sync call on the event loop's thread would
    block every other request for a network round trip. Every LocMemCache operation makes its key first. While
    `gate` is set, an awaited read waits at it for the other overlapping requests.
    """

    threads: list[str] = []
    gate: _Gate | None = None

    def make_and_validate_key(self, key, version=None):
        TracingCache.threads.append(where())
        return super().make_and_validate_key(key, version=version)

    async def aget(self, key, default=None, version=None):
        value = await super().aget(key, default, version)
        if TracingCache.gate is not None:
            await TracingCache.gate.arrive()
        return value


def _visit_count(ex: str, response) -> object:
    expect_status(ex, response.status_code, 200, "the view")
    body = expect_json(ex, response, "the view")
    if not isinstance(body, dict) or "visits" not in body:
        raise ExerciseFailed(ex, f'answer {{"visits": n}}, got {str(body)[:80]}')
    return body["visits"]


@exercise_check("visit-counter")
async def visit_counter(visits, n: int = 3, at_once: int = 4) -> None:
    """Exercise 'visit-counter': an async view that counts its visits in the cache with the cache's a-methods."""
    ex = "visit-counter"
    require_async_function(ex, visits, "visits")
    location = f"exercise-visit-counter-{secrets.token_hex(4)}"
    caches = {"default": {"BACKEND": f"{__name__}.TracingCache", "LOCATION": location}}
    store = LocMemCache(location, {})  # the same memory as the view's cache, read without being traced
    neighbour, neighbour_value = f"visits-{secrets.token_hex(3)}", secrets.token_hex(4)
    start = random.randint(10, 999)
    store.set(neighbour, neighbour_value, timeout=None)
    TracingCache.threads.clear()
    TracingCache.gate = None
    try:
        with _offloaded() as offloaded:
            async with serving(ex, visits, CACHES=caches) as served:
                one_by_one = [await served.client.get("/exercise/") for _ in range(n)]
                after_one_by_one = store.get("visits")
                store.set("visits", start, timeout=None)
                TracingCache.gate = _Gate(at_once)
                overlapping = await asyncio.gather(*(served.client.get("/exercise/") for _ in range(at_once)))
                TracingCache.gate = None
                after_overlapping = store.get("visits")
    finally:
        TracingCache.gate = None
        for table in (locmem._caches, locmem._expire_info, locmem._locks):
            table.pop(location, None)
    threads = list(TracingCache.threads)
    if LOOP_THREAD in threads:
        raise ExerciseFailed(ex, "a sync cache call (cache.get, cache.set, cache.incr...) ran on the event loop's "
                                 "thread. With a network cache such as Redis each one is a round trip that blocks "
                                 "every other request: use the cache's a-methods, and await them")
    if offloaded:
        raise ExerciseFailed(ex, f"the view handed `{offloaded[0]}` to a worker thread itself (with sync_to_async or "
                                 "asyncio.to_thread): that is what the cache's a-methods do for you, and the "
                                 "exercise asks for the a-methods")
    _view_errors(ex, served.errors)
    expect_all_awaited(ex, served.never_awaited, "a cache a-method called without `await` only creates a coroutine: "
                                                 "nothing is read or stored")
    counts = [_visit_count(ex, r) for r in one_by_one]
    if not threads:
        raise ExerciseFailed(ex, "the view never touched the cache: keep the count in Django's cache")
    if counts == [1] * n:
        raise ExerciseFailed(ex, f"{n} visits one after another all answered 1: the new count was never stored "
                                 "(or was started again on every request)")
    if counts != list(range(1, n + 1)):
        raise ExerciseFailed(ex, f"{n} visits one after another, on an empty cache, should answer 1, 2, 3; got "
                                 f"{counts}")
    if after_one_by_one != n:
        raise ExerciseFailed(ex, f"after {n} visits the cache held {after_one_by_one!r} under the key 'visits', not "
                                 f"{n}: keep the count in Django's cache, under that key (a variable in the notebook "
                                 "is not shared by a site's processes, and is lost when one restarts)")
    got = [_visit_count(ex, r) for r in overlapping]
    if not all(isinstance(g, int) for g in got):
        raise ExerciseFailed(ex, f'the visits should be numbers, got {got}')
    got.sort()
    if got != list(range(start + 1, start + at_once + 1)):
        if len(set(got)) < len(got):
            raise ExerciseFailed(ex, f"{at_once} overlapping requests, with {start} visits already counted in the "
                                     f"cache, answered {got}: two overlapping requests got the same number. Reading "
                                     "the count, then writing it back plus one, loses the visits counted in between: "
                                     "add to the count in the cache in one step")
        raise ExerciseFailed(ex, f"the cache already held {start} visits under the key 'visits'; the next "
                                 f"{at_once} requests should answer {start + 1} to {start + at_once}, got {got}: "
                                 "continue from the count in the cache")
    if after_overlapping != start + at_once:
        raise ExerciseFailed(ex, f"after {at_once} more visits the cache held {after_overlapping!r} under 'visits', "
                                 f"expected {start + at_once}")
    if store.get(neighbour) != neighbour_value:
        raise ExerciseFailed(ex, "the view changed another key of the cache: touch only the key 'visits'")
    passed(ex, f"{n} visits counted {counts}; then from {start}, {at_once} overlapping requests got {got}; all "
               f"{len(threads)} cache operations ran in a worker thread")


def _view_errors(ex: str, errors: list[BaseException]) -> None:
    """What the learner's view raised, explained."""
    for exc in errors:
        if "coroutine" in str(exc):
            raise ExerciseFailed(ex, f"the view failed with {type(exc).__name__}: {exc}. A coroutine was used as a "
                                     "value: a missing `await` before a cache a-method")
    for exc in errors:
        if isinstance(exc, ValueError) and "not found" in str(exc):
            raise ExerciseFailed(ex, f"the view raised ValueError: {exc}. aincr() (like incr()) refuses a key that "
                                     "is not in the cache yet, and on the first visit there is no count: store a "
                                     "starting value first, only when the key is missing")
    if errors:
        raise explain(ex, errors[0])


# --- exercise 'email-notify': no async email API ----------------------------------------------------------------

SUBJECT = "Your order is on its way"
BODY = "Thank you for shopping with us."
SENDER = "shop@example.com"


class TracingEmailBackend(EmailBackend):
    """Django's in-memory email backend (messages go to `django.core.mail.outbox`), recording the sending thread.

    It stands in for SMTP, where sending on the event loop's thread would block every other request.
    """

    threads: list[str] = []

    def send_messages(self, messages):
        TracingEmailBackend.threads.append(where())
        return super().send_messages(messages)


def _fresh_address() -> str:
    name = random.choice(["ada", "grace", "alan", "edsger", "barbara", "donald", "frances", "ken"])
    return f"{name}.{secrets.token_hex(3)}@{random.choice(['example.org', 'example.net', 'mail.test'])}"


async def _notify(ex: str, notify, address: str):
    """(what notify returned, the exception it raised, the emails in the outbox when it returned)."""
    try:
        result = await call(ex, notify, address, what="notify()", timeout=20)
    except (ExerciseFailed, NotImplementedError):
        raise
    except (ImportError, AttributeError) as exc:
        if re.search(r"'a\w+'", str(exc)):
            message = str(exc).split(" (")[0]  # an ImportError ends with the module's file path
            raise ExerciseFailed(ex, f"{type(exc).__name__}: {message}. Django 6.1 has no async email API (no "
                                     "asend_mail, no EmailMessage.asend): run the sync send_mail in a worker "
                                     "thread, and await that") from None
        return None, exc, len(mail.outbox)
    except Exception as exc:  # judged after where the mail was sent
        return None, exc, len(mail.outbox)
    return result, None, len(mail.outbox)


async def _late(expected: int, seconds: float = 1.0) -> None:
    """Give an email sent in the background (a task notify did not await) the time to arrive, inside the block."""
    end = time.perf_counter() + seconds
    while len(mail.outbox) < expected and time.perf_counter() < end:
        await asyncio.sleep(0.05)


def _raised(ex: str, error: BaseException) -> ExerciseFailed | Exception:
    if isinstance(error, TypeError) and '"to" argument' in str(error):
        return ExerciseFailed(ex, "send_mail raised TypeError: its recipient list must be a list of addresses, and "
                                  "it got a string: put the address in a list")
    return explain(ex, error)


def _expect_email(ex: str, message, address: str) -> None:
    if message.to != [address]:
        if message.to == [SENDER] or message.from_email == address:
            raise ExerciseFailed(ex, f"the email went to {message.to} from {message.from_email!r}: the sender and the "
                                     "recipient are swapped")
        raise ExerciseFailed(ex, f"the email went to {message.to}, expected [{address!r}], the address notify was "
                                 "given")
    if (message.subject, message.body) == (BODY, SUBJECT):
        raise ExerciseFailed(ex, "the email's subject and body are swapped: send_mail takes the subject first, then "
                                 "the message")
    if message.subject != SUBJECT:
        raise ExerciseFailed(ex, f"the email's subject should be SUBJECT, {SUBJECT!r}; got {message.subject!r}")
    if message.body != BODY:
        raise ExerciseFailed(ex, f"the email's body should be BODY, {BODY!r}; got {message.body[:80]!r}")
    if message.from_email != SENDER:
        raise ExerciseFailed(ex, f"the email should come from SENDER, {SENDER!r}; got {message.from_email!r}")


@exercise_check("email-notify")
async def email_notify(notify) -> None:
    """Exercise 'email-notify': send an email from async code without running the sync mail API on the loop."""
    ex = "email-notify"
    require_async_function(ex, notify, "notify")
    address, *pair = (_fresh_address() for _ in range(3))
    TracingEmailBackend.threads.clear()
    mail.outbox = []
    with override_settings(EMAIL_BACKEND=f"{__name__}.TracingEmailBackend"):
        result, error, at_return = await _notify(ex, notify, address)
        await _late(1)
        if LOOP_THREAD in TracingEmailBackend.threads:
            raise ExerciseFailed(ex, "send_mail ran on the event loop's thread: with a real SMTP server every "
                                     "request on this loop waits for the mail server. Hand the function itself (not "
                                     "the result of calling it) to a worker thread, and await that")
        if error is not None:
            raise _raised(ex, error)
        if not mail.outbox:
            raise ExerciseFailed(ex, "no email was sent: call send_mail (in a worker thread) and await it")
        if at_return == 0:
            raise ExerciseFailed(ex, "the email was sent only after notify had returned: notify must await the send, "
                                     "not leave it to run in the background")
        if len(mail.outbox) != 1:
            raise ExerciseFailed(ex, f"one call of notify sent {len(mail.outbox)} emails, expected one")
        _expect_email(ex, mail.outbox[0], address)
        if type(result) is not int or result != 1:
            raise ExerciseFailed(ex, f"return what send_mail returned (the number of emails sent, 1), got "
                                     f"{str(result)[:80]}")
        mail.outbox = []
        results = await asyncio.gather(*(_notify(ex, notify, a) for a in pair))
        await _late(2)
    if LOOP_THREAD in TracingEmailBackend.threads:
        raise ExerciseFailed(ex, "send_mail ran on the event loop's thread when two calls overlapped")
    errors = [e for _, e, _ in results if e is not None]
    if errors:
        raise _raised(ex, errors[0])
    sent = sorted(tuple(m.to) for m in mail.outbox)
    if sent != sorted((a,) for a in pair) or [r for r, _, _ in results] != [1, 1]:
        raise ExerciseFailed(ex, f"two calls at once, to {pair[0]} and {pair[1]}, sent emails to {sent} and returned "
                                 f"{[r for r, _, _ in results]}: each call should send one email, to its own address")
    passed(ex, f"one email to {address} ({SUBJECT!r}), then two at once, each sent from a worker thread")


# --- exercise 'async-login': authentication and sessions, async end to end ------------------------------------------

FAST_HASHER = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # the check's own users: no 0.3 s PBKDF2 per login
SYNC_AUTH = {  # a sync API of auth or sessions found in the traceback of a SynchronousOnlyOperation: what to use
    "authenticate": "`authenticate()` is sync: it reads the user table on the event loop's thread. Await "
                    "`aauthenticate()` (Django 5.0+)",
    "login": "`login()` is sync: it writes the session on the event loop's thread. Await `alogin()` (Django 5.0+)",
    "logout": "`logout()` is sync: it reads `request.user` and flushes the session on the event loop's thread. Await "
              "`alogout()` (Django 5.0+)",
    "get_user": "`request.user` is a lazy object that loads the user with the sync ORM the first time it is used. "
                "Await the request's async twin, `auser()` (Django 5.0+)",
    "has_perm": "`user.has_perm()` is sync: it reads the permission tables on the event loop's thread. Await "
                "`user.ahas_perm()` (Django 5.2+)",
    "SessionBase._get_session": "the session's dict-like API loaded it from the database on the event loop's thread. "
                                "Await `request.session.aget()` / `aset()` (Django 5.1+)",
}


def _auth_feedback(ex: str, errors: list[BaseException]) -> None:
    """Name the sync auth or session call that ran on the loop's thread; else explain the first error."""
    for exc in errors:
        if type(exc).__name__ != "SynchronousOnlyOperation":
            continue
        names = [frame.f_code.co_qualname for frame, _ in traceback.walk_tb(exc.__traceback__)]
        for name, advice in SYNC_AUTH.items():
            if any(n == name or n.endswith(f".{name}") for n in names):
                raise ExerciseFailed(ex, advice)
    for exc in errors:
        if "coroutine" in str(exc):
            raise ExerciseFailed(ex, f"the view failed with {type(exc).__name__}: {exc}. A coroutine was used as a "
                                     "value: an `await` is missing")
    if errors:
        raise explain(ex, errors[0])


def _answer(ex: str, response, status: int, body: dict, what: str) -> None:
    expect_status(ex, response.status_code, status, what)
    got = expect_json(ex, response, what)
    if got != body:
        raise ExerciseFailed(ex, f"{what} should answer {body}, got {str(got)[:120]}")


@exercise_check("async-login")
async def async_login(account_view) -> None:
    """POST logs in (401 for wrong credentials), GET says who and whether they may view users (403 for anonymous),
    DELETE logs out; the session counts its own logins; no sync auth, session or ORM call on the loop's thread."""
    from django.contrib.auth.models import Permission, User

    ex = "async-login"
    require_async_function(ex, account_view, "account_view")
    tag = secrets.token_hex(3)
    passwords = {f"reader-{tag}": secrets.token_urlsafe(8), f"editor-{tag}": secrets.token_urlsafe(8)}
    async with serving(ex, account_view, PASSWORD_HASHERS=FAST_HASHER) as served:
        reader, editor = [await User.objects.acreate_user(name, password=pw) for name, pw in passwords.items()]
        await editor.user_permissions.aadd(await Permission.objects.aget(codename="view_user",
                                                                          content_type__app_label="auth"))
        try:
            answers = await _exchanges(served, reader.username, editor.username, passwords)
        finally:
            await User.objects.filter(username__in=list(passwords)).adelete()
    expect_all_awaited(ex, served.never_awaited, "an async auth or session call without `await` only creates a "
                                                 "coroutine: nothing is checked, logged in or stored")
    _auth_feedback(ex, served.errors)
    passed(ex, _judge(ex, answers, reader.username, editor.username))


async def _exchanges(served, reader: str, editor: str, passwords: dict[str, str]) -> dict:
    """A visit as a learner's browser makes it, then another browser's: every answer, judged after."""
    c, url = served.client, "/exercise/"
    anonymous = await c.get(url)
    wrong = await c.post(url, data={"username": reader, "password": passwords[reader] + "x"})
    after_wrong = await c.get(url)
    first = await c.post(url, data={"username": reader, "password": passwords[reader]})
    me = await c.get(url)
    second = await c.post(url, data={"username": reader, "password": passwords[reader]})
    out = await c.delete(url)
    after_out = await c.get(url)
    async with client(served.handler) as other:  # another browser: its own session
        editor_first = await other.post(url, data={"username": editor, "password": passwords[editor]})
        editor_me = await other.get(url)
    return {"anonymous": anonymous, "wrong": wrong, "after_wrong": after_wrong, "first": first, "me": me,
            "second": second, "out": out, "after_out": after_out, "editor_first": editor_first, "editor_me": editor_me}


def _judge(ex: str, a: dict, reader: str, editor: str) -> str:
    anonymous, wrong, after_wrong, first, me, second, out, after_out, editor_first, editor_me = (
        a[k] for k in ("anonymous", "wrong", "after_wrong", "first", "me", "second", "out", "after_out",
                       "editor_first", "editor_me"))
    _answer(ex, anonymous, 403, {"user": None}, "GET with no one logged in")
    _answer(ex, wrong, 401, {"ok": False}, "POST with a wrong password")
    if after_wrong.status_code != 403:
        raise ExerciseFailed(ex, "after a POST with a wrong password, GET answered as if someone were logged in: "
                                 "a wrong password must log no one in")
    _answer(ex, first, 200, {"ok": True, "user": reader, "logins": 1}, "the first POST with the right password")
    _answer(ex, me, 200, {"user": reader, "can_view_users": False}, "GET after logging in (a user without the "
                                                                    "permission auth.view_user)")
    _answer(ex, second, 200, {"ok": True, "user": reader, "logins": 2}, "a second login in the same session")
    _answer(ex, out, 200, {"ok": True}, "DELETE")
    if after_out.status_code != 403:
        raise ExerciseFailed(ex, "after DELETE, GET still answered for a logged-in user: DELETE must log out")
    if editor_first.status_code == 200 and expect_json(ex, editor_first, "POST").get("logins") != 1:
        raise ExerciseFailed(ex, "another browser's first login did not answer logins=1: each session counts its own "
                                 "logins, in the session (a variable in the process counts everyone's)")
    _answer(ex, editor_first, 200, {"ok": True, "user": editor, "logins": 1}, "another browser's first login")
    _answer(ex, editor_me, 200, {"user": editor, "can_view_users": True}, "GET for a user who has the permission "
                                                                          "auth.view_user")
    return (f"{reader}: 403 before, 401 for a wrong password, logins 1 then 2, logged out by DELETE; {editor} in "
            "another session: logins 1, may view users")
