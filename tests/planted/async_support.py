"""Planted answers for chapter 02, Django's async support."""

from tests.planted.common import Acceptable, Planted

CHAPTER = "02-djangos-async-support"

# exercise 'async-login': the solution, and each planted answer as one change to it
_LOGIN = """\
if request.method == "POST":
    user = await aauthenticate(request, username=request.POST.get("username"),
                               password=request.POST.get("password"))
    if user is None:
        return JsonResponse({"ok": False}, status=401)
    await alogin(request, user)
    logins = await request.session.aget("logins", 0) + 1
    await request.session.aset("logins", logins)
    return JsonResponse({"ok": True, "user": user.username, "logins": logins})
if request.method == "DELETE":
    await alogout(request)
    return JsonResponse({"ok": True})
user = await request.auser()
if not user.is_authenticated:
    return JsonResponse({"user": None}, status=403)
return JsonResponse({"user": user.username, "can_view_users": await user.ahas_perm("auth.view_user")})"""


def _login(old: str, new: str) -> str:
    assert old in _LOGIN, old
    code = _LOGIN.replace(old, new)
    for name in ("authenticate", "logout"):  # a sync twin the notebook did not import
        if f"= {name}(" in code or f"    {name}(" in code:
            code = f"from django.contrib.auth import {name}\n" + code
    return code



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
        Planted("wraps the sync ORM in sync_to_async instead of using the async ORM",
                "in_stock = Item.objects.filter(in_stock=True).order_by('name')\n"
                "count = await sync_to_async(in_stock.count)()\n"
                "names = await sync_to_async(list)(in_stock.values_list('name', flat=True))\n"
                "return count, names",
                "to a worker thread itself"),
        Planted("counts every item, not only those in stock",
                "names = [item.name async for item in Item.objects.filter(in_stock=True).order_by('name')]\n"
                "return await Item.objects.acount(), names",
                "count should be the number of in-stock items", "condition"),
        Planted("lists the items that are out of stock",
                "in_stock = Item.objects.filter(in_stock=False).order_by('name')\n"
                "return await in_stock.acount(), [item.name async for item in in_stock]",
                "not in stock", "condition"),
        Planted("orders by id (the order the rows were added) instead of by name",
                "in_stock = Item.objects.filter(in_stock=True).order_by('id')\n"
                "return await in_stock.acount(), [item.name async for item in in_stock]",
                "not in name order", "result"),
        Planted("returns the lesson's seeded output instead of querying",
                "return 4, ['Cinnamon bun', 'Croissant', 'Espresso', 'Flat white']",
                "the in-stock items the check added just now", "result"),
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
                "never awaited"),
        Planted("wraps the sync cache methods in sync_to_async instead of using the a-methods",
                "await sync_to_async(cache.add)('visits', 0)\nn = await sync_to_async(cache.incr)('visits')",
                "the exercise asks for the a-methods"),
        Planted("reads the count, then writes it back plus one (two overlapping requests get the same number)",
                "n = await cache.aget('visits', 0) + 1\nawait cache.aset('visits', n)",
                "two overlapping requests got the same number", "concurrency"),
        Planted("keeps the count in a variable of the notebook, not in the cache",
                "global visit_count\nvisit_count = globals().get('visit_count', 0) + 1\nn = visit_count",
                "keep the count in Django's cache", "result"),
        Planted("counts under another key",
                "await cache.aadd('visit_count', 0)\nn = await cache.aincr('visit_count')",
                "under the key 'visits'", "result"),
        Planted("answers the count read before adding one",
                "await cache.aadd('visits', 0)\nn = await cache.aget('visits')\nawait cache.aincr('visits')",
                "should answer 1, 2, 3", "result"),
        Planted("starts the count again on every request",
                "await cache.aset('visits', 0)\nn = await cache.aincr('visits')",
                "all answered 1", "condition"),
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
        Planted("sends in the background and returns before the email is sent",
                "import asyncio\n"
                "asyncio.create_task(sync_to_async(send_mail)(SUBJECT, BODY, SENDER, [address]))\n"
                "return 1",
                "only after notify had returned"),
        Planted("swaps the sender and the recipient",
                "return await sync_to_async(send_mail)(SUBJECT, BODY, address, [SENDER])",
                "the sender and the recipient are swapped", "result"),
        Planted("swaps the subject and the body",
                "return await sync_to_async(send_mail)(BODY, SUBJECT, SENDER, [address])",
                "subject and body are swapped", "result"),
        Planted("passes the address as a string, not a list",
                "return await sync_to_async(send_mail)(SUBJECT, BODY, SENDER, address)",
                "put the address in a list", "result"),
        Planted("sends the email but does not return send_mail's result",
                "await sync_to_async(send_mail)(SUBJECT, BODY, SENDER, [address])",
                "return what send_mail returned", "result"),
    ],
    "async-login": [
        Planted("uses the sync authenticate()", _login("await aauthenticate(", "authenticate("), "aauthenticate"),
        Planted("forgets to await alogin", _login("await alogin(", "alogin("), "never awaited"),
        Planted("reads request.user in async code", _login("await request.auser()", "request.user"),
                "auser()"),
        Planted("logs out with the sync logout()", _login("await alogout(", "logout("), "alogout"),
        Planted("checks the permission with the sync has_perm()", _login("await user.ahas_perm(", "user.has_perm("),
                "ahas_perm"),
        Planted("logs in whatever authenticate returned",
                _login('if user is None:\n        return JsonResponse({"ok": False}, status=401)\n    ', ""),
                "AttributeError", "result"),
        Planted("counts the logins in the process, not in the session",
                _login('await request.session.aget("logins", 0)', 'getattr(account_view, "logins", 0)')
                .replace('await request.session.aset("logins", logins)', "account_view.logins = logins"),
                "each session counts its own", "result"),
        Planted("answers 200 to a visitor who is not logged in", _login("None}, status=403)", "None})"),
                "expected 403", "protocol"),
        Planted("says every user may view users", _login('await user.ahas_perm("auth.view_user")', "True"),
                "can_view_users", "result"),
    ],
}
ACCEPTABLE: dict[str, list[Acceptable]] = {
    "stock-report": [
        Acceptable("the names sorted in Python, the count as their length",
                   "names = sorted([item.name async for item in Item.objects.filter(in_stock=True)])\n"
                   "return len(names), names"),
        Acceptable("values_list with aiterator(), the count with acount()",
                   "qs = Item.objects.filter(in_stock=True).order_by('name').values_list('name', flat=True)\n"
                   "names = [name async for name in qs.aiterator()]\n"
                   "return await qs.acount(), names"),
    ],
    "visit-counter": [
        Acceptable("aincr first, aadd only when the key is missing",
                   "try:\n    n = await cache.aincr('visits')\nexcept ValueError:\n"
                   "    await cache.aadd('visits', 0)\n    n = await cache.aincr('visits')"),
        Acceptable("caches['default'] and keyword arguments",
                   "from django.core.cache import caches\n"
                   "await caches['default'].aadd(key='visits', value=0, timeout=None)\n"
                   "n = await caches['default'].aincr('visits', delta=1)"),
    ],
    "email-notify": [
        Acceptable("asyncio.to_thread instead of sync_to_async",
                   "import asyncio\nreturn await asyncio.to_thread(send_mail, SUBJECT, BODY, SENDER, [address])"),
        Acceptable("keyword arguments, and a pool thread",
                   "return await sync_to_async(send_mail, thread_sensitive=False)(\n"
                   "    subject=SUBJECT, message=BODY, from_email=SENDER, recipient_list=[address])"),
    ],
    "async-login": [
        Acceptable("is_anonymous, and the session saved by the view itself",
                   _login("if not user.is_authenticated:", "if user.is_anonymous:")
                   .replace('aset("logins", logins)', 'aset("logins", logins)\n    await request.session.asave()')),
    ],
}
