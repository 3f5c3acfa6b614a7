"""Planted wrong answers for chapter 02, Django's async support."""

from tests.planted.common import Planted

CHAPTER = "02-djangos-async-support"
PLANTED: dict[str, list[Planted]] = {
    "stock-report": [
        Planted("uses the sync ORM inside async code",
                "in_stock = Item.objects.filter(in_stock=True).order_by('name')\n"
                "return in_stock.count(), [item.name for item in in_stock]",
                "the ORM was called from the event loop's thread"),
        Planted("calls aall(), which the source document lists but Django never had",
                "items = [item async for item in await Item.objects.aall()]\n"
                "names = sorted(item.name for item in items if item.in_stock)\n"
                "return len(names), names",
                "aall() does not exist"),
        Planted("returns the lazy QuerySet instead of evaluating it",
                "in_stock = Item.objects.filter(in_stock=True).order_by('name')\n"
                "return await in_stock.acount(), in_stock.values_list('name', flat=True)",
                "is a QuerySet, not a list"),
        Planted("forgets to await acount()",
                "in_stock = Item.objects.filter(in_stock=True).order_by('name')\n"
                "return in_stock.acount(), [item.name async for item in in_stock]",
                "never awaited"),
    ],
    "visit-counter": [
        Planted("uses the sync cache API in an async view",
                "cache.add('visits', 0)\nn = cache.incr('visits')",
                "ran on the event loop's thread"),
        Planted("forgets to await aget()",
                "n = cache.aget('visits', 0) + 1\nawait cache.aset('visits', n)",
                "missing `await`"),
        Planted("forgets to await aset(), so the count is never stored",
                "n = await cache.aget('visits', 0) + 1\ncache.aset('visits', n)",
                "never stored"),
    ],
    "email-notify": [
        Planted("calls the sync send_mail on the event loop's thread",
                "return send_mail(SUBJECT, BODY, SENDER, [address])",
                "ran on the event loop's thread"),
        Planted("imports an async email function Django does not have",
                "from django.core.mail import asend_mail\n"
                "return await asend_mail(SUBJECT, BODY, SENDER, [address])",
                "no async email API"),
        Planted("forgets to await sync_to_async",
                "return sync_to_async(send_mail)(SUBJECT, BODY, SENDER, [address])",
                "never awaited"),
        Planted("calls send_mail before handing it to sync_to_async",
                "return await sync_to_async(send_mail(SUBJECT, BODY, SENDER, [address]))()",
                "ran on the event loop's thread"),
    ],
}
