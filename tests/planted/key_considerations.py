"""Planted wrong answers for chapter 08, key considerations."""

from tests.planted.common import Planted

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


PLANTED: dict[str, list[Planted]] = {
    "seat-lock": [
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
    ],
    "request-context": [
        Planted("keeps the id in a dict shared by every request",
                "box = {}\n\n\ndef remember(request_id):\n    box['id'] = request_id\n\n\n"
                "def recall():\n    return box.get('id')\n\n\nreturn remember, recall", "another request's id"),
        Planted("keeps the id in threading.local",
                "import threading\n\nstore = threading.local()\n\n\ndef remember(request_id):\n"
                "    store.id = request_id\n\n\ndef recall():\n    return getattr(store, 'id', None)\n\n\n"
                "return remember, recall", "threading.local"),
        Planted("puts a mutable dict in a ContextVar's default and mutates it",
                "current = contextvars.ContextVar('request', default={})\n\n\ndef remember(request_id):\n"
                "    current.get()['id'] = request_id\n\n\ndef recall():\n    return current.get().get('id')\n\n\n"
                "return remember, recall", "mutable default"),
    ],
    "pooled-database": [
        Planted("keeps persistent connections (CONN_MAX_AGE=60) under ASGI",
                'database["CONN_MAX_AGE"] = 60', "persistent connections pile up"),
        Planted("combines the pool with CONN_MAX_AGE > 0",
                'database["CONN_MAX_AGE"] = 60\ndatabase["OPTIONS"] = {"pool": {"max_size": 4, "timeout": 10}}',
                "Pooling doesn't support persistent connections"),
        Planted("no pool: a new connection for every request",
                'database["CONN_MAX_AGE"] = 0', "no pool"),
        Planted("a pool larger than the limit",
                'database["OPTIONS"] = {"pool": {"min_size": 1, "max_size": 32, "timeout": 10}}', "more than 4"),
    ],
    "async-test": [
        Planted("sends the header with the sync Client's HTTP_ prefix",
                'refused = await client.get("/exercise/")\nassert refused.status_code == 403\n'
                'served = await client.get("/exercise/", HTTP_X_API_KEY="letmein")\n'
                'assert served.status_code == 200\nassert served.json() == {"menu": ["espresso", "latte"]}',
                "no HTTP_ prefix"),
        Planted("forgets to await the client",
                'refused = client.get("/exercise/")\nassert refused.status_code == 403', "never awaited"),
        Planted("tests only the happy path",
                'served = await client.get("/exercise/", headers={"X-Api-Key": "letmein"})\n'
                'assert served.status_code == 200\nassert served.json() == {"menu": ["espresso", "latte"]}',
                "lets anyone in"),
        Planted("checks status codes, not the body",
                'refused = await client.get("/exercise/")\nassert refused.status_code == 403\n'
                'served = await client.get("/exercise/", headers={"X-Api-Key": "letmein"})\n'
                "assert served.status_code == 200", "wrong menu"),
        Planted("uses the sync Client in an async test",
                'from django.test import Client\n\nrefused = Client().get("/exercise/")\n'
                "assert refused.status_code == 403", "sync Client inside async code"),
    ],
}
