"""Serving code written in a notebook cell, in process: `lab.serve(view)` gives a client for it.

The lesson's view or middleware is defined in the cell the learner reads; re-running that cell after an edit and
then the cell that calls `lab.serve` measures the edited code. Nothing is written to a file: the routes go to the
request (`request.urlconf`, which Django's resolver honours), and a middleware defined in a cell is reached through
a name of this module, because Django loads middleware by dotted path.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from sandbox.lab.clients import LabClient, client


class _Routes:
    """A URLconf made of the given views (Django accepts any object with `urlpatterns`)."""

    def __init__(self, routes: dict[str, Callable[..., Any]]) -> None:
        from django.urls import path

        self.urlpatterns = [path(route, view) for route, view in routes.items()]


def _dotted(middleware: Sequence[str | Callable[..., Any]]) -> list[str]:
    """Dotted paths for Django's loader: a callable from a cell is published as an attribute of this module."""
    names = []
    for i, item in enumerate(middleware):
        if isinstance(item, str):
            names.append(item)
            continue
        setattr(sys.modules[__name__], f"served_middleware_{i}", item)
        names.append(f"{__name__}.served_middleware_{i}")
    return names


def application(target: Callable[..., Any] | dict[str, Callable[..., Any]],
                middleware: Sequence[str | Callable[..., Any]] | None = None) -> Callable[..., Any]:
    """An ASGI app serving `target` (a view at `/`, or a {route: view} dict) behind `middleware` (default: the
    sandbox's own MIDDLEWARE setting)."""
    from django.conf import settings
    from django.core.handlers.asgi import ASGIHandler
    from django.test import override_settings

    routes = _Routes(target if isinstance(target, dict) else {"": target})
    stack = list(settings.MIDDLEWARE) if middleware is None else _dotted(middleware)

    class LiveHandler(ASGIHandler):
        async def get_response_async(self, request: Any) -> Any:
            request.urlconf = routes
            return await super().get_response_async(request)

    with override_settings(MIDDLEWARE=stack):
        return LiveHandler()  # loads (and adapts) the middleware now, as a server does at start


def serve(target: Callable[..., Any] | dict[str, Callable[..., Any]], *,
          middleware: Sequence[str | Callable[..., Any]] | None = None, timeout: float = 10.0) -> LabClient:
    """A client for `target` served in this kernel: `async with lab.serve(my_view) as c: await c.get("/")`.

    Pass the client to `lab.fire` for concurrent requests. `middleware` lists factories (a class or function from a
    cell) or dotted paths, outermost first.
    """
    return client(application(target, middleware), timeout=timeout)
