"""Views for chapter 05: they answer with the trail the middleware left on the request.

Each middleware in `middleware.py` appends a step to `request.trail` (the thread that ran it, and whether an
event loop was running there); the view adds its own step and returns the list, so one response shows where
every layer of the stack ran.
"""

from __future__ import annotations

import asyncio
import time

from django.http import JsonResponse

from sandbox.middleware_lab.middleware import mark


def _answer(request) -> JsonResponse:
    """The trail, and the server's clock when the view answered (`at`: how a load test tells views that ran
    together from views that ran one after another)."""
    return JsonResponse({"trail": request.trail, "thread": request.trail[-1]["thread"], "at": time.time()})


async def trail(request):
    """An async view: waits `?s=` seconds (0 by default) with asyncio.sleep, then answers with the trail."""
    mark(request, "view (async)")
    await asyncio.sleep(float(request.GET.get("s", 0)))
    return _answer(request)


def trail_sync(request):
    """The sync twin: waits with time.sleep in whatever thread Django gives it."""
    mark(request, "view (sync)")
    time.sleep(float(request.GET.get("s", 0)))
    return _answer(request)
