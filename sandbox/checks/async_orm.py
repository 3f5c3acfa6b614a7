"""Checks for the exercises of chapter 04, the async ORM.

Each check creates its own rows in the library database (authors, tags and books with names drawn at random for
the run), runs the learner's code against them (a view through Django's ASGI handler, functions awaited on the
notebook's event loop), reads every row back, and deletes what it created, putting back any row of the library
that the answer changed. So an answer that copies the seeded library, forgets a filter or moves the wrong rows is
seen for what it does.

When the learner's code raises `SynchronousOnlyOperation`, the feedback says *what* ran the sync ORM on the
event loop's thread, read from the traceback of the error that really happened: a lazy foreign key, a related
manager's queryset that was not prefetched, a QuerySet evaluated with a plain `for`, a sync manager method,
`transaction.atomic`, a template, a cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import re
import sys
from dataclasses import dataclass, field
from datetime import date, timedelta

from asgiref.sync import sync_to_async
from django.core.exceptions import ObjectDoesNotExist, SynchronousOnlyOperation
from django.db import connections, transaction
from django.db.models.signals import m2m_changed, pre_save
from django.test import override_settings

from sandbox.checks.common import ExerciseFailed, not_attempted, passed, require_async_function
from sandbox.checks.givens import async_orm as given
from sandbox.checks.harness import (
    Requirements,
    call,
    exercise_check,
    expect_all_awaited,
    expect_json,
    expect_status,
    explain,
    explain_sync_only,
    frame_local,
    never_awaited,
    serving,
)
from sandbox.lab.trace import capture_log, sql_of


def __getattr__(name: str):
    """`check.PUBLISHED` is the given's, read when it is asked for: the check gives it a new date for each call
    of `publish` (exercise 3)."""
    if name == "PUBLISHED":
        return given.PUBLISHED
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


REQUIREMENTS = {
    "books-by-tag": Requirements("4a655fb09256", (
        ("`books_by_tag`, an async view for `GET ?tag=<name>`",
         "an `async def` function, served by Django's ASGI handler, asked for tags the check created for this run "
         "(new names, authors and titles every run, so an answer copied from the seeded library fails)"),
        ("It answers, as JSON, the tag's name and its books",
         "HTTP 200, Content-Type application/json, an object with exactly the keys 'tag' (the name asked for) "
         "and 'books'; the books are exactly those with that tag: not a book of a tag whose name only contains it, "
         "not an untagged book, none missing, none twice"),
        ("ordered by title",
         "the books were created, and published, in an order that is not the order of their titles"),
        ("each with its title, its author's name and the names of all its tags",
         "each book has exactly the keys title, author, tags; two authors; the books carry other tags besides the "
         "one asked for, and all of them must be listed (in any order)"),
        ("An unknown tag answers **404**", "a tag name that does not exist answers HTTP 404, not a 500 or a 200"),
        ("A tag that exists but has no books answers an empty list of books",
         "a tag the check created with no books: HTTP 200 and 'books' == []"),
        ("Nothing may run the sync ORM on the event loop's thread (no lazy foreign key, no related rows that were "
         "not prefetched)",
         "a SynchronousOnlyOperation raised in the view is named by what ran the sync ORM (lazy foreign key, "
         "related rows, sync method); a coroutine never awaited fails"),
        ("the number of queries must not grow with the number of books",
         "the queries of a tag with one book and of a tag with five books are counted (in every thread): the "
         "five-book tag may not run more"),
        ("(a view serves many requests at once)",
         "two tags asked at the same moment: each answer must be its own tag's books"),
    )),
    "move-books": Requirements("164118f13a70", (
        ("`move_books(titles, author_name)`: give every book in `titles` to the author called `author_name`",
         "two books of two different authors, created for this run, are moved to a third new author: both must "
         "then be that author's, and every other row of the library (the other new books, the seeded ones) must "
         "keep its author"),
        ("It must be all or nothing: when one title does not exist ... let that error out",
         "a list with a missing title in the middle must raise Book.DoesNotExist out of move_books (not return, "
         "not another error)"),
        ("make sure that no book was moved, not even the ones before the missing title",
         "after that call every row is as it was before it; when it is not, the check says what it saw: writes "
         "with no transaction open, writes in several transactions, or one transaction that committed before the "
         "error"),
        ("from async code", "an `async def` function; transaction.atomic entered on the event loop's thread, or "
                            "with `async with`, is named as such"),
    )),
    "publish": Requirements("da19ab33f4d8", (
        ("`publish(author_name, titles, tag_names)`: for each title, create a book",
         "an author, three tags and three titles new for this run: exactly one new book per title, no other book "
         "created or changed (the author's existing book keeps its tags), no new tag"),
        ("through the author's related manager (`author.books`)",
         "every new book is saved from a call of that author's related manager (create, get_or_create, "
         "update_or_create or add), observed in the save itself"),
        ("published on the date in `PUBLISHED`, read when the function runs",
         "the check sets `PUBLISHED` to a new date for the call: every new book must carry it"),
        ("tag it with every tag in `tag_names` (the tags already exist) through the book's `tags` manager",
         "two of the three new tags are asked for: each new book has exactly those two, added through a related "
         "manager (m2m_changed seen); a coroutine never awaited fails"),
        ("Return the new `Book` objects in the order of `titles`",
         "the titles are not in alphabetical order; the result must be a list of saved Book objects, the rows "
         "just created, in the order of `titles`; no titles: an empty list and no book"),
    )),
    "tag-pages": Requirements("5fbeed187c53", (
        ("`tag_page`, an async view for `GET ?tag=<name>&page=<n>`: the books that carry that tag, by title",
         "a tag made for this run on 7, 8, 10 or 11 new books by three authors (the last page short), created in "
         "shuffled order; a book of a tag whose name only contains it must not appear"),
        ("3 a page, answered as JSON: `{\"tag\", \"page\", \"pages\", \"books\"}`, each book with its title, "
         "its author's name and the names of all its tags",
         "pages 1, 2 and the last are compared book by book with the expected slice (exact keys, all tags in any "
         "order), with the page number and the number of pages"),
        ("A missing or non-numeric page gives page 1 and a page past the end gives the last page",
         "no page, page=first and a page 5 past the end: pages 1, 1 and the last; an InvalidPage raised is named"),
        ("A tag that no book carries (or that does not exist) answers **404**",
         "a tag made for this run with no books, and a name that is no tag: HTTP 404 both"),
        ("Every request runs **at most 3 queries**, however many books the page holds",
         "the SQL of each request is counted in every thread: more than 3 in any request fails (book-by-book "
         "author or tag queries)"),
        ("nothing runs the sync ORM on the event loop",
         "a SynchronousOnlyOperation is named by what ran the sync ORM (the sync Paginator, a lazy foreign key, "
         "tags not prefetched); a coroutine never awaited fails"),
    )),
}


# --- turning what the learner's code raised into feedback ------------------------------------------------------

def _raise_for(exercise: str, exc: BaseException, what: str) -> None:
    """Turn an exception from the learner's code into feedback: the async mistake it means, or what raised it."""
    if isinstance(exc, ExerciseFailed):
        raise exc
    if isinstance(exc, NotImplementedError):
        raise not_attempted(exercise) from None
    if isinstance(exc, SynchronousOnlyOperation):
        raise ExerciseFailed(exercise, f"{what} {explain_sync_only(exc)}") from None
    text = str(exc)
    if isinstance(exc, AttributeError) and "'aall'" in text:
        raise ExerciseFailed(exercise, f"{what} AttributeError ({text}): there is no aall() in Django. "
                                       "`Model.objects.all()` is lazy and safe in async code; evaluate it with "
                                       "`async for`") from None
    if isinstance(exc, TypeError) and "asynchronous context manager" in text:
        raise ExerciseFailed(exercise, f"{what} TypeError ({text}): transaction.atomic does not work in async "
                                       "code, not even as `async with`: put the transaction in one sync function "
                                       "and call that with sync_to_async") from None
    if "coroutine" in text:
        raise ExerciseFailed(exercise, f"{what} {type(exc).__name__} ({text}): a coroutine was used as a value, "
                                       "so an `await` is missing where it was created") from None
    raise explain(exercise, exc) from None


def _async_mistake(exc: BaseException) -> bool:
    """An error that an async mistake causes, as opposed to the error a task asks for (a missing row)."""
    text = str(exc)
    return (isinstance(exc, NotImplementedError | SynchronousOnlyOperation | ExerciseFailed)
            or "coroutine" in text or "await" in text or "asynchronous context manager" in text)


async def _db(fn, *args, seconds: float = 30):
    """Run one of the check's own sync ORM functions in a worker thread, with a deadline."""
    async with asyncio.timeout(seconds):
        return await sync_to_async(fn)(*args)


def _view_failures(ex: str, served, named, unawaited: str) -> None:
    """What the learner's view raised, in order: the exercise's own mistake (`named(exc)` gives its feedback, or
    None), else the async mistake or where it raised; then any coroutine left unawaited."""
    for exc in served.errors:
        feedback = named(exc)
        if feedback:
            raise ExerciseFailed(ex, feedback)
        _raise_for(ex, exc, "the view raised")
    expect_all_awaited(ex, _coroutine_names(served.never_awaited), unawaited)


def _short(value, width: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= width else text[:width] + "..."


def _coroutine_names(names: list[str]) -> list[str]:
    """`create_forward_many_to_many_manager.<locals>.ManyRelatedManager.aadd` -> `ManyRelatedManager.aadd`."""
    return [name.rsplit("<locals>.", 1)[-1] for name in names]


# --- counting queries in every thread ---------------------------------------------------------------------------

@contextlib.contextmanager
def count_queries():
    """Collect the SQL run while the block runs, in any thread (the async ORM queries from worker threads), as
    (thread name, SQL) pairs; DEBUG is on meanwhile, so Django logs every query."""
    sql: list[tuple[str, str]] = []
    with override_settings(DEBUG=True), capture_log("django.db.backends") as kept:
        try:
            yield sql
        finally:
            sql += [(thread, sql_of(record)) for thread, record in kept.records]


# --- the rows a check creates for itself, and the library around them -------------------------------------------

ADJECTIVES = ["Amber", "Brass", "Cedar", "Dusk", "Ember", "Frost", "Granite", "Hollow", "Ivory", "Juniper",
              "Lantern", "Marble", "Nettle", "Opal", "Pewter", "Quartz", "Russet", "Saffron", "Tidal", "Umber",
              "Velvet", "Willow"]
NOUNS = ["Atlas", "Bridge", "Canal", "Delta", "Echo", "Fable", "Garden", "Island", "Journey", "Kettle", "Ledger",
         "Meadow", "Passage", "Quarry", "River", "Signal", "Tower", "Valley"]
FIRST = ["Ada", "Bruno", "Celia", "Dmitri", "Elif", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kiri", "Lior"]
LAST = ["Ashdown", "Brightwater", "Calloway", "Dunmore", "Everly", "Fairbank", "Greenhalgh", "Holloway"]
TAG_WORDS = ["astronomy", "ballads", "cookery", "drama", "essays", "folklore", "gardening", "history", "maps",
             "nautical", "opera", "puzzles", "rivers", "sagas", "travel", "weather"]


@dataclass
class Shelf:
    """Rows a check creates for one run: authors, tags and books whose names carry the run's token."""

    token: str = field(default_factory=lambda: f"{random.randrange(16 ** 5):05x}")
    authors: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    books: dict[str, tuple[str, list[str], date]] = field(default_factory=dict)  # title: (author, tags, published)

    def author_names(self, n: int) -> list[str]:
        names = [f"{first} {last} {self.token}" for first, last in
                 zip(random.sample(FIRST, n), random.sample(LAST, n), strict=True)]
        self.authors += names
        return names

    def tag_names(self, n: int) -> list[str]:
        names = [f"{word}-{self.token}" for word in random.sample(TAG_WORDS, n)]
        self.tags += names
        return names

    def titles(self, n: int) -> list[str]:
        """n new titles, in alphabetical order (distinct first words)."""
        return [f"{adjective} {noun} {self.token}" for adjective, noun in
                zip(sorted(random.sample(ADJECTIVES, n)), random.sample(NOUNS, n), strict=True)]

    def create(self, order: list[str] | None = None) -> None:
        """Create the rows, books in `order` (titles), in one transaction. Runs in a worker thread."""
        from sandbox.library.models import Author, Book, Tag

        with transaction.atomic():
            authors = {name: Author.objects.create(name=name, born=random.randint(1940, 2000))
                       for name in self.authors}
            tags = {name: Tag.objects.create(name=name) for name in self.tags}
            for title in order or list(self.books):
                author, tag_names, published = self.books[title]
                book = Book.objects.create(title=title, author=authors[author], published=published,
                                           pages=random.randint(90, 600))
                book.tags.set([tags[name] for name in tag_names])

    def remove(self) -> None:
        """Delete every row of this run: its books (and any book titled with its token), tags and authors."""
        from sandbox.library.models import Author, Book, Tag

        with transaction.atomic():
            Book.objects.filter(title__contains=self.token).delete()
            Book.objects.filter(author__name__in=self.authors).delete()
            Tag.objects.filter(name__in=self.tags).delete()
            Author.objects.filter(name__in=self.authors).delete()


@dataclass(frozen=True)
class Library:
    """Every book's row and every book-tag link, to tell what an answer changed (and to put it back)."""

    books: dict[int, tuple]  # pk: (title, author name, author id, published, pages, series id)
    links: frozenset  # (book id, tag id)

    @staticmethod
    def read() -> Library:
        from sandbox.library.models import Book

        rows = Book.objects.values_list("pk", "title", "author__name", "author_id", "published", "pages",
                                        "series_id")
        return Library({pk: tuple(rest) for pk, *rest in rows},
                       frozenset(Book.tags.through.objects.values_list("book_id", "tag_id")))

    def changed(self, after: Library, *, skip: set[int] = frozenset()) -> list[str]:
        """What `after` changed in the rows of this snapshot (outside `skip`), described."""
        found = []
        for pk, (title, author, *_rest) in self.books.items():
            if pk in skip:
                continue
            now = after.books.get(pk)
            if now is None:
                found.append(f"{title!r} was deleted")
            elif now[1] != author:
                found.append(f"{title!r} now belongs to {now[1]!r}, not {author!r}")
            elif now != self.books[pk]:
                found.append(f"{title!r} changed")
            elif {t for b, t in after.links if b == pk} != {t for b, t in self.links if b == pk}:
                found.append(f"{title!r} has other tags now")
        return found

    def restore(self) -> None:
        """Put back the author and the tags of every book of the snapshot that still exists."""
        from sandbox.library.models import Book

        now = Library.read()
        through = Book.tags.through
        with transaction.atomic():
            for pk, row in self.books.items():
                if pk in now.books and now.books[pk][2] != row[2]:
                    Book.objects.filter(pk=pk).update(author_id=row[2])
            extra = [link for link in now.links - self.links if link[0] in self.books]
            for book_id, tag_id in extra:
                through.objects.filter(book_id=book_id, tag_id=tag_id).delete()
            missing = [link for link in self.links - now.links if link[0] in now.books]
            through.objects.bulk_create([through(book_id=b, tag_id=t) for b, t in missing], ignore_conflicts=True)


def _orders(n: int) -> tuple[list[int], list[int]]:
    """Two permutations of range(n), neither the order of the titles nor its reverse, and not equal."""
    def shuffled():
        while True:
            order = random.sample(range(n), n)
            if order not in (list(range(n)), list(range(n))[::-1]):
                return order
    first = shuffled()
    while (second := shuffled()) == first:
        pass
    return first, second


# --- exercise 1: an async view over the library ------------------------------------------------------------------

def _books_of(shelf: Shelf, tag: str) -> list[dict]:
    """What the view must answer for `tag`: the shelf's books with that tag, by title."""
    return [{"title": title, "author": author, "tags": sorted(tags)}
            for title, (author, tags, _) in sorted(shelf.books.items()) if tag in tags]


def _expect_tag_answer(ex: str, asked: str, response, shelf: Shelf) -> None:
    """The answer for ?tag=`asked` must be that tag's books, each with author and all its tags, by title."""
    label = f"?tag={asked}"
    expect_status(ex, response.status_code, 200, label)
    body = expect_json(ex, response, label)
    if not isinstance(body, dict) or set(body) != {"tag", "books"}:
        keys = sorted(body) if isinstance(body, dict) else type(body).__name__
        raise ExerciseFailed(ex, f"{label} answered {_short(body, 120)}: expected an object with exactly the keys "
                                 f"'tag' and 'books' (got {keys})")
    if body["tag"] != asked:
        raise ExerciseFailed(ex, f"{label} answered \"tag\": {body['tag']!r}: it should be the name of the tag "
                                 "asked for")
    _expect_books(ex, label, asked, body["books"], _books_of(shelf, asked), shelf)


def _expect_books(ex: str, label: str, asked: str, books, expected: list[dict], shelf: Shelf) -> None:
    """`books` must be `expected` (the shelf's books of tag `asked`, or a page of them), each with author and
    all its tags, by title."""
    if not isinstance(books, list) or not all(isinstance(b, dict) for b in books):
        raise ExerciseFailed(ex, f"{label}: 'books' should be a list of objects, got {_short(books, 120)}")
    for book in books:
        if set(book) != {"title", "author", "tags"}:
            raise ExerciseFailed(ex, f"{label}: a book is {_short(book, 120)}; each book should have exactly the "
                                     f"keys 'title', 'author' and 'tags' (got {sorted(book)})")
    titles, wanted = [b["title"] for b in books], [b["title"] for b in expected]
    if len(set(map(str, titles))) < len(titles):
        twice = next(t for t in titles if titles.count(t) > 1)
        raise ExerciseFailed(ex, f"{label} lists {twice!r} {titles.count(twice)} times: each book once")
    stray = [t for t in titles if t not in wanted]
    if stray:
        tags = shelf.books[stray[0]][1] if stray[0] in shelf.books else None
        what = f"its tags are {sorted(tags)}" if tags is not None else "a book of the library outside this test"
        raise ExerciseFailed(ex, f"{label} answered {len(stray)} book(s) not tagged {asked!r}, e.g. {stray[0]!r} "
                                 f"({what}): only the books that have exactly this tag belong in the answer")
    missing = [t for t in wanted if t not in titles]
    if missing:
        raise ExerciseFailed(ex, f"{label} left out {len(missing)} of the {len(wanted)} books tagged {asked!r}, "
                                 f"e.g. {missing[0]!r}")
    by_title = {b["title"]: b for b in expected}
    for book in books:
        want = by_title[book["title"]]
        if book["author"] != want["author"]:
            raise ExerciseFailed(ex, f"{label}: {book['title']!r} has \"author\": {_short(book['author'], 60)}, "
                                     f"expected its author's name, {want['author']!r}")
        got = book["tags"]
        if not isinstance(got, list) or not all(isinstance(t, str) for t in got):
            raise ExerciseFailed(ex, f"{label}: {book['title']!r} has \"tags\": {_short(got, 80)}; expected a "
                                     "list of tag names")
        if sorted(got) != want["tags"]:
            raise ExerciseFailed(ex, f"{label}: {book['title']!r} has the tags {sorted(got)}, expected all its "
                                     f"tags, {want['tags']} (in any order)")
    if titles != wanted:
        raise ExerciseFailed(ex, f"{label}: the books are all there but not in the order of their titles: got "
                                 f"{titles}, expected {wanted}")


@exercise_check("books-by-tag")
async def books_by_tag(view) -> None:
    """Exercise 'books-by-tag': an async view answering the books of one tag, with authors and tags, as JSON."""
    ex = "books-by-tag"
    require_async_function(ex, view, "books_by_tag")
    shelf = Shelf()
    first, second = shelf.author_names(2)
    big, small, empty, other = shelf.tag_names(4)
    near = f"{big}-club"  # a tag whose name holds the asked one: a `contains` lookup would match it
    shelf.tags.append(near)
    titles = shelf.titles(7)
    dates = [date(2000, 1, 1) + timedelta(days=d) for d in sorted(random.sample(range(9000), len(titles)))]
    created, published = _orders(5)
    tagged = [[big, other], [big], [big, small, other], [big, near], [big, other, near]]
    for k, title in enumerate(titles[:5]):
        shelf.books[title] = ((first, second)[k % 2], tagged[k], dates[published[k]])
    shelf.books[titles[5]] = (second, [near, other], dates[5])  # not tagged `big`: only its name is close
    shelf.books[titles[6]] = (first, [], dates[6])  # no tags at all
    order = [titles[k] for k in created] + titles[5:]
    unknown = f"no-such-tag-{shelf.token}"
    await _db(shelf.create, order)
    try:
        async with serving(ex, view, DEBUG=True) as served:
            counted = {}
            answers = {}
            for asked in (small, big, empty, unknown):  # the first request pays any warm-up, not the big tag
                with count_queries() as sql:
                    answers[asked] = await served.client.get("/exercise/", params={"tag": asked})
                counted[asked] = len(sql)
            together = await asyncio.gather(*(served.client.get("/exercise/", params={"tag": t})
                                              for t in (big, small)))
    finally:
        await _db(shelf.remove)
    _view_failures(ex, served, lambda exc: (
        f"the view raised {type(exc).__qualname__} ({exc}), which Django answers with HTTP 500: a tag that does not "
        "exist must answer 404, so turn the missing row into Http404"
        if isinstance(exc, ObjectDoesNotExist) and not _async_mistake(exc) else None),
        "calling an async ORM method without `await` only creates a coroutine; no query ran")
    _expect_tag_answer(ex, big, answers[big], shelf)
    _expect_tag_answer(ex, small, answers[small], shelf)
    if answers[empty].status_code == 404:
        raise ExerciseFailed(ex, f"?tag={empty} answered HTTP 404, but that tag exists and has no books: answer "
                                 "HTTP 200 with an empty list of books (404 is for a tag that does not exist)")
    _expect_tag_answer(ex, empty, answers[empty], shelf)
    if answers[unknown].status_code != 404:
        raise ExerciseFailed(ex, f"?tag={unknown}, a tag that does not exist, answered HTTP "
                                 f"{answers[unknown].status_code}: an unknown tag must answer 404")
    if counted[big] > counted[small]:
        raise ExerciseFailed(ex, f"?tag={small} (1 book) ran {counted[small]} queries, ?tag={big} (5 books) ran "
                                 f"{counted[big]}: the queries grow with the books, one or more per book (N+1), "
                                 "and each is a hop to a worker thread. Load the authors with the books "
                                 "(select_related) and all their tags at once (prefetch_related)")
    for asked, response in zip((big, small), together, strict=True):
        try:
            _expect_tag_answer(ex, asked, response, shelf)
        except ExerciseFailed as failed:
            raise ExerciseFailed(ex, f"with ?tag={big} and ?tag={small} asked at the same moment: "
                                     f"{failed.feedback}. Keep what one request reads in that request's own "
                                     "variables, not in a global or a cache shared by requests") from None
    passed(ex, f"5 books (by title, with authors and all their tags) in {counted[big]} queries, as many as for 1 "
               "book; an empty tag, a 404 for an unknown one, two requests at once each with its own answer")


# --- exercise 2: a transaction from async code ----------------------------------------------------------------

class _Committed:
    """An on_commit callback that marks one transaction: its number, and whether it committed."""

    def __init__(self, number: int, committed: set[int]):
        self.number, self.committed = number, committed

    def __call__(self) -> None:
        self.committed.add(self.number)


class _Writes(logging.Handler):
    """Every write to the books table, and the transaction it ran in (None: autocommit, committed at once).

    Django logs each query from the thread that ran it, so the connection looked at is the one that wrote. The
    first write of a transaction leaves a marker among the connection's on_commit callbacks (they are dropped at
    every commit or rollback): a write that finds it belongs to the same transaction.
    """

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.writes: list[int | None] = []
        self.committed: set[int] = set()
        self.numbers = itertools.count(1)

    def emit(self, record: logging.LogRecord) -> None:
        sql = sql_of(record)
        if not re.match(r'\s*(UPDATE|INSERT INTO|DELETE FROM)\s+"?library_book"?\s', sql):
            return
        connection = connections[getattr(record, "alias", None) or "default"]
        if not connection.in_atomic_block:
            self.writes.append(None)
            return
        for _, func, _ in connection.run_on_commit:
            if isinstance(func, _Committed):
                self.writes.append(func.number)
                return
        marker = _Committed(next(self.numbers), self.committed)
        connection.on_commit(marker)
        self.writes.append(marker.number)


async def _move(ex: str, move_books, titles: list[str], author: str):
    """Call move_books with a deadline: (what it raised or None), what its code wrote."""
    with override_settings(DEBUG=True), capture_log("django.db.backends", _Writes()) as writes:
        try:
            await call(ex, move_books, titles, author, what="move_books", timeout=20)
        except (ExerciseFailed, NotImplementedError):
            raise
        except Exception as exc:
            return exc, writes
    return None, writes


def _why_kept(writes: _Writes, error: BaseException | None) -> str:
    """What the check saw of the transactions of a call that left books moved."""
    if not writes.writes:
        return "The check saw no write to the books table it could follow: the changes were not rolled back"
    if error is None:
        return ("move_books returned normally: the missing title raised no error out of it (was it caught, or did "
                "a filter that matches no row stand in for the lookup?), so nothing rolled back")
    if None in writes.writes:
        return ("No transaction was open when the books were written: each change committed on its own, before "
                "the missing title raised")
    numbers = sorted({n for n in writes.writes if n is not None})
    if len(numbers) > 1:
        return (f"The books were written in {len(numbers)} separate transactions (one per book, or per call "
                "handed to a worker thread), so the ones before the missing title had committed when it raised")
    return ("The books were written in one transaction, but it committed before the error came out: the missing "
            "title must raise inside the transaction, so that it rolls back")


@exercise_check("move-books")
async def move_books_atomically(move_books) -> None:
    """Exercise 'move-books': give books to another author, all or nothing, from async code."""
    from sandbox.library.models import Book

    ex = "move-books"
    require_async_function(ex, move_books, "move_books")
    shelf = Shelf()
    owner, other, target = shelf.author_names(3)
    titles = shelf.titles(7)
    random.shuffle(titles)
    owners = [owner, other, owner, other, owner, owner, target]
    for title, author in zip(titles, owners, strict=True):
        shelf.books[title] = (author, [], date(2010, 1, 1) + timedelta(days=random.randint(0, 5000)))
    first = [titles[0], titles[1]]  # one book of each of two authors
    missing = f"No Such Book {shelf.token}"
    second = [titles[2], titles[3], missing, titles[4]]  # the missing title in the middle
    await _db(shelf.create)
    before = await _db(Library.read)
    try:
        error, _ = await _move(ex, move_books, first, target)
        if error is not None:
            _raise_for(ex, error, f"move_books({first}, {target!r}) raised")
        after = await _db(Library.read)
        moved = {pk for pk, row in before.books.items() if row[0] in first}
        wrong = [f"{after.books[pk][0]!r} belongs to {after.books[pk][1]!r}" for pk in moved
                 if pk in after.books and after.books[pk][1] != target]
        if wrong:
            raise ExerciseFailed(ex, f"after move_books({first}, {target!r}), {wrong[0]}, not to {target!r}: the "
                                     "books should go to the author called `author_name`")
        changed = before.changed(after, skip=moved)
        if changed:
            raise ExerciseFailed(ex, f"move_books({first}, {target!r}) also changed {len(changed)} book(s) not in "
                                     f"`titles`: {changed[0]}. Only the books named in `titles` may change")

        error, writes = await _move(ex, move_books, second, target)
        if error is not None and not isinstance(error, Book.DoesNotExist):
            if _async_mistake(error):
                _raise_for(ex, error, f"move_books({second}, ...) raised")
            raise ExerciseFailed(ex, f"with a missing title, move_books raised {type(error).__qualname__} "
                                     f"({error}), not Book.DoesNotExist: let the error of the lookup out as it is, "
                                     "so the caller can tell what was missing")
        final = await _db(Library.read)
        kept = after.changed(final)
        if kept:
            raise ExerciseFailed(ex, f"move_books({second}, {target!r}) moved books although {missing!r} does not "
                                     f"exist: {kept[0]}. {_why_kept(writes, error)}")
        if error is None:
            raise ExerciseFailed(ex, f"move_books({second}, {target!r}) returned normally, although {missing!r} "
                                     "does not exist: let Book.DoesNotExist out, so the caller knows nothing was "
                                     "moved")
    finally:
        with contextlib.suppress(Exception):
            await _db(before.restore)
        await _db(shelf.remove)
    passed(ex, f"two books of two authors moved to {target!r}, every other row untouched; a list with a missing "
               "title raised Book.DoesNotExist and moved nothing")


# --- exercise 3: related managers -------------------------------------------------------------------------------

@contextlib.contextmanager
def _watch_publish(author: str):
    """Record, for every Book saved, whether a related manager of `author` saved it; and every m2m change of a
    book's tags through a related manager (the m2m_changed signal)."""
    from sandbox.library.models import Author, Book

    saved: dict[str, bool] = {}
    tagged: set[int] = set()  # the pks of books whose tags a related manager changed

    def on_save(sender, instance, **kwargs):
        frame, through_manager = sys._getframe(1), False
        while frame is not None:
            if frame.f_code.co_name in {"create", "get_or_create", "update_or_create", "add"}:
                manager = frame_local(frame, "self")
                if (type(manager).__name__ == "RelatedManager" and isinstance(getattr(manager, "instance", None),
                                                                               Author)
                        and manager.instance.name == author):
                    through_manager = True
                    break
            frame = frame.f_back
        saved[instance.title] = saved.get(instance.title, False) or through_manager

    def on_tags(sender, instance, action, reverse, pk_set, **kwargs):
        if action == "post_add":
            tagged.update((pk_set or ()) if reverse else [instance.pk])

    pre_save.connect(on_save, sender=Book, weak=False)
    m2m_changed.connect(on_tags, sender=Book.tags.through, weak=False)
    try:
        yield saved, tagged
    finally:
        pre_save.disconnect(on_save, sender=Book)
        m2m_changed.disconnect(on_tags, sender=Book.tags.through)


@contextlib.contextmanager
def _published_on(fn, day: date):
    """`PUBLISHED` is `day` while the block runs: in the learner's namespace and in the given (which the learner
    may read as `check.PUBLISHED`)."""
    space = getattr(fn, "__globals__", {})
    had, old, mine = "PUBLISHED" in space, space.get("PUBLISHED"), given.PUBLISHED
    space["PUBLISHED"], given.PUBLISHED = day, day
    try:
        yield
    finally:
        given.PUBLISHED = mine
        if had:
            space["PUBLISHED"] = old
        else:
            space.pop("PUBLISHED", None)


def _new_books(titles: list[str]) -> dict[str, tuple]:
    from sandbox.library.models import Book

    books = Book.objects.filter(title__in=titles).select_related("author").prefetch_related("tags")
    return {b.title: (b.pk, b.author.name, sorted(t.name for t in b.tags.all()), b.published) for b in books}


def _tag_count() -> int:
    from sandbox.library.models import Tag

    return Tag.objects.count()


async def _publish(ex: str, publish, day: date, *args):
    """Call publish with a deadline, `PUBLISHED` set to `day`; what it raised, explained."""
    with _published_on(publish, day):
        try:
            return await call(ex, publish, *args, what="publish", timeout=20)
        except (ExerciseFailed, NotImplementedError):
            raise
        except Exception as exc:
            _raise_for(ex, exc, f"publish{tuple(args)} raised")


@exercise_check("publish")
async def publish_books(publish) -> None:
    """Exercise 'publish': create books through an author's related manager and tag them."""
    from sandbox.library.models import Book

    ex = "publish"
    require_async_function(ex, publish, "publish")
    shelf = Shelf()
    (author,) = shelf.author_names(1)
    first, second, third = shelf.tag_names(3)
    names = [second, first]  # two of the three, not in alphabetical order
    old, *titles = shelf.titles(4)
    shelf.books[old] = (author, [third], date(2011, 5, 4))  # the author's book from before: it must not change
    titles = titles[::-1] if random.random() < 0.5 else [titles[1], titles[2], titles[0]]  # not by title
    day = date(2030, 1, 1) + timedelta(days=random.randint(0, 3000))
    await _db(shelf.create)
    before, tags_before = await _db(Library.read), await _db(_tag_count)
    try:
        with _watch_publish(author) as (saved, tagged), never_awaited() as dropped:
            result = await _publish(ex, publish, day, author, titles, names)
        expect_all_awaited(ex, _coroutine_names(dropped),
                           "an async method called without `await` only creates a coroutine: what it should have "
                           "done never happened")
        rows = await _db(_new_books, titles)
        absent = [t for t in titles if t not in rows]
        if absent:
            raise ExerciseFailed(ex, f"publish({author!r}, {titles}, {names}) created no book titled {absent[0]!r} "
                                     f"({len(rows)} of {len(titles)} were created)")
        for title in titles:
            _, by, tags, published = rows[title]
            if by != author:
                raise ExerciseFailed(ex, f"the new book {title!r} belongs to {by!r}, not to {author!r}")
            if published != day:
                raise ExerciseFailed(ex, f"the new book {title!r} was published on {published}; expected the date in "
                                         f"`PUBLISHED` when publish runs (the check set it to {day} for this run)")
            if tags != sorted(names):
                raise ExerciseFailed(ex, f"the new book {title!r} is tagged {tags}, expected exactly the tags in "
                                         f"tag_names, {sorted(names)}")
        direct = [t for t in titles if not saved.get(t)]
        if direct:
            raise ExerciseFailed(ex, f"{len(direct)} of the new books (e.g. {direct[0]!r}) were not created through "
                                     "the author's related manager (`author.books`): the task asks for that "
                                     "manager, which sets the author for you")
        untagged = [t for t in titles if rows[t][0] not in tagged]
        if untagged:
            raise ExerciseFailed(ex, f"the tags of {untagged[0]!r} were not added through a related manager "
                                     "(`book.tags`): no m2m_changed signal was sent for it")
        after = await _db(Library.read)
        changed = before.changed(after)
        if changed:
            raise ExerciseFailed(ex, f"publish changed a book that is not one of the new ones: {changed[0]}. Only "
                                     "the books it creates may change")
        extra = [row[0] for pk, row in after.books.items() if pk not in before.books and row[0] not in titles]
        if extra:
            raise ExerciseFailed(ex, f"publish created a book that is not in `titles`: {extra[0]!r}")
        if await _db(_tag_count) != tags_before:
            raise ExerciseFailed(ex, "publish changed the number of tags: the tags already exist, so use them as "
                                     "they are")
        pks = [rows[t][0] for t in titles]
        if not isinstance(result, list) or not all(isinstance(b, Book) for b in result):
            raise ExerciseFailed(ex, f"publish returned {_short(result, 120)}: return the new Book objects, as a "
                                     "list")
        got = [b.title for b in result]
        if sorted(got) == sorted(titles) and got != titles:
            raise ExerciseFailed(ex, f"publish returned the books in the order {got}: return them in the order of "
                                     f"`titles`, {titles}")
        if got != titles or [b.pk for b in result] != pks:
            raise ExerciseFailed(ex, f"publish returned the books {got} (pks {[b.pk for b in result]}): expected "
                                     f"the books it created, {titles} (pks {pks})")
        nothing = await _publish(ex, publish, day, author, [], names)
        if nothing != []:
            raise ExerciseFailed(ex, f"publish({author!r}, [], {names}) returned {_short(nothing, 80)}: with no "
                                     "titles, return an empty list")
    finally:
        with contextlib.suppress(Exception):
            await _db(before.restore)
        await _db(shelf.remove)
    passed(ex, f"{len(titles)} books created through the related manager of {author!r}, published {day}, each tagged "
               "with exactly the tags asked for, returned in the order of the titles; nothing else changed (the "
               "check deleted its rows again)")


# --- exercise 4: a paginated listing under a query budget -------------------------------------------------------

PER_PAGE = 3
QUERY_BUDGET = 3


def _page_answer(ex: str, response, label: str) -> dict:
    expect_status(ex, response.status_code, 200, label)
    body = expect_json(ex, response, label)
    if not isinstance(body, dict) or set(body) != {"tag", "page", "pages", "books"}:
        raise ExerciseFailed(ex, f"{label} should answer an object with exactly the keys 'tag', 'page', 'pages' and "
                                 f"'books', got {_short(body, 120)}")
    return body


@exercise_check("tag-pages")
async def tag_pages(view) -> None:
    """Exercise 'tag-pages': one tag's books, 3 a page with Django's async paginator, 404 for a tag no book has, and
    a number of queries that does not grow with the page."""
    ex = "tag-pages"
    require_async_function(ex, view, "tag_page")
    shelf = Shelf()
    authors = shelf.author_names(3)
    asked, other, bare = shelf.tag_names(3)
    near = f"{asked}-club"  # a tag whose name holds the asked one: a `contains` lookup would match it
    shelf.tags.append(near)
    n = random.choice((7, 8, 10, 11))  # never a multiple of 3: the last page is a short one
    titles = shelf.titles(n + 1)
    shelf.books[titles[0]] = (authors[0], [near, other], date(2001, 1, 1))  # not tagged `asked`; first by title
    for k, title in enumerate(titles[1:]):
        shelf.books[title] = (authors[k % 3], [asked, *random.sample([other, near], random.randint(0, 2))],
                              date(2001, 1, 1) + timedelta(days=k))
    pages = -(-n // PER_PAGE)
    asks = {"first": {"page": "1"}, "last": {"page": str(pages)}, "second": {"page": "2"}, "none": {},
            "word": {"page": "first"}, "past": {"page": str(pages + 5)}}
    await _db(shelf.create, random.sample(titles, len(titles)))
    try:
        async with serving(ex, view, DEBUG=True) as served:
            answers, counted = {}, {}
            for name, params in asks.items():
                with count_queries() as sql:
                    answers[name] = await served.client.get("/exercise/", params={"tag": asked, **params})
                counted[name] = len(sql)
            empty = await served.client.get("/exercise/", params={"tag": bare})
            unknown = await served.client.get("/exercise/", params={"tag": f"no-such-tag-{shelf.token}"})
    finally:
        await _db(shelf.remove)
    _view_failures(ex, served, lambda exc: (
        f"the view raised {type(exc).__name__} ({exc}), which Django answers with HTTP 500: a page that is not a "
        "number gives page 1 and a page past the end gives the last page, as Django's get_page does"
        if type(exc).__name__ in ("PageNotAnInteger", "EmptyPage", "InvalidPage") else None),
        "an async ORM or paginator method called without `await` only creates a coroutine")
    expected = _books_of(shelf, asked)
    for name, number in (("first", 1), ("second", 2), ("last", pages), ("none", 1), ("word", 1), ("past", pages)):
        label = f"?tag=...&page={asks[name].get('page', '')}" if asks[name] else "?tag=... with no page"
        body = _page_answer(ex, answers[name], label)
        if name in ("word", "past") and body["page"] != number:
            raise ExerciseFailed(ex, f"{label} answered page {body['page']!r}: a page that is not a number gives "
                                     "page 1 and a page past the end gives the last page, as Django's get_page does")
        want = expected[(number - 1) * PER_PAGE:number * PER_PAGE]
        if name == "first" and isinstance(body["books"], list) and len(body["books"]) != PER_PAGE:
            raise ExerciseFailed(ex, f"{label} answered {len(body['books'])} books: {PER_PAGE} books a page")
        _expect_books(ex, label, asked, body["books"], want, shelf)  # first: a stray book also shifts the pages
        if (body["tag"], body["page"], body["pages"]) != (asked, number, pages):
            raise ExerciseFailed(ex, f"{label} answered tag={body['tag']!r}, page={body['page']!r}, "
                                     f"pages={body['pages']!r}; expected {asked!r}, {number}, {pages} ({n} books, "
                                     f"{PER_PAGE} a page)")
    for response, what in ((empty, "a tag that no book carries"), (unknown, "a tag that does not exist")):
        if response.status_code != 404:
            raise ExerciseFailed(ex, f"{what} answered HTTP {response.status_code}: it must answer 404")
    worst = max(counted.values())
    if worst > QUERY_BUDGET:
        raise ExerciseFailed(ex, f"one request ran {worst} queries; the budget is {QUERY_BUDGET} whatever the page: "
                                 "load the authors with the books and all their tags at once, not book by book")
    passed(ex, f"{n} books of one tag in {pages} pages of {PER_PAGE}, at most {worst} queries a request; page 1 for a "
               "word, the last page past the end, 404 for a tag with no books")
