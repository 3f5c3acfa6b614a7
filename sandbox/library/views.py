"""Library views: the async ORM used right in async views, and twice wrong on purpose."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import aget_object_or_404, render

from sandbox.library.models import Book


def _book_json(book: Book) -> dict:
    """Needs `author` loaded (select_related) and `tags` prefetched: it must not start a query."""
    return {"title": book.title, "author": book.author.name, "tags": [tag.name for tag in book.tags.all()]}


async def book_list(request):
    """Every book with its author and tags: two queries in all, evaluated with `async for`."""
    books = Book.objects.select_related("author").prefetch_related("tags")
    return JsonResponse({"books": [_book_json(book) async for book in books]})


async def book_list_lazy(request):
    """A mistake on purpose: `book.author` is a lazy foreign key, loaded on the event loop's thread (HTTP 500)."""
    return JsonResponse({"books": [{"title": book.title, "author": book.author.name}
                                   async for book in Book.objects.all()]})


async def book_detail(request, pk: int):
    """One book, or a 404 page: `aget_object_or_404` takes a model, a manager or a QuerySet."""
    book = await aget_object_or_404(Book.objects.select_related("author").prefetch_related("tags"), pk=pk)
    return JsonResponse(_book_json(book))


async def book_page(request):
    """A template gets an evaluated list: rendering it runs no query."""
    books = [book async for book in Book.objects.select_related("author")]
    return render(request, "library/book_list.html", {"books": books})


async def book_page_lazy(request):
    """A mistake on purpose: the template iterates a lazy QuerySet on the event loop's thread (HTTP 500)."""
    return render(request, "library/book_list.html", {"books": Book.objects.select_related("author")})


def _page_counts() -> dict:
    """Raw SQL through a cursor: sync-only, so it lives in a sync function."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT MIN(pages), MAX(pages), SUM(pages) FROM library_book")
        shortest, longest, total = cursor.fetchone()
    return {"shortest": shortest, "longest": longest, "total": total}


async def page_counts(request):
    """Cursor code in one `sync_to_async` hop."""
    return JsonResponse(await sync_to_async(_page_counts)())
