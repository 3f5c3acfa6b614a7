"""Chapter 03's streaming client: a view from a cell served in process, its response read the way an ASGI server
passes it on (each body chunk as it is sent), and a client that hangs up after a few chunks.

`lab.serve`'s httpx client buffers a whole response, so it cannot show chunks arriving or a client leaving; this
module speaks the ASGI messages a server such as uvicorn sends: `http.request`, then `http.disconnect` when the
client has gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sandbox.lab.live import application


@dataclass
class Stream:
    status: int | None = None
    chunks: list[tuple[float, str]] = field(default_factory=list)  # (seconds since the request, text)
    hung_up: bool = False

    def show(self) -> None:
        """One line per chunk, with the seconds since the request was sent."""
        for seconds, text in self.chunks:
            print(f"+{seconds:.2f} s  {text.strip()}")


async def read(view: Callable[..., Any], url: str = "/", *, hang_up_after: int | None = None,
               timeout: float = 10.0) -> Stream:
    """GET `url` from `view` (served at every path of `url`'s route "/"), recording each body chunk as it is sent;
    after `hang_up_after` chunks the client disconnects, as a browser tab closed mid-stream does."""
    app, loop, parts = application(view), asyncio.get_running_loop(), urlsplit(url)
    stream, gone, asked = Stream(), asyncio.Event(), False
    t0 = loop.time()

    async def receive() -> dict:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            stream.status = message["status"]
        elif message["type"] == "http.response.body" and message.get("body") and not gone.is_set():
            stream.chunks.append((loop.time() - t0, message["body"].decode()))
            if hang_up_after is not None and len(stream.chunks) >= hang_up_after:
                stream.hung_up = True
                gone.set()

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": parts.path, "raw_path": parts.path.encode(), "query_string": parts.query.encode(),
             "root_path": "", "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 50000),
             "server": ("127.0.0.1", 80)}
    async with asyncio.timeout(timeout):
        await app(scope, receive, send)
    return stream
