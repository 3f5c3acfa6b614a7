"""A URLconf with one route, /exercise/, served by whatever view a check puts there, and `serving()`, which
runs that view through a fresh Django ASGI handler for the length of a block."""

from __future__ import annotations

import contextlib
import sys

from django.urls import clear_url_caches, path

urlpatterns = []


def serve(view_or_routes) -> None:
    """Route /exercise/ to a view, or each "route/" of a {route: view} dict to its view."""
    routes = view_or_routes if isinstance(view_or_routes, dict) else {"exercise/": view_or_routes}
    urlpatterns[:] = [path(route, view) for route, view in routes.items()]
    clear_url_caches()


@contextlib.asynccontextmanager
async def serving(exercise: str, view, *, timeout: float = 20, **overrides):
    """Serve `view` at /exercise/ through Django's real ASGI handler; yields (client, errors).

    The client sends requests in-process; `errors` collects what the view raised (Django turns those into a
    500, so the check would not see them otherwise). `overrides` are extra settings for the block. An
    untouched stub's NotImplementedError is reported as "not attempted" when the block ends.
    """
    from django.core.handlers.asgi import ASGIHandler
    from django.core.signals import got_request_exception
    from django.test import override_settings

    from sandbox.lab.checks.common import not_attempted
    from sandbox.lab.clients import client

    errors: list[BaseException] = []

    def record(sender, request=None, **kwargs):
        errors.append(sys.exc_info()[1])

    serve(view)
    got_request_exception.connect(record, weak=False)
    try:
        with override_settings(ROOT_URLCONF=__name__, **overrides):
            async with client(ASGIHandler(), timeout=timeout) as c:
                yield c, errors
    finally:
        got_request_exception.disconnect(record)
    if any(isinstance(exc, NotImplementedError) for exc in errors):
        raise not_attempted(exercise)
