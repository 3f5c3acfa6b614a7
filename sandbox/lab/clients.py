"""An in-process HTTP client: httpx over ASGI, talking to the sandbox without a port or a server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx


class LabClient(httpx.AsyncClient):
    """An `httpx.AsyncClient` whose every request carries a deadline.

    httpx's own timeouts live in its network layer, which `ASGITransport` skips; and ipykernel cannot
    interrupt a top-level `await`. So the deadline is enforced here with `asyncio.timeout`.
    """

    def __init__(self, *, deadline: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deadline = deadline

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        try:
            async with asyncio.timeout(self.deadline):
                return await super().send(request, **kwargs)
        except TimeoutError:
            raise TimeoutError(f"{request.method} {request.url.path} took longer than {self.deadline} s") from None


def client(app: Callable[..., Awaitable[None]] | None = None, *, timeout: float = 10.0) -> LabClient:
    """A client for the sandbox's ASGI application (or `app`); use it as `async with lab.client() as c:`."""
    if app is None:
        from sandbox.asgi import application  # needs Django set up (`boot()`): imported on first use

        app = application
    return LabClient(
        deadline=timeout,
        transport=httpx.ASGITransport(app=app),
        base_url="http://127.0.0.1",
        timeout=timeout,
    )
