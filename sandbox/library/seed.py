"""Deterministic seed data for the async ORM lessons (chapter 04): 3 authors, 2 series, 4 tags, 8 books.

The whole seed is one sync function run through one `sync_to_async`, inside one transaction: the pattern the
chapter recommends for a loop of ORM work (one thread hop instead of one per row, and all-or-nothing).
"""

from __future__ import annotations

from datetime import date

from asgiref.sync import sync_to_async

AUTHORS = [
    # (name, born, active)
    ("Iris Vane", 1951, False),
    ("Mara Quill", 1978, True),
    ("Tomas Reed", 1985, True),
]
SERIES = ["Harbour Trilogy", "Orchard Cycle"]
TAGS = ["fiction", "mystery", "nonfiction", "science"]
BOOKS = [
    # (title, author, series, published, pages, tags)
    ("The Quiet Harbour", "Mara Quill", "Harbour Trilogy", date(2015, 3, 2), 312, ["fiction", "mystery"]),
    ("Harbour Lights", "Mara Quill", "Harbour Trilogy", date(2017, 6, 20), 288, ["fiction", "mystery"]),
    ("The Last Harbour", "Mara Quill", "Harbour Trilogy", date(2020, 10, 5), 401, ["fiction"]),
    ("Notes on Tides", "Mara Quill", None, date(2012, 1, 15), 164, ["nonfiction", "science"]),
    ("Copper and Salt", "Tomas Reed", None, date(2018, 9, 9), 256, ["fiction"]),
    ("A Field Guide to Clouds", "Tomas Reed", None, date(2019, 4, 1), 198, ["nonfiction", "science"]),
    ("The Glass Orchard", "Iris Vane", "Orchard Cycle", date(1998, 5, 23), 344, ["fiction", "mystery"]),
    ("Winter in the Orchard", "Iris Vane", "Orchard Cycle", date(2001, 11, 11), 376, ["fiction"]),
]


def blurb(title: str, author: str) -> str:
    """A long, deterministic description (about 3 KB): the column worth leaving out with only()/defer()."""
    sentence = f"{title} by {author} is a book in the course sandbox; this sentence pads its blurb. "
    return sentence * 32


def seed() -> int:
    """Create or restore every seed row, in one transaction. Runs in a worker thread (sync ORM)."""
    from django.db import transaction

    from sandbox.library.models import Author, Book, Series, Tag

    with transaction.atomic():
        authors = {name: Author.objects.update_or_create(name=name, defaults={"born": born, "active": active})[0]
                   for name, born, active in AUTHORS}
        series = {name: Series.objects.get_or_create(name=name)[0] for name in SERIES}
        tags = {name: Tag.objects.get_or_create(name=name)[0] for name in TAGS}
        for title, author, in_series, published, pages, tag_names in BOOKS:
            book, _ = Book.objects.update_or_create(title=title, defaults={
                "author": authors[author], "series": series.get(in_series), "published": published,
                "pages": pages, "blurb": blurb(title, author)})
            book.tags.set([tags[name] for name in tag_names])
        return Book.objects.count()


async def aseed() -> int:
    """Create the library's rows if they are missing; return how many books exist. Idempotent."""
    from sandbox.library.models import Book

    if await Book.objects.acount() == len(BOOKS):  # the usual case: a fresh database was seeded on first boot
        return len(BOOKS)
    return await sync_to_async(seed)()
