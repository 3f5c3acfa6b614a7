"""Middleware for chapter 05: the source document's example (broken, on purpose) and three ways that work.

Every middleware here that works leaves a trace: it appends a step to `request.trail` saying which thread it
ran on and whether an event loop was running there, and it sets a response header saying which mode it ran
in. The views in `views.py` answer with the trail, so a request shows where each layer of the stack ran.
`SyncOnlyMiddleware` is the legacy kind, sync only, used to measure what one of those costs in an async stack.
"""

from __future__ import annotations

import asyncio  # the document's example calls asyncio.sleep but never imports asyncio
import threading
import time
from inspect import iscoroutinefunction, markcoroutinefunction

from django.utils.decorators import sync_and_async_middleware
from django.utils.deprecation import MiddlewareMixin


def mark(request, step: str) -> None:
    """Record on the request which thread ran `step`, and whether that thread runs an event loop."""
    try:
        asyncio.get_running_loop()
        where = "event loop"
    except RuntimeError:
        where = "worker thread"
    request.__dict__.setdefault("trail", []).append(
        {"step": step, "thread": threading.current_thread().name, "where": where})


def pause(request) -> float:
    """Seconds of simulated work a middleware should do: `?pause=0.3` (0 by default)."""
    return float(request.GET.get("pause", 0))


# ---------------------------------------------------------------------------------------------------------------
# BROKEN ON PURPOSE: the source document's "Async Middleware" example, copied verbatim (only `import asyncio`,
# which it forgets, is added at the top of this file). On Django 6.1 it fails on every request:
# under ASGI with "TypeError: sync_to_async can only be applied to sync functions.", under WSGI with
# "AttributeError: 'coroutine' object has no attribute ..." and "coroutine ... was never awaited".
# Never copy it. Chapter 05 runs it to show why.
# ---------------------------------------------------------------------------------------------------------------
class AsyncMiddleware(MiddlewareMixin):
    async def process_request(self, request):
        await asyncio.sleep(1)  # Simulated async task


# ---------------------------------------------------------------------------------------------------------------
# Pattern 1: a hybrid function middleware. Django tells the factory which mode it is in through the kind of
# `get_response` it passes: a coroutine function under ASGI (async stack), a plain function under WSGI.
# ---------------------------------------------------------------------------------------------------------------
@sync_and_async_middleware
def hybrid_middleware(get_response):
    if iscoroutinefunction(get_response):

        async def middleware(request):
            mark(request, "hybrid_middleware (async)")
            await asyncio.sleep(pause(request))  # the document's "simulated async task", really awaited
            response = await get_response(request)
            response["X-Hybrid"] = "async"
            return response

    else:

        def middleware(request):
            mark(request, "hybrid_middleware (sync)")
            time.sleep(pause(request))  # in a sync stack the request owns this thread: blocking it is fine
            response = get_response(request)
            response["X-Hybrid"] = "sync"
            return response

    return middleware


# ---------------------------------------------------------------------------------------------------------------
# Pattern 2: an async-only class. The flags tell Django it can only be called with `await`; marking the
# instance tells Django's own wrappers (which test `iscoroutinefunction`) that calling it returns a coroutine.
# ---------------------------------------------------------------------------------------------------------------
class AsyncOnlyMiddleware:
    async_capable = True
    sync_capable = False

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(self.get_response):
            markcoroutinefunction(self)

    async def __call__(self, request):
        mark(request, "AsyncOnlyMiddleware")
        await asyncio.sleep(pause(request))
        response = await self.get_response(request)
        response["X-Async-Only"] = "async"
        return response


# ---------------------------------------------------------------------------------------------------------------
# Pattern 3: keep MiddlewareMixin and its sync hook for WSGI, and override `__acall__` for ASGI. The mixin's
# own `__acall__` would run `process_request` in a thread (sync_to_async); this one stays on the event loop.
# (Django's RemoteUserMiddleware splits its work the same way, without the mixin: sync `process_request`,
# `async def __acall__`.)
# ---------------------------------------------------------------------------------------------------------------
class DualPathMiddleware(MiddlewareMixin):
    def process_request(self, request):  # WSGI: the mixin's __call__ runs this in the request's thread
        mark(request, "DualPathMiddleware.process_request (sync)")
        time.sleep(pause(request))

    async def __acall__(self, request):  # ASGI: the mixin's __call__ returns this coroutine
        mark(request, "DualPathMiddleware.__acall__ (async)")
        await asyncio.sleep(pause(request))
        response = await self.get_response(request)
        response["X-Dual-Path"] = "async"
        return response

    def process_response(self, request, response):  # used by the sync path only: __acall__ above replaces it
        response["X-Dual-Path"] = "sync"
        return response


# ---------------------------------------------------------------------------------------------------------------
# The legacy kind: a plain sync middleware, as many third-party packages still ship. No flags, so Django
# assumes sync_capable = True, async_capable = False, and adapts the stack around it under ASGI.
# ---------------------------------------------------------------------------------------------------------------
class SyncOnlyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        mark(request, "SyncOnlyMiddleware")
        response = self.get_response(request)
        response["X-Sync-Only"] = "sync"
        return response


class OtherSyncOnlyMiddleware(SyncOnlyMiddleware):
    """A second sync-only middleware, to show what grouping them together saves."""

    def __call__(self, request):
        mark(request, "OtherSyncOnlyMiddleware")
        return self.get_response(request)
