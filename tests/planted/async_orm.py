"""Planted answers for chapter 04, the async ORM."""

from tests.planted.common import Acceptable, Planted

CHAPTER = "04-async-orm"

_TAG = 'tag = await aget_object_or_404(Tag, name=request.GET.get("tag", ""))\n'
_ANSWER = ('return JsonResponse({"tag": tag.name, "books": [\n'
           '    {"title": b.title, "author": b.author.name, "tags": [t.name for t in b.tags.all()]}'
           ' async for b in books]})')
_LOADED = 'books = tag.books.select_related("author").prefetch_related("tags").order_by("title")\n'

_ATOMIC_LOOP = ("    author = await Author.objects.aget(name=author_name)\n"
                "    for title in titles:\n"
                "        book = await Book.objects.aget(title=title)\n"
                "        book.author = author\n"
                "        await book.asave()")

_AUTHOR_AND_TAGS = ("author = await Author.objects.aget(name=author_name)\n"
                    "tags = [tag async for tag in Tag.objects.filter(name__in=tag_names)]\n")

# exercise 'tag-pages': the solution, and each planted answer as one change to it
_PAGES = """\
name = request.GET.get("tag")
books = Book.objects.filter(tags__name=name).select_related("author").prefetch_related("tags")
paginator = AsyncPaginator(await aget_list_or_404(books.order_by("title")), 3)
page = await paginator.aget_page(request.GET.get("page"))
return JsonResponse({
    "tag": name,
    "page": page.number,
    "pages": await paginator.anum_pages(),
    "books": [{"title": book.title, "author": book.author.name, "tags": [t.name for t in book.tags.all()]}
              async for book in page],
})"""


def _pages(old: str, new: str) -> str:
    assert old in _PAGES, old
    return _PAGES.replace(old, new)


PLANTED: dict[str, list[Planted]] = {
    "books-by-tag": [
        Planted("reads the author lazily, without select_related",
                _TAG + 'books = tag.books.prefetch_related("tags").order_by("title")\n' + _ANSWER,
                "lazy foreign key"),
        Planted("calls the sync ORM inside the async view",
                'tag = Tag.objects.get(name=request.GET.get("tag", ""))\n' + _LOADED + _ANSWER,
                "is the sync ORM"),
        Planted("uses aall(), which the source document names but Django does not have",
                _TAG +
                'books = await tag.books.select_related("author").prefetch_related("tags").order_by("title").aall()\n'
                'return JsonResponse({"tag": tag.name, "books": [{"title": b.title, "author": b.author.name,\n'
                '                     "tags": [t.name for t in b.tags.all()]} for b in books]})',
                "no aall()"),
        Planted("evaluates the QuerySet with list() in the async view",
                _TAG +
                'books = list(tag.books.select_related("author").prefetch_related("tags").order_by("title"))\n'
                'return JsonResponse({"tag": tag.name, "books": [{"title": b.title, "author": b.author.name,\n'
                '                     "tags": [t.name for t in b.tags.all()]} for b in books]})',
                "evaluated synchronously"),
        Planted("awaits one query per book for its tags (N+1)",
                _TAG + 'books = tag.books.select_related("author").order_by("title")\n'
                'return JsonResponse({"tag": tag.name, "books": [\n'
                '    {"title": b.title, "author": b.author.name, "tags": [t.name async for t in b.tags.all()]}\n'
                '    async for b in books]})',
                "N+1"),
        Planted("orders the books by publication date, not by title",
                _TAG + 'books = tag.books.select_related("author").prefetch_related("tags").order_by("published")\n'
                + _ANSWER,
                "not in the order of their titles", "result"),
        Planted("lists only the asked tag in each book's tags",
                _TAG + _LOADED +
                'return JsonResponse({"tag": tag.name, "books": [\n'
                '    {"title": b.title, "author": b.author.name, "tags": [tag.name]} async for b in books]})',
                "expected all its tags", "result"),
        Planted("matches every tag whose name contains the one asked for",
                'name = request.GET.get("tag", "")\n'
                "tag = await aget_object_or_404(Tag, name=name)\n"
                "books = (Book.objects.filter(tags__name__contains=name).distinct()\n"
                '         .select_related("author").prefetch_related("tags").order_by("title"))\n' + _ANSWER,
                "not tagged", "condition"),
        Planted("forgets the tag filter and answers every book",
                _TAG + 'books = Book.objects.select_related("author").prefetch_related("tags").order_by("title")\n'
                + _ANSWER,
                "not tagged", "condition"),
        Planted("answers 404 for a tag that has no books",
                "from django.http import Http404\n" + _TAG +
                'books = [b async for b in tag.books.select_related("author").prefetch_related("tags")'
                '.order_by("title")]\n'
                "if not books:\n"
                '    raise Http404("no books with this tag")\n'
                'return JsonResponse({"tag": tag.name, "books": [{"title": b.title, "author": b.author.name,\n'
                '                     "tags": [t.name for t in b.tags.all()]} for b in books]})',
                "exists and has no books", "condition"),
        Planted("answers an empty list for an unknown tag instead of 404",
                'name = request.GET.get("tag", "")\n'
                "tag = await Tag.objects.filter(name=name).afirst()\n"
                "if tag is None:\n"
                '    return JsonResponse({"tag": name, "books": []})\n' + _LOADED + _ANSWER,
                "must answer 404", "condition"),
        Planted("answers JSON text with Django's default content type",
                "import json\nfrom django.http import HttpResponse\n" + _TAG + _LOADED +
                'return HttpResponse(json.dumps({"tag": tag.name, "books": [\n'
                '    {"title": b.title, "author": b.author.name, "tags": [t.name for t in b.tags.all()]}'
                " async for b in books]}))",
                "Content-Type 'text/html'", "protocol"),
    ],
    "move-books": [
        Planted("with transaction.atomic() inside async def",
                "with transaction.atomic():\n" + _ATOMIC_LOOP,
                "transaction.atomic does not work in async code"),
        Planted("async with transaction.atomic()",
                "async with transaction.atomic():\n" + _ATOMIC_LOOP,
                "transaction.atomic does not work in async code"),
        Planted("one sync_to_async call (one transaction) per book",
                "def move_one(title):\n"
                "    with transaction.atomic():\n"
                "        book = Book.objects.get(title=title)\n"
                "        book.author = Author.objects.get(name=author_name)\n"
                "        book.save()\n"
                "for title in titles:\n"
                "    await sync_to_async(move_one)(title)",
                "separate transactions"),
        Planted("no transaction at all",
                "author = await Author.objects.aget(name=author_name)\n"
                "for title in titles:\n"
                "    book = await Book.objects.aget(title=title)\n"
                "    book.author = author\n"
                "    await book.asave()",
                "No transaction was open"),
        Planted("catches the missing title and carries on, in one transaction",
                "def move():\n"
                "    with transaction.atomic():\n"
                "        author = Author.objects.get(name=author_name)\n"
                "        for title in titles:\n"
                "            try:\n"
                "                book = Book.objects.get(title=title)\n"
                "            except Book.DoesNotExist:\n"
                "                continue\n"
                "            book.author = author\n"
                "            book.save()\n"
                "await sync_to_async(move)()",
                "returned normally", "condition"),
        Planted("moves the books with one filtered update, which ignores a missing title",
                "def move():\n"
                "    with transaction.atomic():\n"
                "        author = Author.objects.get(name=author_name)\n"
                "        Book.objects.filter(title__in=titles).update(author=author)\n"
                "await sync_to_async(move)()",
                "returned normally", "condition"),
        Planted("forgets the title filter and moves every book",
                "def move():\n"
                "    with transaction.atomic():\n"
                "        author = Author.objects.get(name=author_name)\n"
                "        for title in titles:\n"
                "            Book.objects.get(title=title)  # every title must exist\n"
                "        Book.objects.update(author=author)\n"
                "await sync_to_async(move)()",
                "not in `titles`", "condition"),
        Planted("gives the books to the lesson's author instead of `author_name`",
                "def move():\n"
                "    with transaction.atomic():\n"
                '        author = Author.objects.get(name="Iris Vane")\n'
                "        for title in titles:\n"
                "            book = Book.objects.get(title=title)\n"
                "            book.author = author\n"
                "            book.save()\n"
                "await sync_to_async(move)()",
                "should go to the author called", "result"),
        Planted("checks for the missing title after the transaction committed",
                "def move():\n"
                "    with transaction.atomic():\n"
                "        author = Author.objects.get(name=author_name)\n"
                "        moved = Book.objects.filter(title__in=titles).update(author=author)\n"
                "    if moved != len(titles):\n"
                '        raise Book.DoesNotExist("a title does not exist")\n'
                "await sync_to_async(move)()",
                "committed before the error", "condition"),
    ],
    "publish": [
        Planted("forgets to await aadd",
                _AUTHOR_AND_TAGS +
                "books = []\n"
                "for title in titles:\n"
                "    book = await author.books.acreate(title=title, published=PUBLISHED)\n"
                "    book.tags.aadd(*tags)\n"
                "    books.append(book)\n"
                "return books",
                "never awaited"),
        Planted("forgets to await acreate",
                _AUTHOR_AND_TAGS +
                "books = []\n"
                "for title in titles:\n"
                "    book = author.books.acreate(title=title, published=PUBLISHED)\n"
                "    await book.tags.aadd(*tags)\n"
                "    books.append(book)\n"
                "return books",
                "an `await` is missing"),
        Planted("calls the related manager's sync add()",
                _AUTHOR_AND_TAGS +
                "books = []\n"
                "for title in titles:\n"
                "    book = await author.books.acreate(title=title, published=PUBLISHED)\n"
                "    book.tags.add(*tags)\n"
                "    books.append(book)\n"
                "return books",
                "related manager's sync method"),
        Planted("unpacks a lazy QuerySet into aadd()",
                "author = await Author.objects.aget(name=author_name)\n"
                "books = []\n"
                "for title in titles:\n"
                "    book = await author.books.acreate(title=title, published=PUBLISHED)\n"
                "    await book.tags.aadd(*Tag.objects.filter(name__in=tag_names))\n"
                "    books.append(book)\n"
                "return books",
                "evaluated synchronously"),
        Planted("tags only the last book (the tagging is outside the loop)",
                _AUTHOR_AND_TAGS +
                "books = []\n"
                "for title in titles:\n"
                "    book = await author.books.acreate(title=title, published=PUBLISHED)\n"
                "    books.append(book)\n"
                "await book.tags.aadd(*tags)\n"
                "return books",
                "expected exactly the tags in tag_names", "result"),
        Planted("tags the books with every tag in the library",
                "author = await Author.objects.aget(name=author_name)\n"
                "tags = [tag async for tag in Tag.objects.all()]\n"
                "books = []\n"
                "for title in titles:\n"
                "    book = await author.books.acreate(title=title, published=PUBLISHED)\n"
                "    await book.tags.aadd(*tags)\n"
                "    books.append(book)\n"
                "return books",
                "expected exactly the tags in tag_names", "condition"),
        Planted("returns the books read back from the database, in title order",
                _AUTHOR_AND_TAGS +
                "for title in titles:\n"
                "    book = await author.books.acreate(title=title, published=PUBLISHED)\n"
                "    await book.tags.aadd(*tags)\n"
                "return [book async for book in author.books.filter(title__in=titles)]",
                "in the order of `titles`", "result"),
        Planted("publishes the books today instead of on PUBLISHED",
                "from datetime import date\n" + _AUTHOR_AND_TAGS +
                "books = []\n"
                "for title in titles:\n"
                "    book = await author.books.acreate(title=title, published=date.today())\n"
                "    await book.tags.aadd(*tags)\n"
                "    books.append(book)\n"
                "return books",
                "the date in `PUBLISHED`", "result"),
        Planted("creates the books with Book.objects.acreate(author=...), not through author.books",
                _AUTHOR_AND_TAGS +
                "books = []\n"
                "for title in titles:\n"
                "    book = await Book.objects.acreate(author=author, title=title, published=PUBLISHED)\n"
                "    await book.tags.aadd(*tags)\n"
                "    books.append(book)\n"
                "return books",
                "not created through the author's related manager", "condition"),
        Planted("tags every book of the author, the old ones too",
                _AUTHOR_AND_TAGS +
                "books = []\n"
                "for title in titles:\n"
                "    books.append(await author.books.acreate(title=title, published=PUBLISHED))\n"
                "async for book in author.books.all():\n"
                "    await book.tags.aadd(*tags)\n"
                "return books",
                "not one of the new ones", "condition"),
    ],
    "tag-pages": [
        Planted("queries each book's tags one by one",
                _pages('"tags": [t.name for t in book.tags.all()]}\n              async for book in page]',
                       '"tags": [t.name async for t in book.tags.all()]}\n              async for book in page]')
                .replace('.prefetch_related("tags")', ""), "the budget is 3", "condition"),
        Planted("uses the sync Paginator on a QuerySet",
                "from django.core.paginator import Paginator\n"
                + _pages("AsyncPaginator(await aget_list_or_404(books.order_by(\"title\")), 3)",
                         "Paginator(books.order_by(\"title\"), 3)")
                .replace("await paginator.aget_page(", "paginator.get_page(")
                .replace("await paginator.anum_pages()", "paginator.num_pages"), "sync ORM"),
        Planted("shows ten books a page", _pages(")), 3)", ")), 10)"), "3 books a page", "result"),
        Planted("asks for the page with apage(), which refuses a word",
                _pages("paginator.aget_page(", "paginator.apage("), "as Django's get_page does", "condition"),
        Planted("answers an empty page for a tag with no books",
                _pages("await aget_list_or_404(books.order_by(\"title\"))", "books.order_by(\"title\")"),
                "must answer 404", "protocol"),
        Planted("matches tags whose name contains the one asked for",
                _pages("tags__name=name", "tags__name__contains=name").replace(
                    'books.order_by("title")', 'books.order_by("title").distinct()'), "not tagged", "result"),
        Planted("forgets to await the page", _pages("page = await paginator", "page = paginator"), "coroutine"),
        Planted("counts the pages by dividing, rounded down",
                _pages('"pages": await paginator.anum_pages(),', '"pages": await paginator.acount() // 3,'),
                "expected", "result"),
    ],
}

ACCEPTABLE: dict[str, list[Acceptable]] = {
    "books-by-tag": [
        Acceptable("Http404 by hand, a filter on Book.objects, aprefetch_related_objects after the query",
                   "from django.db.models import aprefetch_related_objects\n"
                   "from django.http import Http404\n"
                   "try:\n"
                   '    tag = await Tag.objects.aget(name=request.GET["tag"])\n'
                   "except (KeyError, Tag.DoesNotExist):\n"
                   '    raise Http404("no such tag") from None\n'
                   'books = [b async for b in Book.objects.filter(tags=tag).select_related("author")'
                   '.order_by("title")]\n'
                   'await aprefetch_related_objects(books, "tags")\n'
                   'return JsonResponse({"tag": tag.name, "books": [\n'
                   '    {"title": b.title, "author": b.author.name, "tags": sorted(t.name for t in b.tags.all())}\n'
                   "    for b in books]})"),
        Acceptable("a JSON 404, and aiterator() over the prefetched books",
                   'tag = await Tag.objects.filter(name=request.GET.get("tag", "")).afirst()\n'
                   "if tag is None:\n"
                   '    return JsonResponse({"error": "no such tag"}, status=404)\n'
                   'books = Book.objects.filter(tags__name=tag.name).select_related("author")\n'
                   'books = books.prefetch_related("tags")\n'
                   "rows = []\n"
                   'async for b in books.order_by("title").aiterator(chunk_size=100):\n'
                   '    rows.append({"author": b.author.name, "title": b.title,\n'
                   '                 "tags": [t.name for t in b.tags.all()]})\n'
                   'return JsonResponse({"books": rows, "tag": tag.name})'),
    ],
    "move-books": [
        Acceptable("@transaction.atomic as a decorator, the books looked up first, arguments by keyword",
                   "@transaction.atomic\n"
                   "def move(titles, author_name):\n"
                   "    books = [Book.objects.get(title=title) for title in titles]\n"
                   "    author = Author.objects.get(name=author_name)\n"
                   "    for book in books:\n"
                   "        book.author = author\n"
                   "        book.save()\n"
                   "await sync_to_async(move)(titles=titles, author_name=author_name)"),
        Acceptable("one set-based update, Book.DoesNotExist raised inside the transaction",
                   "def move(names, name):\n"
                   "    with transaction.atomic():\n"
                   "        author = Author.objects.get(name=name)\n"
                   "        if Book.objects.filter(title__in=names).update(author=author) != len(set(names)):\n"
                   '            raise Book.DoesNotExist("one of the titles does not exist")\n'
                   "await sync_to_async(move, thread_sensitive=True)(titles, author_name)"),
    ],
    "publish": [
        Acceptable("aset() with the tags' primary keys, the fields passed as a dict",
                   "author = await Author.objects.aget(name=author_name)\n"
                   'asked = Tag.objects.filter(name__in=tag_names)\n'
                   'tag_ids = [pk async for pk in asked.values_list("pk", flat=True)]\n'
                   "books = []\n"
                   "for title in titles:\n"
                   '    book = await author.books.acreate(**{"title": title, "published": PUBLISHED})\n'
                   "    await book.tags.aset(tag_ids)\n"
                   "    books.append(book)\n"
                   "return books"),
        Acceptable("ain_bulk for the tags, every book created before any is tagged, check.PUBLISHED",
                   "author = await aget_object_or_404(Author, name=author_name)\n"
                   'tags = await Tag.objects.ain_bulk(tag_names, field_name="name")\n'
                   "books = [await author.books.acreate(title=title, published=check.PUBLISHED) for title in titles]\n"
                   "for book in books:\n"
                   "    await book.tags.aadd(*tags.values())\n"
                   "return books"),
    ],
    "tag-pages": [
        Acceptable("the QuerySet paginated itself (a count and one page), a tag with no books found by the count",
                   "from django.http import Http404\n"
                   + _pages("AsyncPaginator(await aget_list_or_404(books.order_by(\"title\")), 3)",
                            "AsyncPaginator(books.order_by(\"title\"), 3)")
                   .replace("page = await", "if not await paginator.acount():\n    raise Http404(name)\npage = await")),
    ],
}
