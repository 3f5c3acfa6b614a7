"""A slow upstream service: the "other API" the fan-out views call over real HTTP.

A bare ASGI app (no Django), served by uvicorn from `lab.start_upstream()`. It counts requests in flight,
so a check can tell calls made at once from calls made one after another, whatever the machine's speed.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs

STATS = {"in_flight": 0, "max_in_flight": 0, "served": 0}


async def _reply(send, status: int, body: dict) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    path = scope["path"]
    if path == "/stats":
        await _reply(send, 200, STATS)
    elif path == "/reset":
        STATS.update(in_flight=0, max_in_flight=0, served=0)
        await _reply(send, 200, STATS)
    elif path in ("/slow", "/fail"):
        STATS["in_flight"] += 1
        STATS["max_in_flight"] = max(STATS["max_in_flight"], STATS["in_flight"])
        try:
            await asyncio.sleep(float(query.get("s", 1)))
        finally:
            STATS["in_flight"] -= 1
            STATS["served"] += 1
        status = 200 if path == "/slow" else 503
        await _reply(send, status, {"i": int(query.get("i", 0)), "slept": float(query.get("s", 1))})
    else:
        await _reply(send, 404, {"error": f"no route {path}"})
