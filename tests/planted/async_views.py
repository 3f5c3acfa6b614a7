"""Planted wrong answers for chapter 03, async views."""

from tests.planted.common import Planted

CHAPTER = "03-async-views"

_GET_ASYNC = '''async def get(self, request, name):
    try:
        item = await Item.objects.aget(name=name)
    except Item.DoesNotExist:
        return JsonResponse({"error": "no such item"}, status=404)
    return JsonResponse({"name": item.name, "price": str(item.price), "in_stock": item.in_stock})
'''

PLANTED: dict[str, list[Planted]] = {
    "partial-fan-out": [
        Planted("awaits each call before starting the next",
                "results = {}\n"
                "for name, url in urls.items():\n"
                "    try:\n"
                "        async with asyncio.timeout(timeout):\n"
                "            response = await client.get(url)\n"
                "            response.raise_for_status()\n"
                "            results[name] = response.json()\n"
                "    except (httpx.HTTPError, TimeoutError):\n"
                "        results[name] = None\n"
                "return results", "one after another"),
        Planted("gives the calls no deadline",
                "async def one(url):\n"
                "    response = await client.get(url)\n"
                "    response.raise_for_status()\n"
                "    return response.json()\n"
                "results = await asyncio.gather(*(one(url) for url in urls.values()), return_exceptions=True)\n"
                "return {name: None if isinstance(r, Exception) else r for name, r in zip(urls, results)}",
                "had no deadline"),
        Planted("uses a TaskGroup without handling the failure",
                "async def one(url):\n"
                "    async with asyncio.timeout(timeout):\n"
                "        response = await client.get(url)\n"
                "        response.raise_for_status()\n"
                "        return response.json()\n"
                "async with asyncio.TaskGroup() as tg:\n"
                "    tasks = {name: tg.create_task(one(url)) for name, url in urls.items()}\n"
                "return {name: task.result() for name, task in tasks.items()}", "TaskGroup"),
        Planted("uses gather without return_exceptions",
                "async def one(url):\n"
                "    async with asyncio.timeout(timeout):\n"
                "        response = await client.get(url)\n"
                "        response.raise_for_status()\n"
                "        return response.json()\n"
                "results = await asyncio.gather(*(one(url) for url in urls.values()))\n"
                "return dict(zip(urls, results))", "return_exceptions=True"),
        Planted("forgets to await asyncio.gather",
                "async def one(url):\n"
                "    try:\n"
                "        async with asyncio.timeout(timeout):\n"
                "            response = await client.get(url)\n"
                "            response.raise_for_status()\n"
                "            return response.json()\n"
                "    except (httpx.HTTPError, TimeoutError):\n"
                "        return None\n"
                "results = asyncio.gather(*(one(url) for url in urls.values()))\n"
                "return dict(zip(urls, results))", "missing `await`"),
    ],
    "async-class-view": [
        Planted("mixes a sync post with an async get",
                _GET_ASYNC + "\n"
                "def post(self, request, name):\n"
                "    data = json.loads(request.body)\n"
                "    Item.objects.filter(name=name).update(in_stock=bool(data['in_stock']))\n"
                "    item = Item.objects.get(name=name)\n"
                "    return JsonResponse({'name': item.name, 'price': str(item.price), 'in_stock': item.in_stock})",
                "all sync or all async"),
        Planted("writes sync handlers",
                "def get(self, request, name):\n"
                "    try:\n"
                "        item = Item.objects.get(name=name)\n"
                "    except Item.DoesNotExist:\n"
                "        return JsonResponse({'error': 'no such item'}, status=404)\n"
                "    return JsonResponse({'name': item.name, 'price': str(item.price), 'in_stock': item.in_stock})\n"
                "\n"
                "def post(self, request, name):\n"
                "    data = json.loads(request.body)\n"
                "    Item.objects.filter(name=name).update(in_stock=bool(data['in_stock']))\n"
                "    return self.get(request, name)", "handlers are sync"),
        Planted("calls the sync ORM in async handlers",
                "async def get(self, request, name):\n"
                "    try:\n"
                "        item = Item.objects.get(name=name)\n"
                "    except Item.DoesNotExist:\n"
                "        return JsonResponse({'error': 'no such item'}, status=404)\n"
                "    return JsonResponse({'name': item.name, 'price': str(item.price), 'in_stock': item.in_stock})\n"
                "\n"
                "async def post(self, request, name):\n"
                "    data = json.loads(request.body)\n"
                "    await Item.objects.filter(name=name).aupdate(in_stock=bool(data['in_stock']))\n"
                "    return await self.get(request, name)", "event loop's thread"),
        Planted("forgets to await aget",
                "async def get(self, request, name):\n"
                "    try:\n"
                "        item = Item.objects.aget(name=name)\n"
                "    except Item.DoesNotExist:\n"
                "        return JsonResponse({'error': 'no such item'}, status=404)\n"
                "    return JsonResponse({'name': item.name, 'price': str(item.price), 'in_stock': item.in_stock})\n"
                "\n"
                "async def post(self, request, name):\n"
                "    data = json.loads(request.body)\n"
                "    await Item.objects.filter(name=name).aupdate(in_stock=bool(data['in_stock']))\n"
                "    return await self.get(request, name)", "missing `await`"),
    ],
    "sse-stream": [
        Planted("streams a sync generator that sleeps",
                "import time\n"
                "def events():\n"
                "    for left in range(n - 1, -1, -1):\n"
                "        yield f'data: {json.dumps({\"left\": left})}\\n\\n'\n"
                "        time.sleep(every)\n"
                "return StreamingHttpResponse(events(), content_type='text/event-stream')", "sync iterator"),
        Planted("time.sleep inside the async generator",
                "import time\n"
                "async def events():\n"
                "    for left in range(n - 1, -1, -1):\n"
                "        yield f'data: {json.dumps({\"left\": left})}\\n\\n'\n"
                "        time.sleep(every)\n"
                "return StreamingHttpResponse(events(), content_type='text/event-stream')",
                "event loop was blocked"),
        Planted("returns all events in one response",
                "from django.http import HttpResponse\n"
                "events = [f'data: {json.dumps({\"left\": left})}\\n\\n' for left in range(n - 1, -1, -1)]\n"
                "return HttpResponse(''.join(events), content_type='text/event-stream')", "not streamed"),
        Planted("forgets to await asyncio.sleep",
                "async def events():\n"
                "    for left in range(n - 1, -1, -1):\n"
                "        yield f'data: {json.dumps({\"left\": left})}\\n\\n'\n"
                "        asyncio.sleep(every)\n"
                "return StreamingHttpResponse(events(), content_type='text/event-stream')", "never awaited"),
    ],
}
