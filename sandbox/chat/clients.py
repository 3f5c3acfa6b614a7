"""Clients for the chat, for the notebook and the tests: a logged-in session, and WebSockets that carry it.

A browser sends two headers with every WebSocket it opens: `Origin` (the page's site) and `Cookie` (the session).
These helpers send the same two, so the chat's consumer sees what it would see from a real page.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

ORIGIN = "http://127.0.0.1"  # a host in ALLOWED_HOSTS: what a page served by the sandbox sends


async def login_cookie(username: str) -> str:
    """Log `username` in (the user is created if needed) and return its session cookie, `sessionid=...`.

    `AsyncClient.aforce_login` writes a real session to the database, without a password: the servers share that
    database, so the cookie works against daphne too.
    """
    from django.contrib.auth.models import User
    from django.test import AsyncClient

    user, _ = await User.objects.aget_or_create(username=username)
    client = AsyncClient()
    await client.aforce_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def scope_headers(cookie: str | None = None, origin: str | None = ORIGIN) -> list[tuple[bytes, bytes]]:
    """The same two headers as ASGI scope headers, for `WebsocketCommunicator(..., headers=...)`."""
    headers = [(b"origin", origin.encode())] if origin else []
    return headers + ([(b"cookie", cookie.encode())] if cookie else [])


async def open_chat(server, room: str, cookie: str | None, *, origin: str | None = ORIGIN, timeout: float = 10.0):
    """Open the chat's WebSocket on a real server; return (connection, its welcome message)."""
    from websockets.asyncio.client import connect

    headers = {"Cookie": cookie} if cookie else None
    async with asyncio.timeout(timeout):
        ws = await connect(f"{server.ws_url}/ws/chat/{room}/", origin=origin, additional_headers=headers,
                           open_timeout=timeout)
        return ws, json.loads(await ws.recv())


async def next_event(ws, kind: str = "message", *, timeout: float = 5.0) -> dict:
    """Read from `ws` until an event of type `kind` arrives (presence updates and the like are skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            event = json.loads(await ws.recv())
            if event.get("type") == kind:
                return event


@contextlib.asynccontextmanager
async def hold_chats(server, room: str, cookie: str, n: int, *, batch: int = 100, timeout: float = 90.0):
    """Open `n` chat connections with one session (think: one user's `n` tabs) and keep them open in the block.

    Yields the connections, each one's welcome already read. Opened in batches: the server's accept backlog is
    finite. Every connection is closed on the way out.
    """
    conns = []
    try:
        async with asyncio.timeout(timeout):
            for first in range(0, n, batch):
                opened = await asyncio.gather(*(open_chat(server, room, cookie, timeout=timeout)
                                                for _ in range(first, min(n, first + batch))),
                                              return_exceptions=True)
                conns += [ws for ws, _ in (o for o in opened if not isinstance(o, BaseException))]
                failed = [o for o in opened if isinstance(o, BaseException)]
                if failed:
                    raise failed[0]
        yield conns
    finally:
        await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)


async def wait_until_empty(room: str, *, timeout: float = 30.0) -> float:
    """Wait until no presence row is left in `room` (a server runs `disconnect` after its clients have gone).

    Returns the seconds it took; raises TimeoutError with the count still there.
    """
    import time

    from sandbox.chat.models import Presence

    start = time.perf_counter()
    deadline = start + timeout
    while (left := await Presence.objects.filter(room=room).acount()):
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{left} presence rows still in room {room!r} after {timeout} s")
        await asyncio.sleep(0.1)
    return time.perf_counter() - start
