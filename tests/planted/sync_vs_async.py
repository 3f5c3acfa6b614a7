"""Planted wrong answers for chapter 01, sync vs async."""

from tests.planted.common import Planted

CHAPTER = "01-sync-vs-async"
PLANTED: dict[str, list[Planted]] = {
    "fan-out": [
        Planted("awaits each call before starting the next",
                "return [(await client.get(url)).json() for url in urls]", "one after another"),
        Planted("forgets to await the calls",
                "return [client.get(url) for url in urls]", "never awaited"),
        Planted("uses a sync HTTP client inside async code",
                "with httpx.Client(timeout=10) as sync_client:\n"
                "    return [sync_client.get(url).json() for url in urls]", "event loop was blocked"),
    ],
    "non-blocking-view": [
        Planted("time.sleep inside async def",
                "import time\ntime.sleep(0.5)\nreturn JsonResponse({'hello': 'world'})",
                "event loop was blocked"),
        Planted("forgets to await asyncio.sleep",
                "asyncio.sleep(0.5)\nreturn JsonResponse({'hello': 'world'})", "missing before asyncio.sleep"),
        Planted("answers the wrong body",
                "await asyncio.sleep(0.5)\nreturn JsonResponse({'hello': 'there'})", '{"hello": "world"}'),
    ],
    "offload-blocking": [
        Planted("calls the sync function directly",
                "text = legacy_report(n)", "event loop's thread"),
        Planted("forgets to await sync_to_async",
                "text = sync_to_async(legacy_report)(n)", "missing `await`"),
        Planted("calls the function before handing it to sync_to_async",
                "text = await sync_to_async(legacy_report(n))()", "event loop's thread"),
    ],
}
