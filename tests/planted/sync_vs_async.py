"""Planted answers for chapter 01, sync vs async."""

from tests.planted.common import Acceptable, Planted

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
        Planted("returns the responses, not their JSON bodies",
                "return await asyncio.gather(*(client.get(url) for url in urls))", "Response objects", "result"),
        Planted("collects the bodies in the order the calls finish",
                "bodies = []\nfor finished in asyncio.as_completed([client.get(url) for url in urls]):\n"
                "    bodies.append((await finished).json())\nreturn bodies", "not in the order of `urls`", "result"),
        Planted("makes up the bodies from the lesson's output instead of reading them",
                "await asyncio.gather(*(client.get(url) for url in urls))\n"
                "return [{'i': i, 'slept': 0.4} for i in range(len(urls))]", "not the bodies the upstream sent",
                "result"),
    ],
    "non-blocking-view": [
        Planted("time.sleep inside async def",
                "import time\ntime.sleep(0.5)\nreturn JsonResponse({'hello': 'world'})",
                "event loop was blocked"),
        Planted("forgets to await asyncio.sleep",
                "asyncio.sleep(0.5)\nreturn JsonResponse({'hello': 'world'})", "never awaited"),
        Planted("answers the wrong body",
                "await asyncio.sleep(0.5)\nreturn JsonResponse({'hello': 'there'})", '{"hello": "world"}', "result"),
        Planted("answers JSON text with Django's default content type",
                "from django.http import HttpResponse\nawait asyncio.sleep(0.5)\n"
                "return HttpResponse('{\"hello\": \"world\"}')", "Content-Type 'text/html'", "protocol"),
        Planted("waits 0.05 s instead of 0.5 s",
                "await asyncio.sleep(0.05)\nreturn JsonResponse({'hello': 'world'})", "should wait 0.5 s",
                "condition"),
    ],
    "offload-blocking": [
        Planted("calls the sync function directly",
                "text = legacy_report(n)", "event loop's thread"),
        Planted("forgets to await sync_to_async",
                "text = sync_to_async(legacy_report)(n)", "an `await` is missing"),
        Planted("calls the function before handing it to sync_to_async",
                "text = await sync_to_async(legacy_report(n))()", "event loop's thread"),
        Planted("asks for the report of another n",
                "text = await sync_to_async(legacy_report)(n + 1)", "its own n", "result"),
        Planted("asks for the report of the lesson's example instead of the request's",
                "text = await sync_to_async(legacy_report)(3)", "its own n", "result"),
    ],
    "capped-fan-out": [
        Planted("caps nothing: every call starts at once",
                "async def one(url):\n    try:\n        async with asyncio.timeout(deadline):\n"
                "            return (await client.get(url)).json()\n    except TimeoutError:\n        return None\n"
                "return await asyncio.gather(*(one(url) for url in urls))", "calls were in flight at once with limit",
                "concurrency"),
        Planted("makes the calls one after another",
                "bodies = []\nfor url in urls:\n    try:\n        async with asyncio.timeout(deadline):\n"
                "            bodies.append((await client.get(url)).json())\n    except TimeoutError:\n"
                "        bodies.append(None)\nreturn bodies", "one after another"),
        Planted("starts the deadline before the call gets a slot",
                "gate = asyncio.Semaphore(limit)\nasync def one(url):\n    try:\n"
                "        async with asyncio.timeout(deadline):\n            async with gate:\n"
                "                return (await client.get(url)).json()\n    except TimeoutError:\n        return None\n"
                "return await asyncio.gather(*(one(url) for url in urls))", "cut off before it started", "condition"),
        Planted("lets a missed deadline raise",
                "gate = asyncio.Semaphore(limit)\nasync def one(url):\n    async with gate:\n"
                "        async with asyncio.timeout(deadline):\n            return (await client.get(url)).json()\n"
                "return await asyncio.gather(*(one(url) for url in urls))", "TimeoutError escaped", "condition"),
        Planted("caps at the lesson's number instead of `limit`",
                "gate = asyncio.Semaphore(3)\nasync def one(url):\n    async with gate:\n        try:\n"
                "            async with asyncio.timeout(deadline):\n"
                "                return (await client.get(url)).json()\n"
                "        except TimeoutError:\n            return None\n"
                "return await asyncio.gather(*(one(url) for url in urls))", "with limit=", "result"),
        Planted("one deadline for the whole fan-out",
                "gate = asyncio.Semaphore(limit)\nasync def one(url):\n    async with gate:\n"
                "        return (await client.get(url)).json()\ntry:\n    async with asyncio.timeout(deadline):\n"
                "        return await asyncio.gather(*(one(url) for url in urls))\nexcept TimeoutError:\n"
                "    return [None] * len(urls)", "cut off before it started", "condition"),
        Planted("uses a sync HTTP client inside async code",
                "with httpx.Client(timeout=deadline) as sync_client:\n    bodies = []\n    for url in urls:\n"
                "        try:\n            bodies.append(sync_client.get(url).json())\n"
                "        except httpx.TimeoutException:\n            bodies.append(None)\nreturn bodies",
                "event loop was blocked"),
    ],
}
ACCEPTABLE: dict[str, list[Acceptable]] = {
    "fan-out": [
        Acceptable("a TaskGroup instead of gather",
                   "async with asyncio.TaskGroup() as group:\n"
                   "    tasks = [group.create_task(client.get(url)) for url in urls]\n"
                   "return [task.result().json() for task in tasks]"),
    ],
    "non-blocking-view": [
        Acceptable("the wait under a deadline",
                   "async with asyncio.timeout(5):\n    await asyncio.sleep(0.5)\n"
                   "return JsonResponse(dict(hello='world'))"),
    ],
    "offload-blocking": [
        Acceptable("asyncio.to_thread instead of sync_to_async", "text = await asyncio.to_thread(legacy_report, n)"),
        Acceptable("a pool thread (thread_sensitive=False)",
                   "text = await sync_to_async(legacy_report, thread_sensitive=False)(n)"),
    ],
    "capped-fan-out": [
        Acceptable("wait_for in a TaskGroup",
                   "gate = asyncio.Semaphore(limit)\nasync def one(url):\n    async with gate:\n        try:\n"
                   "            response = await asyncio.wait_for(client.get(url), deadline)\n"
                   "        except TimeoutError:\n            return None\n    return response.json()\n"
                   "async with asyncio.TaskGroup() as group:\n"
                   "    tasks = [group.create_task(one(url)) for url in urls]\nreturn [t.result() for t in tasks]"),
    ],
}
