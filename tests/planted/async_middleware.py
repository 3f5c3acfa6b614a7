"""Planted wrong answers for chapter 05, async middleware."""

from tests.planted.common import Planted

CHAPTER = "05-async-middleware"

_DURATION_CALL = """
    async def __call__(self, request):
        start = time.perf_counter()
        response = await self.get_response(request)
        response["X-Duration"] = f"{time.perf_counter() - start:.3f}"
        return response"""

PLANTED: dict[str, list[Planted]] = {
    "async-only-class": [
        Planted("forgets markcoroutinefunction(self)",
                "class DurationMiddleware:\n"
                "    async_capable = True\n"
                "    sync_capable = False\n\n"
                "    def __init__(self, get_response):\n"
                "        self.get_response = get_response\n" + _DURATION_CALL,
                "markcoroutinefunction"),
        Planted("leaves out async_capable / sync_capable (Django assumes a sync middleware)",
                "class DurationMiddleware:\n"
                "    def __init__(self, get_response):\n"
                "        self.get_response = get_response\n"
                "        if iscoroutinefunction(self.get_response):\n"
                "            markcoroutinefunction(self)\n" + _DURATION_CALL,
                "not async-capable"),
        Planted("forgets to await get_response",
                "class DurationMiddleware:\n"
                "    async_capable = True\n"
                "    sync_capable = False\n\n"
                "    def __init__(self, get_response):\n"
                "        self.get_response = get_response\n"
                "        if iscoroutinefunction(self.get_response):\n"
                "            markcoroutinefunction(self)\n\n"
                "    async def __call__(self, request):\n"
                "        start = time.perf_counter()\n"
                "        response = self.get_response(request)\n"
                "        response['X-Duration'] = f'{time.perf_counter() - start:.3f}'\n"
                "        return response",
                "never awaited"),
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
                "sync branch"),
        Planted("the async branch forgets to await get_response",
                "@sync_and_async_middleware\n"
                "def request_id_middleware(get_response):\n"
                "    if iscoroutinefunction(get_response):\n"
                "        async def middleware(request):\n"
                "            request.request_id = request.headers.get('X-Request-ID') or uuid.uuid4().hex\n"
                "            response = get_response(request)\n"
                "            response['X-Request-ID'] = request.request_id\n"
                "            return response\n"
                "    else:\n"
                "        def middleware(request):\n"
                "            request.request_id = request.headers.get('X-Request-ID') or uuid.uuid4().hex\n"
                "            response = get_response(request)\n"
                "            response['X-Request-ID'] = request.request_id\n"
                "            return response\n"
                "    return middleware",
                "never awaited"),
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
    ],
}
