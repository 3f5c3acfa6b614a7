"""One `httpx.AsyncClient` for every async view of a process that calls another service (the slow upstream).

Building a client costs tens of ms of CPU on the event loop (mostly its TLS context: chapter 09 measures it), and a
view that builds one per request makes every request pay it while the loop serves no one else. Sharing one client
also shares its connection pool. Django's ASGI handler speaks no lifespan protocol (it refuses every scope but
HTTP), so there is no startup or shutdown hook to open and close it: the client is made on first use and lives as
long as its event loop. One per loop, because a client's connections belong to the loop that opened them: a server
process has one loop, a notebook kernel one more, and each check its own.
"""

from __future__ import annotations

import asyncio
import weakref

import httpx

# No cap on connections: the fan-out views open one per call at once, as clients built per request did.
LIMITS = httpx.Limits(max_connections=None, max_keepalive_connections=20)
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()


def shared_client() -> httpx.AsyncClient:
    """This event loop's client, made on first use (10 s per call unless a call gives its own `timeout=`)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = _clients[loop] = httpx.AsyncClient(timeout=10, limits=LIMITS)
    return client
