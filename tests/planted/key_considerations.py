"""Planted answers for chapter 08, key considerations."""

from tests.planted.common import Acceptable, Planted

CHAPTER = "08-key-considerations"

_SELL = """\
left = inventory["left"]
if left == 0:
    return JsonResponse({"seat": None}, status=409)
await check.charge_card()
inventory["left"] = left - 1
return JsonResponse({"seat": left})"""


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line if line else line for line in text.splitlines())


def _locked(body: str, after: str = 'return JsonResponse({"seat": left})') -> str:
    """A view made by make_reserve with one shared asyncio.Lock around `body`, then `after`."""
    return ("lock = asyncio.Lock()\n\n\nasync def reserve(request):\n    async with lock:\n"
            f"{_indent(body, '        ')}\n{_indent(after)}\n\nreturn reserve")


_CHARGE, _CHARGED = "await check.charge_card()", "check.charge_card()"
_READ = 'left = inventory["left"]\nif left == 0:\n    return JsonResponse({"seat": None}, status=409)\n'


def _store(remember: str, recall: str, before: str = "") -> str:
    return (f"{before}def remember(request_id):\n    {remember}\n\n\ndef recall():\n    {recall}\n\n\n"
            "return remember, recall")


_VAR = 'current = contextvars.ContextVar("request_id"{default})\n\n\n'

PLANTED: dict[str, list[Planted]] = {
    "seat-lock": [
        Planted("forgets to await the charge",
                _locked(_READ + f'{_CHARGED}\ninventory["left"] = left - 1'), "never awaited"),
        Planted("no lock around the read, the await and the write",
                f"async def reserve(request):\n{_indent(_SELL)}\n\nreturn reserve", "lost updates"),
        Planted("creates the lock inside the view, a new one for every request",
                "async def reserve(request):\n    lock = asyncio.Lock()\n    async with lock:\n"
                + _indent(_SELL.replace('return JsonResponse({"seat": left})', "sold = left"), "        ")
                + '\n    return JsonResponse({"seat": sold})\n\nreturn reserve', "lost updates"),
        Planted("locks only the write, after the await",
                'lock = asyncio.Lock()\n\n\nasync def reserve(request):\n    left = inventory["left"]\n'
                '    if left == 0:\n        return JsonResponse({"seat": None}, status=409)\n'
                '    await check.charge_card()\n    async with lock:\n        inventory["left"] = left - 1\n'
                '    return JsonResponse({"seat": left})\n\nreturn reserve', "lost updates"),
        Planted("holds a threading.Lock across an await",
                "import threading\n\nlock = threading.Lock()\n\n\nasync def reserve(request):\n    with lock:\n"
                + _indent(_SELL.replace('return JsonResponse({"seat": left})', "sold = left"), "        ")
                + '\n    return JsonResponse({"seat": sold})\n\nreturn reserve', "threading.Lock held across an await"),
        Planted("numbers the seat after the sale (what is left after it)",
                _locked(_READ + f'{_CHARGE}\ninventory["left"] = left - 1', 'return JsonResponse({"seat": left - 1})'),
                "numbered by how many were left before each sale", "result"),
        Planted("answers 200 with no seat when the concert is sold out",
                _locked('left = inventory["left"]\nif left == 0:\n    return JsonResponse({"seat": None})\n'
                        f'{_CHARGE}\ninventory["left"] = left - 1'), "refuse with 409", "protocol"),
        Planted("charges the card before checking that a seat is left",
                _locked(f'{_CHARGE}\n' + _READ + 'inventory["left"] = left - 1'), "who got no seat were charged",
                "condition"),
        Planted("stops selling while one seat is still left",
                _locked('left = inventory["left"]\nif left <= 1:\n    return JsonResponse({"seat": None}, status=409)\n'
                        f'{_CHARGE}\ninventory["left"] = left - 1'), "refused while seats were left", "condition"),
        Planted("takes the seat first and charges after, with no lock",
                'async def reserve(request):\n    left = inventory["left"]\n    if left == 0:\n'
                '        return JsonResponse({"seat": None}, status=409)\n    inventory["left"] = left - 1\n'
                '    await check.charge_card()\n    return JsonResponse({"seat": left})\n\nreturn reserve',
                "taken before the card was charged", "condition"),
        Planted("counts the seats in a copy made once, and never updates the inventory",
                'lock = asyncio.Lock()\ncount = inventory["left"]\n\n\nasync def reserve(request):\n'
                '    nonlocal count\n    async with lock:\n        left = count\n        if left == 0:\n'
                '            return JsonResponse({"seat": None}, status=409)\n        await check.charge_card()\n'
                '        count = left - 1\n    return JsonResponse({"seat": left})\n\nreturn reserve',
                "the inventory says", "result"),
    ],
    "request-context": [
        Planted("keeps the id in a dict shared by every request",
                _store("box['id'] = request_id", "return box.get('id')", "box = {}\n\n\n"), "another request's id",
                "concurrency"),
        Planted("keeps the id in threading.local",
                _store("store.id = request_id", "return getattr(store, 'id', None)",
                       "import threading\n\nstore = threading.local()\n\n\n"), "threading.local"),
        Planted("puts a mutable dict in a ContextVar's default and mutates it",
                _store("current.get()['id'] = request_id", "return current.get().get('id')",
                       _VAR.format(default=", default={}")), "mutable default", "concurrency"),
        Planted("makes remember and recall coroutine functions",
                "current = contextvars.ContextVar('request_id', default=None)\n\n\n"
                "async def remember(request_id):\n    current.set(request_id)\n\n\n"
                "async def recall():\n    return current.get()\n\n\nreturn remember, recall", "plain function"),
        Planted("a ContextVar without a default: recall raises when nothing was remembered",
                _store("current.set(request_id)", "return current.get()", _VAR.format(default="")),
                "should return None", "condition"),
        Planted("recall returns an empty string when nothing was remembered",
                _store("current.set(request_id)", "return current.get()", _VAR.format(default=', default=""')),
                "should return None", "condition"),
        Planted("makes a new ContextVar on every call",
                _store("contextvars.ContextVar('request_id').set(request_id)",
                       "return contextvars.ContextVar('request_id', default=None).get()"), "was not kept", "result"),
    ],
    "pooled-database": [
        Planted("keeps persistent connections (CONN_MAX_AGE=60) under ASGI",
                'database["CONN_MAX_AGE"] = 60', "persistent connections pile up"),
        Planted("combines the pool with CONN_MAX_AGE > 0",
                'database["CONN_MAX_AGE"] = 60\ndatabase["OPTIONS"] = {"pool": {"max_size": 4, "timeout": 10}}',
                "Pooling doesn't support persistent connections", "condition"),
        Planted("no pool: a new connection for every request",
                'database["CONN_MAX_AGE"] = 0', "no pool"),
        Planted("a pool larger than the limit",
                'database["OPTIONS"] = {"pool": {"min_size": 1, "max_size": 32, "timeout": 10}}', "more than 4",
                "condition"),
        Planted("turns the pool on with its defaults (a 30 s timeout)",
                'database["OPTIONS"] = {"pool": True}', "wait up to 10 s", "condition"),
        Planted("gives up after 1 s instead of 10",
                'database["OPTIONS"] = {"pool": {"min_size": 1, "max_size": 4, "timeout": 1}}', "wait up to 10 s",
                "condition"),
        Planted("fills OPTIONS before creating it",
                'database["CONN_MAX_AGE"] = 0\ndatabase["OPTIONS"]["pool"] = {"max_size": 4, "timeout": 10}',
                "has no key 'OPTIONS'", "result"),
        Planted("puts the pool at the top level of the entry",
                'database["pool"] = {"min_size": 1, "max_size": 4, "timeout": 10}', "top-level 'pool'", "result"),
        Planted("writes a new entry from the lesson's database instead of the URL's",
                'database = {"ENGINE": "django.db.backends.postgresql", "NAME": "sandbox", "USER": "sandbox",\n'
                '            "HOST": "127.0.0.1", "OPTIONS": {"pool": {"max_size": 4, "timeout": 10}}}',
                "no longer points at the database", "result"),
        Planted("a max_size below psycopg_pool's default min_size",
                'database["OPTIONS"] = {"pool": {"max_size": 2, "timeout": 10}}', "refuses the pool's settings",
                "condition"),
    ],
    "async-test": [
        Planted("sends the header with the sync Client's HTTP_ prefix",
                'refused = await client.get("/exercise/")\nassert refused.status_code == 403\n'
                'served = await client.get("/exercise/", HTTP_X_API_KEY="letmein")\n'
                'assert served.status_code == 200\nassert served.json() == {"menu": ["espresso", "latte"]}',
                "no HTTP_ prefix", "protocol"),
        Planted("forgets to await the client",
                'refused = client.get("/exercise/")\nassert refused.status_code == 403', "never awaited"),
        Planted("tests only the happy path",
                'served = await client.get("/exercise/", headers={"X-Api-Key": "letmein"})\n'
                'assert served.status_code == 200\nassert served.json() == {"menu": ["espresso", "latte"]}',
                "lets anyone in", "condition"),
        Planted("checks status codes, not the body",
                'refused = await client.get("/exercise/")\nassert refused.status_code == 403\n'
                'served = await client.get("/exercise/", headers={"X-Api-Key": "letmein"})\n'
                "assert served.status_code == 200", "wrong menu", "result"),
        Planted("uses the sync Client in an async test",
                'from django.test import Client\n\nrefused = Client().get("/exercise/")\n'
                "assert refused.status_code == 403", "sync Client inside async code"),
        Planted("tests only the refusal",
                'refused = await client.get("/exercise/")\nassert refused.status_code == 403',
                "refuses everyone, even with the right key", "condition"),
        Planted("accepts any error status as the refusal",
                'refused = await client.get("/exercise/")\nassert refused.status_code >= 400\n'
                'served = await client.get("/exercise/", headers={"X-Api-Key": "letmein"})\n'
                'assert served.status_code == 200\nassert served.json() == {"menu": ["espresso", "latte"]}',
                "401 instead of 403", "protocol"),
    ],
}

ACCEPTABLE: dict[str, list[Acceptable]] = {
    "seat-lock": [
        Acceptable("the lock acquired and released by hand, the count decremented in place",
                   'lock = asyncio.Lock()\n\n\nasync def reserve(request):\n    await lock.acquire()\n    try:\n'
                   '        seats_left = inventory["left"]\n        if not seats_left:\n'
                   '            return JsonResponse({"seat": None}, status=409)\n'
                   '        await check.charge_card()\n        inventory["left"] -= 1\n    finally:\n'
                   '        lock.release()\n    return JsonResponse({"seat": seats_left})\n\nreturn reserve'),
        Acceptable("a Semaphore(1) and HTTPStatus.CONFLICT",
                   'from http import HTTPStatus\n\ngate = asyncio.Semaphore(1)\n\n\nasync def reserve(request):\n'
                   '    async with gate:\n        if inventory["left"] <= 0:\n'
                   '            return JsonResponse({"seat": None}, status=HTTPStatus.CONFLICT)\n'
                   '        await check.charge_card()\n        seat = inventory["left"]\n'
                   '        inventory["left"] = seat - 1\n    return JsonResponse({"seat": seat})\n\nreturn reserve'),
    ],
    "request-context": [
        Acceptable("asgiref's Local instead of a ContextVar",
                   _store("box.request_id = request_id", "return getattr(box, 'request_id', None)",
                          "from asgiref.local import Local\n\nbox = Local()\n\n\n")),
        Acceptable("the ContextVar's own methods, read with get(None)",
                   'request_id = contextvars.ContextVar("request_id")\n'
                   "return request_id.set, lambda: request_id.get(None)"),
    ],
    "pooled-database": [
        Acceptable("CONN_MAX_AGE left at Django's default, the pool's min_size at psycopg_pool's",
                   'database["OPTIONS"] = {"pool": {"max_size": 4, "timeout": 10.0}}'),
        Acceptable("OPTIONS filled with setdefault, keyword arguments and update",
                   'database.setdefault("OPTIONS", {})["pool"] = dict(min_size=2, max_size=4, timeout=10)\n'
                   "database.update(CONN_MAX_AGE=0)"),
    ],
    "async-test": [
        Acceptable("the key as a keyword argument, the refusal checked last",
                   'served = await client.get("/exercise/", X_API_KEY="letmein")\n'
                   "assert served.status_code == 200\n"
                   'assert served.json()["menu"] == ["espresso", "latte"]\n'
                   'refused = await client.get("/exercise/")\nassert refused.status_code == 403'),
        Acceptable("the header in lower case, the body read with json.loads, the conditions joined",
                   "import json\n\n"
                   'answer = await client.get("/exercise/", headers={"x-api-key": "letmein"})\n'
                   "assert answer.status_code == 200 and (\n"
                   '    json.loads(answer.content) == {"menu": ["espresso", "latte"]})\n'
                   'assert (await client.get("/exercise/")).status_code == 403'),
    ],
}
