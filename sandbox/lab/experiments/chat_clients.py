"""Clients for the chat, for the notebook and the tests: a logged-in session, and WebSockets that carry it.

A browser sends two headers with every WebSocket it opens: `Origin` (the page's site) and `Cookie` (the session).
These helpers send the same two, so the chat's consumer sees what it would see from a real page.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from sandbox.lab.load import hold
from sandbox.lab.servers import Server

if TYPE_CHECKING:  # websockets loads when a connection opens, not with this module
    from websockets.asyncio.client import ClientConnection

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


async def open_chat(server: Server, room: str, cookie: str | None, *, origin: str | None = ORIGIN,
                    timeout: float = 10.0) -> tuple[ClientConnection, dict[str, Any]]:
    """Open the chat's WebSocket on a real server; return (connection, its welcome message)."""
    from websockets.asyncio.client import connect
    from websockets.typing import Origin

    headers = {"Cookie": cookie} if cookie else None
    async with asyncio.timeout(timeout):
        ws = await connect(f"{server.ws_url}/ws/chat/{room}/", origin=Origin(origin) if origin else None,
                           additional_headers=headers, open_timeout=timeout)
        return ws, json.loads(await ws.recv())


async def next_event(ws: ClientConnection, kind: str = "message", *, timeout: float = 5.0) -> dict[str, Any]:
    """Read from `ws` until an event of type `kind` arrives (presence updates and the like are skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            event = json.loads(await ws.recv())
            if event.get("type") == kind:
                return event


@contextlib.asynccontextmanager
async def hold_chats(server: Server, room: str, cookie: str, n: int, *, batch: int = 100,
                     timeout: float = 90.0) -> AsyncIterator[list[ClientConnection]]:
    """Open `n` chat connections with one session (think: one user's `n` tabs) and keep them open in the block.

    Yields the connections, each one's welcome already read (and dropped: a crowd's welcomes say nothing new).
    `lab.load.hold` does the rest: batches (the server's accept backlog is finite), the first failure raised,
    every connection closed on the way out.
    """
    async def open_tab() -> ClientConnection:
        ws, _welcome = await open_chat(server, room, cookie, timeout=timeout)
        return ws

    async with hold(n, open_tab, timeout=timeout, batch=batch) as tabs:
        yield tabs


async def wait_until_empty(room: str, *, timeout: float = 30.0) -> float:
    """Wait until no presence row is left in `room` (a server runs `disconnect` after its clients have gone).

    Returns the seconds it took; raises TimeoutError with the count still there.
    """
    from sandbox.chat.models import Presence

    start = time.perf_counter()
    deadline = start + timeout
    while (left := await Presence.objects.filter(room=room).acount()):
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{left} presence rows still in room {room!r} after {timeout} s")
        await asyncio.sleep(0.1)
    return time.perf_counter() - start
