"""Planted wrong answers for chapter 04, the async ORM."""

from tests.planted.common import Planted

CHAPTER = "04-async-orm"

_ANSWER = ('return JsonResponse({"tag": tag.name, "books": [\n'
           '    {"title": b.title, "author": b.author.name, "tags": [t.name for t in b.tags.all()]}'
           ' async for b in books]})')

PLANTED: dict[str, list[Planted]] = {
    "books-by-tag": [
        Planted("reads the author lazily, without select_related",
                'tag = await aget_object_or_404(Tag, name=request.GET.get("tag", ""))\n'
                'books = tag.books.prefetch_related("tags").order_by("title")\n' + _ANSWER,
                "lazy foreign key"),
        Planted("calls the sync ORM inside the async view",
                'tag = Tag.objects.get(name=request.GET.get("tag", ""))\n'
                'books = tag.books.select_related("author").prefetch_related("tags").order_by("title")\n' + _ANSWER,
                "is the sync ORM"),
        Planted("uses aall(), which the source document names but Django does not have",
                'tag = await aget_object_or_404(Tag, name=request.GET.get("tag", ""))\n'
                'books = await tag.books.select_related("author").prefetch_related("tags").order_by("title").aall()\n'
                'return JsonResponse({"tag": tag.name, "books": [{"title": b.title, "author": b.author.name,\n'
                '                     "tags": [t.name for t in b.tags.all()]} for b in books]})',
                "no aall()"),
        Planted("evaluates the QuerySet with list() in the async view",
                'tag = await aget_object_or_404(Tag, name=request.GET.get("tag", ""))\n'
                'books = list(tag.books.select_related("author").prefetch_related("tags").order_by("title"))\n'
                'return JsonResponse({"tag": tag.name, "books": [{"title": b.title, "author": b.author.name,\n'
                '                     "tags": [t.name for t in b.tags.all()]} for b in books]})',
                "evaluated synchronously"),
        Planted("awaits one query per book for its tags (N+1)",
                'tag = await aget_object_or_404(Tag, name=request.GET.get("tag", ""))\n'
                'books = tag.books.select_related("author").order_by("title")\n'
                'return JsonResponse({"tag": tag.name, "books": [\n'
                '    {"title": b.title, "author": b.author.name, "tags": [t.name async for t in b.tags.all()]}\n'
                '    async for b in books]})',
                "N+1"),
    ],
    "move-books": [
        Planted("with transaction.atomic() inside async def",
                "with transaction.atomic():\n"
                "    author = await Author.objects.aget(name=author_name)\n"
                "    for title in titles:\n"
                "        book = await Book.objects.aget(title=title)\n"
                "        book.author = author\n"
                "        await book.asave()",
                "transaction.atomic does not work in async code"),
        Planted("async with transaction.atomic()",
                "async with transaction.atomic():\n"
                "    author = await Author.objects.aget(name=author_name)\n"
                "    for title in titles:\n"
                "        book = await Book.objects.aget(title=title)\n"
                "        book.author = author\n"
                "        await book.asave()",
                "transaction.atomic does not work in async code"),
        Planted("one sync_to_async call (one transaction) per book",
                "def move_one(title):\n"
                "    with transaction.atomic():\n"
                "        book = Book.objects.get(title=title)\n"
                "        book.author = Author.objects.get(name=author_name)\n"
                "        book.save()\n"
                "for title in titles:\n"
                "    await sync_to_async(move_one)(title)",
                "its own transaction"),
        Planted("no transaction at all",
                "author = await Author.objects.aget(name=author_name)\n"
                "for title in titles:\n"
                "    book = await Book.objects.aget(title=title)\n"
                "    book.author = author\n"
                "    await book.asave()",
                "No transaction was open"),
    ],
    "publish": [
        Planted("forgets to await aadd",
                "author = await Author.objects.aget(name=author_name)\n"
                "tags = [tag async for tag in Tag.objects.filter(name__in=tag_names)]\n"
                "books = []\n"
                "for title in titles:\n"
                "    book = await author.books.acreate(title=title, published=PUBLISHED)\n"
                "    book.tags.aadd(*tags)\n"
                "    books.append(book)\n"
                "return books",
                "never awaited"),
        Planted("forgets to await acreate",
                "author = await Author.objects.aget(name=author_name)\n"
                "tags = [tag async for tag in Tag.objects.filter(name__in=tag_names)]\n"
                "books = []\n"
                "for title in titles:\n"
                "    book = author.books.acreate(title=title, published=PUBLISHED)\n"
                "    await book.tags.aadd(*tags)\n"
                "    books.append(book)\n"
                "return books",
                "missing `await`"),
        Planted("calls the related manager's sync add()",
                "author = await Author.objects.aget(name=author_name)\n"
                "tags = [tag async for tag in Tag.objects.filter(name__in=tag_names)]\n"
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
    ],
}
