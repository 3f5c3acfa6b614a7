"""The library app of chapter 04: its seed, its views, its relations, and the check module's diagnosis of what
ran the sync ORM on the event loop's thread."""

from __future__ import annotations

import pytest


def _snapshot() -> dict:
    """Every seeded fact, read with the sync ORM (a test body has no running event loop)."""
    from sandbox.library.models import Author, Book, Series, Tag

    return {
        "authors": list(Author.objects.values_list("name", "born", "active")),
        "series": list(Series.objects.values_list("name", flat=True)),
        "tags": list(Tag.objects.values_list("name", flat=True)),
        "books": [(b.title, b.author.name, b.series.name if b.series else None, b.published, b.pages, len(b.blurb),
                   [t.name for t in b.tags.all()])
                  for b in Book.objects.select_related("author", "series").prefetch_related("tags")],
    }


def test_seed_is_deterministic_idempotent_and_repairs_changes(lab, run):
    from sandbox.library import seed
    from sandbox.library.models import Book, Tag

    first = _snapshot()
    assert [len(first[k]) for k in ("authors", "series", "tags", "books")] == [3, 2, 4, 8]
    assert run(seed.aseed()) == 8
    assert _snapshot() == first

    book = Book.objects.get(title="Copper and Salt")
    book.pages = 1
    book.save()
    book.tags.set(Tag.objects.all())
    Book.objects.create(title="Extra", author=book.author, published=book.published)
    try:
        assert seed.seed() == 9  # the extra book is not the seed's to delete; every seeded row is restored
        assert [row for row in _snapshot()["books"] if row[0] != "Extra"] == first["books"]
    finally:
        Book.objects.filter(title="Extra").delete()
    assert _snapshot() == first


async def test_views_answer_with_the_async_orm_and_fail_where_they_should(lab):
    from django.test import AsyncClient

    from sandbox.library.models import Book

    pk = (await Book.objects.aget(title="The Quiet Harbour")).pk

    client = AsyncClient(raise_request_exception=False)  # see the 500 a browser would get
    paths = ["/library/books/", "/library/books/lazy/", f"/library/books/{pk}/", "/library/books/999999/",
             "/library/page/", "/library/page/lazy/", "/library/page-counts/"]
    r = {p: await client.get(p) for p in paths}
    books = r["/library/books/"].json()["books"]
    assert [b["title"] for b in books] == sorted(b["title"] for b in books) and len(books) == 8
    assert books[0] == {"title": "A Field Guide to Clouds", "author": "Tomas Reed", "tags": ["nonfiction", "science"]}
    assert r["/library/books/lazy/"].status_code == 500  # a lazy foreign key in an async view
    assert r[f"/library/books/{pk}/"].json() == {"title": "The Quiet Harbour", "author": "Mara Quill",
                                                  "tags": ["fiction", "mystery"]}
    assert r["/library/books/999999/"].status_code == 404
    assert r["/library/page/"].status_code == 200 and r["/library/page/"].content.count(b"<li>") == 8
    assert r["/library/page/lazy/"].status_code == 500  # a template iterating a lazy QuerySet
    assert r["/library/page-counts/"].json() == {"shortest": 164, "longest": 401, "total": 2339}


async def test_book_list_view_runs_two_queries_off_the_event_loop(lab):
    from sandbox.checks.async_orm import count_queries

    async with lab.client() as c:
        with count_queries() as sql:
            response = await c.get("/library/books/")
    assert response.status_code == 200
    assert len(sql) == 2 and all(thread != "MainThread" for thread, _ in sql)


async def test_reverse_managers_have_aremove_and_aclear_only_for_the_nullable_foreign_key(lab):
    from datetime import date

    from sandbox.library.models import Author, Series

    author = await Author.objects.aget(name="Tomas Reed")
    series = await Series.objects.aget(name="Orchard Cycle")
    book = await author.books.acreate(title="Test draft", published=date(2026, 1, 1))
    try:
        await series.books.aadd(book)
        added = await series.books.acount()
        await series.books.aremove(book)
        removed = await series.books.acount()
    finally:
        await book.adelete()

    assert (hasattr(author.books, "aremove"), hasattr(author.books, "aclear"), hasattr(series.books, "aremove"),
            hasattr(series.books, "aclear"), added, removed) == (False, False, True, True, 3, 2)


@pytest.mark.parametrize(("mistake", "named"), [
    ("book.author", "`.author` is a lazy foreign key"),
    ("[t.name for t in book.tags.all()]", "related rows"),
    ("deferred.blurb", "`.blurb` was deferred"),
    ("list(Book.objects.all())", "evaluated synchronously"),
    ("Book.objects.count()", "`Book.objects.count(...)` is the sync ORM"),
    ("book.save()", "`obj.save()` is the sync ORM"),
    ("book.tags.add(*[])", "`book.tags.add(...)` is a related manager's sync method"),
    ("transaction.atomic().__enter__()", "transaction.atomic does not work in async code"),
    ("connection.cursor()", "connection.cursor() is sync-only"),
    ("Template('{% for b in books %}{{ b }}{% endfor %}').render(Context({'books': Book.objects.all()}))",
     "a template iterated a lazy QuerySet"),
])
async def test_the_check_names_what_ran_the_sync_orm_on_the_event_loop(lab, mistake, named):
    from django.core.exceptions import SynchronousOnlyOperation
    from django.db import connection, transaction
    from django.template import Context, Template

    from sandbox.checks.harness import explain_sync_only
    from sandbox.library.models import Book

    book = await Book.objects.afirst()
    deferred = await Book.objects.only("title").afirst()
    scope = {"book": book, "deferred": deferred, "Book": Book, "transaction": transaction,
             "connection": connection, "Template": Template, "Context": Context}
    try:
        eval(mistake, scope)  # on the event loop's thread, as in an async view
    except SynchronousOnlyOperation as exc:
        said = explain_sync_only(exc)
    else:
        said = "nothing was raised"

    assert named in said
