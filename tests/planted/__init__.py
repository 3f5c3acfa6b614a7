"""Planted wrong answers: what a learner would plausibly write, per chapter and exercise.

Each entry replaces the body of one `### BEGIN SOLUTION` block (indentation is added by the test). The
check must fail on it with feedback that contains `expect`: the name of the async mistake.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Planted:
    mistake: str
    code: str
    expect: str


PLANTED: dict[str, dict[str, list[Planted]]] = {
    "01-sync-vs-async": {
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
    },
}
