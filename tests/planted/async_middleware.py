"""Planted answers for chapter 05, async middleware."""

from tests.planted.common import Acceptable, Planted

CHAPTER = "05-async-middleware"

_MARKED_INIT = """
    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(self.get_response):
            markcoroutinefunction(self)
"""

_DURATION_CALL = """
    async def __call__(self, request):
        start = time.perf_counter()
        response = await self.get_response(request)
        response["X-Duration"] = f"{time.perf_counter() - start:.3f}"
        return response"""

_ASYNC_ONLY = "class DurationMiddleware:\n    async_capable = True\n    sync_capable = False\n"


def _duration(body: str) -> str:
    """An async-only DurationMiddleware whose __call__ has `body`."""
    return _ASYNC_ONLY + _MARKED_INIT + "\n    async def __call__(self, request):\n" + body


def _request_id(set_id: str, *, after: bool = False) -> str:
    """A hybrid request_id_middleware that stores `set_id` (an expression) as the request's id, before the view
    (or after it)."""
    def branch(kw: str, aw: str) -> str:
        store = f"            request.request_id = {set_id}\n"
        call = f"            response = {aw}get_response(request)\n"
        return (f"        {kw}def middleware(request):\n" + (call + store if after else store + call)
                + "            response['X-Request-ID'] = request.request_id\n"
                  "            return response\n")
    return ("@sync_and_async_middleware\n"
            "def request_id_middleware(get_response):\n"
            "    if iscoroutinefunction(get_response):\n" + branch("async ", "await ")
            + "    else:\n" + branch("", "") + "    return middleware")


PLANTED: dict[str, list[Planted]] = {
    "async-only-class": [
        Planted("forgets markcoroutinefunction(self), so the middleware outside never awaits it",
                _ASYNC_ONLY + "\n    def __init__(self, get_response):\n"
                "        self.get_response = get_response\n" + _DURATION_CALL,
                "markcoroutinefunction"),
        Planted("leaves out async_capable / sync_capable (Django assumes a sync middleware)",
                "class DurationMiddleware:" + _MARKED_INIT + _DURATION_CALL,
                "not async-capable"),
        Planted("forgets to await get_response",
                _duration("        start = time.perf_counter()\n"
                          "        response = self.get_response(request)\n"
                          "        response['X-Duration'] = f'{time.perf_counter() - start:.3f}'\n"
                          "        return response"),
                "never awaited"),
        Planted("says sync_capable = True as well (not async-only: Django calls it sync under WSGI)",
                "class DurationMiddleware:\n    async_capable = True\n    sync_capable = True\n" + _MARKED_INIT
                + _DURATION_CALL,
                "can run sync", "condition"),
        Planted("keeps the start time on self, shared by every request in flight",
                _duration("        self.start = time.perf_counter()\n"
                          "        response = await self.get_response(request)\n"
                          "        response['X-Duration'] = f'{time.perf_counter() - self.start:.3f}'\n"
                          "        return response"),
                "restarted by another request", "concurrency"),
        Planted("reports milliseconds instead of seconds",
                _duration("        start = time.perf_counter()\n"
                          "        response = await self.get_response(request)\n"
                          "        response['X-Duration'] = f'{(time.perf_counter() - start) * 1000:.3f}'\n"
                          "        return response"),
                "milliseconds", "result"),
        Planted("writes the seconds unformatted, not with three decimals",
                _duration("        start = time.perf_counter()\n"
                          "        response = await self.get_response(request)\n"
                          "        response['X-Duration'] = str(time.perf_counter() - start)\n"
                          "        return response"),
                "three decimals", "result"),
    ],
    "hybrid-function": [
        Planted("a sync-only function middleware (no @sync_and_async_middleware)",
                "def request_id_middleware(get_response):\n"
                "    def middleware(request):\n"
                "        request.request_id = request.headers.get('X-Request-ID') or uuid.uuid4().hex\n"
                "        response = get_response(request)\n"
                "        response['X-Request-ID'] = request.request_id\n"
                "        return response\n"
                "    return middleware",
                "not async-capable"),
        Planted("only the async branch",
                "@sync_and_async_middleware\n"
                "def request_id_middleware(get_response):\n"
                "    async def middleware(request):\n"
                "        request.request_id = request.headers.get('X-Request-ID') or uuid.uuid4().hex\n"
                "        response = await get_response(request)\n"
                "        response['X-Request-ID'] = request.request_id\n"
                "        return response\n"
                "    return middleware",
                "plain `def` middleware"),
        Planted("the async branch forgets to await get_response",
                _request_id("request.headers.get('X-Request-ID') or uuid.uuid4().hex").replace(
                    "response = await get_response", "response = get_response"),
                "never awaited"),
        Planted("keeps the id in a threading.local, as sync code did (one thread runs every ASGI request)",
                "import threading\n\ncurrent = threading.local()\n\n\n"
                "@sync_and_async_middleware\n"
                "def request_id_middleware(get_response):\n"
                "    def stamp(request):\n"
                "        current.id = request.headers.get('X-Request-ID') or uuid.uuid4().hex\n"
                "        request.request_id = current.id\n\n"
                "    if iscoroutinefunction(get_response):\n"
                "        async def middleware(request):\n"
                "            stamp(request)\n"
                "            response = await get_response(request)\n"
                "            response['X-Request-ID'] = current.id\n"
                "            return response\n"
                "    else:\n"
                "        def middleware(request):\n"
                "            stamp(request)\n"
                "            response = get_response(request)\n"
                "            response['X-Request-ID'] = current.id\n"
                "            return response\n"
                "    return middleware",
                "another request's id", "concurrency"),
        Planted("always makes a new id, ignoring the client's header",
                _request_id("uuid.uuid4().hex"),
                "reuse it", "result"),
        Planted("sets request.request_id only after the view has run",
                _request_id("request.headers.get('X-Request-ID') or uuid.uuid4().hex", after=True),
                "before you call the rest of the stack", "condition"),
        Planted("makes one new id in the factory, shared by every request without the header",
                _request_id("request.headers.get('X-Request-ID') or fresh").replace(
                    "def request_id_middleware(get_response):\n",
                    "def request_id_middleware(get_response):\n    fresh = uuid.uuid4().hex\n"),
                "same id", "condition"),
        Planted("makes the new id with str(uuid.uuid4()), dashes and all",
                _request_id("request.headers.get('X-Request-ID') or str(uuid.uuid4())"),
                "32 hex digits", "result"),
    ],
    "fix-document-middleware": [
        Planted("keeps the document's async def process_request",
                "class AuditMiddleware(MiddlewareMixin):\n"
                "    async def process_request(self, request):\n"
                "        await audit(request)",
                "process_request is still `async def`"),
        Planted("only a sync process_request (the mixin runs it in a thread under ASGI)",
                "class AuditMiddleware(MiddlewareMixin):\n"
                "    def process_request(self, request):\n"
                "        audit_sync(request)",
                "worker thread"),
        Planted("__acall__ returns get_response(request) without awaiting it",
                "class AuditMiddleware(MiddlewareMixin):\n"
                "    def process_request(self, request):\n"
                "        audit_sync(request)\n\n"
                "    async def __acall__(self, request):\n"
                "        await audit(request)\n"
                "        return self.get_response(request)",
                "never awaited"),
        Planted("calls the blocking audit_sync inside __acall__",
                "class AuditMiddleware(MiddlewareMixin):\n"
                "    def process_request(self, request):\n"
                "        audit_sync(request)\n\n"
                "    async def __acall__(self, request):\n"
                "        audit_sync(request)\n"
                "        return await self.get_response(request)",
                "event loop was blocked"),
        Planted("runs the async audit from a sync process_request with async_to_sync",
                "from asgiref.sync import async_to_sync\n\n\n"
                "class AuditMiddleware(MiddlewareMixin):\n"
                "    def process_request(self, request):\n"
                "        async_to_sync(audit)(request)",
                "worker thread"),
        Planted("audits on the way out, after the view has run",
                "class AuditMiddleware(MiddlewareMixin):\n"
                "    def process_request(self, request):\n"
                "        audit_sync(request)\n\n"
                "    async def __acall__(self, request):\n"
                "        response = await self.get_response(request)\n"
                "        await audit(request)\n"
                "        return response",
                "view ran before its audit", "condition"),
        Planted("starts the audit as a task and does not wait for it",
                "import asyncio\n\n\n"
                "class AuditMiddleware(MiddlewareMixin):\n"
                "    def process_request(self, request):\n"
                "        audit_sync(request)\n\n"
                "    async def __acall__(self, request):\n"
                "        asyncio.create_task(audit(request))\n"
                "        return await self.get_response(request)",
                "view ran before its audit", "condition"),
        Planted("replaces the mixin with an async-only class",
                "class AuditMiddleware:\n"
                "    async_capable = True\n"
                "    sync_capable = False\n\n"
                "    def __init__(self, get_response):\n"
                "        self.get_response = get_response\n"
                "        markcoroutinefunction(self)\n\n"
                "    async def __call__(self, request):\n"
                "        await audit(request)\n"
                "        return await self.get_response(request)",
                "subclass of MiddlewareMixin", "condition"),
        Planted("only __acall__: no sync hook, so WSGI requests go unaudited",
                "class AuditMiddleware(MiddlewareMixin):\n"
                "    async def __acall__(self, request):\n"
                "        await audit(request)\n"
                "        return await self.get_response(request)",
                "not audited at all", "condition"),
    ],
}

ACCEPTABLE: dict[str, list[Acceptable]] = {
    "async-only-class": [
        Acceptable("marks the instance unconditionally, sets the header through response.headers",
                   "class DurationMiddleware:\n"
                   "    sync_capable = False\n"
                   "    async_capable = True\n\n"
                   "    def __init__(self, get_response):\n"
                   "        self.get_response = get_response\n"
                   "        markcoroutinefunction(self)\n\n"
                   "    async def __call__(self, request):\n"
                   "        began = time.perf_counter()\n"
                   "        response = await self.get_response(request)\n"
                   "        elapsed = time.perf_counter() - began\n"
                   "        response.headers['X-Duration'] = format(elapsed, '.3f')\n"
                   "        return response"),
    ],
    "hybrid-function": [
        Acceptable("reads request.META, the sync branch first, a helper for the id",
                   "@sync_and_async_middleware\n"
                   "def request_id_middleware(get_response):\n"
                   "    def new_id(request):\n"
                   "        return request.META.get('HTTP_X_REQUEST_ID') or uuid.uuid4().hex\n\n"
                   "    if not iscoroutinefunction(get_response):\n"
                   "        def middleware(request):\n"
                   "            request.request_id = new_id(request)\n"
                   "            response = get_response(request)\n"
                   "            response.headers['X-Request-ID'] = request.request_id\n"
                   "            return response\n"
                   "        return middleware\n\n"
                   "    async def middleware(request):\n"
                   "        request.request_id = new_id(request)\n"
                   "        response = await get_response(request)\n"
                   "        response.headers['X-Request-ID'] = request.request_id\n"
                   "        return response\n"
                   "    return middleware"),
    ],
    "fix-document-middleware": [
        Acceptable("the audit under a deadline, the response named, process_request returning None",
                   "import asyncio\n\n\n"
                   "class AuditMiddleware(MiddlewareMixin):\n"
                   "    def process_request(self, request):\n"
                   "        audit_sync(request)\n"
                   "        return None\n\n"
                   "    async def __acall__(self, request):\n"
                   "        async with asyncio.timeout(5):\n"
                   "            await audit(request)\n"
                   "        response = await self.get_response(request)\n"
                   "        return response"),
    ],
}
