"""Planted answers for chapter 03, async views."""

from tests.planted.common import Acceptable, Planted

CHAPTER = "03-async-views"


def _fan_out(one_body: str, then: str = "results = await asyncio.gather(*(one(url) for url in urls.values()))\n"
                                          "return dict(zip(urls, results))") -> str:
    """A fetch_parts built from a helper `one(url)` (its body given) and what is done with it."""
    return "async def one(url):\n" + "".join(f"    {line}\n" for line in one_body.splitlines()) + then


_GUARDED = ("try:\n"
            "    async with asyncio.timeout(timeout):\n"
            "        response = await client.get(url)\n"
            "        response.raise_for_status()\n"
            "        return response.json()\n"
            "except (httpx.HTTPError, TimeoutError):\n"
            "    return None")

_GET = '''async def get(self, request, name):
    try:
        item = await Item.objects.aget(name=name)
    except Item.DoesNotExist:
        return JsonResponse({"error": "no such item"}, status=404)
    return JsonResponse({"name": item.name, "price": str(item.price), "in_stock": item.in_stock})
'''

_READ_BODY = '''try:
        data = json.loads(request.body)
    except ValueError:
        return JsonResponse({"error": "not JSON"}, status=400)
    if not isinstance(data, dict) or not isinstance(data.get("in_stock"), bool):
        return JsonResponse({"error": "in_stock must be true or false"}, status=400)
'''


def _post(update: str = 'await Item.objects.filter(name=name).aupdate(in_stock=data["in_stock"])',
          read: str = _READ_BODY) -> str:
    """A POST handler: the body read (and checked) by `read`, then `update`, then the GET's answer."""
    return ("\nasync def post(self, request, name):\n    " + read + f"    count = {update}\n"
            "    if count == 0:\n        return JsonResponse({'error': 'no such item'}, status=404)\n"
            "    return await self.get(request, name)\n")


def _countdown(event: str = "f'data: {json.dumps({\"left\": left})}\\n\\n'", counting: str = "range(n - 1, -1, -1)",
               wait: str = "await asyncio.sleep(every)", content_type: str = ", content_type='text/event-stream'",
               head: str = "async def events():") -> str:
    return (f"{head}\n"
            f"    for left in {counting}:\n"
            f"        yield {event}\n"
            f"        if left:\n"
            f"            {wait}\n"
            f"return StreamingHttpResponse(events(){content_type})")


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
                _fan_out("response = await client.get(url)\nresponse.raise_for_status()\nreturn response.json()",
                         "results = await asyncio.gather(*(one(url) for url in urls.values()), "
                         "return_exceptions=True)\n"
                         "return {name: None if isinstance(r, Exception) else r for name, r in zip(urls, results)}"),
                "needs a deadline of `timeout` seconds"),
        Planted("uses a TaskGroup without handling the failure",
                _fan_out("async with asyncio.timeout(timeout):\n"
                         "    response = await client.get(url)\n"
                         "    response.raise_for_status()\n"
                         "    return response.json()",
                         "async with asyncio.TaskGroup() as tg:\n"
                         "    tasks = {name: tg.create_task(one(url)) for name, url in urls.items()}\n"
                         "return {name: task.result() for name, task in tasks.items()}"), "TaskGroup"),
        Planted("uses gather without return_exceptions",
                _fan_out("async with asyncio.timeout(timeout):\n"
                         "    response = await client.get(url)\n"
                         "    response.raise_for_status()\n"
                         "    return response.json()"), "return_exceptions=True"),
        Planted("forgets to await asyncio.gather",
                _fan_out(_GUARDED, "results = asyncio.gather(*(one(url) for url in urls.values()))\n"
                                   "return dict(zip(urls, results))"), "missing `await`"),
        Planted("makes sync calls through sync_to_async inside gather",
                "from asgiref.sync import sync_to_async\n"
                "def get_json(url):\n"
                "    with httpx.Client(timeout=timeout) as sync_client:\n"
                "        response = sync_client.get(url)\n"
                "        response.raise_for_status()\n"
                "        return response.json()\n"
                + _fan_out("try:\n    return await sync_to_async(get_json)(url)\n"
                           "except (httpx.HTTPError, TimeoutError):\n    return None"),
                "one shared thread"),
        Planted("leaves the calls that miss the deadline running",
                _fan_out("try:\n    response = await client.get(url)\n    response.raise_for_status()\n"
                         "    return response.json()\nexcept httpx.HTTPError:\n    return None",
                         "tasks = {name: asyncio.ensure_future(one(url)) for name, url in urls.items()}\n"
                         "if not tasks:\n"
                         "    return {}\n"
                         "done, _ = await asyncio.wait(tasks.values(), timeout=timeout)\n"
                         "return {name: task.result() if task in done else None for name, task in tasks.items()}"),
                "still running after fetch_parts had returned"),
        Planted("hands asyncio.wait an empty set when there are no URLs",
                _fan_out(_GUARDED, "tasks = {name: asyncio.create_task(one(url)) for name, url in urls.items()}\n"
                                   "await asyncio.wait(tasks.values())\n"
                                   "return {name: task.result() for name, task in tasks.items()}"),
                "with no URLs", "condition"),
        Planted("counts only 503 as a failure",
                _fan_out("try:\n"
                         "    async with asyncio.timeout(timeout):\n"
                         "        response = await client.get(url)\n"
                         "        if response.status_code == 503:\n"
                         "            return None\n"
                         "        return response.json()\n"
                         "except (httpx.HTTPError, TimeoutError):\n"
                         "    return None"), "answered HTTP 404, an error status", "condition"),
        Planted("keeps the body of a call that answered an error status",
                _fan_out("try:\n"
                         "    async with asyncio.timeout(timeout):\n"
                         "        return (await client.get(url)).json()\n"
                         "except (httpx.HTTPError, TimeoutError):\n"
                         "    return None"), "answered HTTP 503, an error status", "result"),
        Planted("gives every call the lesson's fixed deadline of one second",
                _fan_out(_GUARDED.replace("asyncio.timeout(timeout)", "asyncio.timeout(1.0)")),
                "before its deadline", "condition"),
        Planted("adds a second of grace to the deadline",
                _fan_out(_GUARDED.replace("asyncio.timeout(timeout)", "asyncio.timeout(timeout + 1)")),
                "past its", "condition"),
        Planted("puts one deadline around the whole gather",
                _fan_out("response = await client.get(url)\nresponse.raise_for_status()\nreturn response.json()",
                         "try:\n"
                         "    async with asyncio.timeout(timeout):\n"
                         "        results = await asyncio.gather(*(one(url) for url in urls.values()), "
                         "return_exceptions=True)\n"
                         "except TimeoutError:\n"
                         "    return dict.fromkeys(urls)\n"
                         "return {name: None if isinstance(r, Exception) else r for name, r in zip(urls, results)}"),
                "inside its", "condition"),
        Planted("returns the responses, not their JSON bodies",
                _fan_out(_GUARDED.replace("return response.json()", "return response")), "httpx Response",
                "result"),
        Planted("keys the results by URL instead of by name",
                _fan_out(_GUARDED, "results = await asyncio.gather(*(one(url) for url in urls.values()))\n"
                                   "return dict(zip(urls.values(), results))"), "keys are the URLs", "result"),
    ],
    "async-class-view": [
        Planted("mixes a sync post with an async get",
                _GET + "\n"
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
                + _post(), "event loop's thread"),
        Planted("forgets to await aget",
                _GET.replace("await Item.objects.aget", "Item.objects.aget") + _post(), "missing `await`"),
        Planted("forgets to await aupdate",
                _GET + _post(update='Item.objects.filter(name=name).aupdate(in_stock=data["in_stock"])'),
                "never awaited"),
        Planted("answers JSON text in an HttpResponse",
                _GET.replace("    return JsonResponse({\"name\"",
                             "    from django.http import HttpResponse\n"
                             "    return HttpResponse(json.dumps({\"name\"").replace("item.in_stock})",
                                                                                   "item.in_stock}))")
                + _post(), "Content-Type 'text/html'", "protocol"),
        Planted("answers the price as a number",
                _GET.replace("str(item.price)", "float(item.price)") + _post(), "expected the string", "result"),
        Planted("sets in_stock to false whatever the body says",
                _GET + _post(update="await Item.objects.filter(name=name).aupdate(in_stock=False)"),
                "the value the body sends", "condition"),
        Planted("crashes on a body that is not JSON",
                _GET + _post(read="data = json.loads(request.body)\n",
                             update='await Item.objects.filter(name=name).aupdate(in_stock=bool(data["in_stock"]))'),
                "must get HTTP 400", "condition"),
        Planted("turns the string \"true\" into True with bool()",
                _GET + _post(read=_READ_BODY.replace(' or not isinstance(data.get("in_stock"), bool)',
                                                     ' or "in_stock" not in data'),
                             update='await Item.objects.filter(name=name).aupdate(in_stock=bool(data["in_stock"]))'),
                "a string, not a boolean", "condition"),
        Planted("answers HTTP 200 with an error object for a missing item",
                _GET.replace(', status=404)', ')') + _post(), "must get HTTP 404", "result"),
        Planted("updates every item, not only the one named",
                _GET + _post(update='await Item.objects.aupdate(in_stock=data["in_stock"])'), "other item",
                "condition"),
        Planted("keeps the items it read in a dict on the class",
                "cache = {}\n\n"
                + _GET.replace("        item = await Item.objects.aget(name=name)\n",
                               "        item = self.cache.get(name) or await Item.objects.aget(name=name)\n"
                               "        self.cache[name] = item\n") + _post(),
                "as it is after the update", "concurrency"),
    ],
    "sse-stream": [
        Planted("streams a sync generator that sleeps",
                _countdown(head="import time\ndef events():", wait="time.sleep(every)"), "sync iterator"),
        Planted("time.sleep inside the async generator",
                "import time\n" + _countdown(wait="time.sleep(every)"), "event loop was blocked"),
        Planted("returns all events in one response",
                "from django.http import HttpResponse\n"
                "events = [f'data: {json.dumps({\"left\": left})}\\n\\n' for left in range(n - 1, -1, -1)]\n"
                "return HttpResponse(''.join(events), content_type='text/event-stream')", "not streamed"),
        Planted("forgets to await asyncio.sleep",
                _countdown(wait="asyncio.sleep(every)"), "never awaited"),
        Planted("makes every event first and streams them at the end",
                "made = []\n"
                "for left in range(n - 1, -1, -1):\n"
                "    made.append(f'data: {json.dumps({\"left\": left})}\\n\\n')\n"
                "    if left:\n"
                "        await asyncio.sleep(every)\n"
                "async def events():\n"
                "    for event in made:\n"
                "        yield event\n"
                "return StreamingHttpResponse(events(), content_type='text/event-stream')", "arrived together"),
        Planted("ends each event with a single line break",
                _countdown(event="f'data: {json.dumps({\"left\": left})}\\n'"), "blank line", "protocol"),
        Planted("puts the blank line before each event instead of after it",
                _countdown(event="f'\\ndata: {json.dumps({\"left\": left})}\\n'"), "never ended by a blank line",
                "protocol"),
        Planted("leaves out the content type",
                _countdown(content_type=""), "must be labelled 'text/event-stream'", "protocol"),
        Planted("sends the Python dict's text instead of JSON",
                _countdown(event="f'data: {dict(left=left)}\\n\\n'"), "not JSON", "result"),
        Planted("counts up instead of down",
                _countdown(counting="range(n)", wait="await asyncio.sleep(every)"), "wrong order", "result"),
        Planted("starts the countdown at n",
                _countdown(counting="range(n, -1, -1)"), "expected the", "result"),
        Planted("waits the stub's default (0.3 s) instead of `every`",
                _countdown(wait="await asyncio.sleep(0.3)"), "arrived only", "condition"),
    ],
}

ACCEPTABLE: dict[str, list[Acceptable]] = {
    "partial-fan-out": [
        Acceptable("a TaskGroup whose tasks each catch their own failure",
                   _fan_out(_GUARDED, "async with asyncio.TaskGroup() as group:\n"
                                      "    tasks = {name: group.create_task(one(url)) for name, url in urls.items()}\n"
                                      "return {name: task.result() for name, task in tasks.items()}")),
        Acceptable("httpx's own timeout= for each call instead of asyncio.timeout",
                   _fan_out("try:\n"
                            "    response = await client.get(url, timeout=timeout)\n"
                            "    response.raise_for_status()\n"
                            "except httpx.HTTPError:\n"
                            "    return None\n"
                            "return response.json()")),
        Acceptable("asyncio.wait_for for each call, keyword arguments and a comprehension",
                   _fan_out("try:\n"
                            "    response = await asyncio.wait_for(client.get(url=url), timeout=timeout)\n"
                            "    return response.raise_for_status().json()\n"
                            "except (httpx.HTTPError, TimeoutError):\n"
                            "    return None",
                            "names = list(urls)\n"
                            "bodies = await asyncio.gather(*[one(url=urls[name]) for name in names])\n"
                            "return {name: body for name, body in zip(names, bodies)}")),
        Acceptable("asyncio.wait with a timeout, cancelling what is still pending",
                   _fan_out("try:\n    response = await client.get(url)\n    response.raise_for_status()\n"
                            "    return response.json()\nexcept httpx.HTTPError:\n    return None",
                            "tasks = {name: asyncio.create_task(one(url)) for name, url in urls.items()}\n"
                            "if not tasks:\n"
                            "    return {}\n"
                            "done, pending = await asyncio.wait(tasks.values(), timeout=timeout)\n"
                            "for task in pending:\n"
                            "    task.cancel()\n"
                            "return {name: task.result() if task in done else None for name, task in tasks.items()}")),
    ],
    "async-class-view": [
        Acceptable("aget_object_or_404, asave and HttpResponseBadRequest",
                   "async def get(self, request, name):\n"
                   "    from django.shortcuts import aget_object_or_404\n"
                   "    item = await aget_object_or_404(Item, name=name)\n"
                   "    return JsonResponse({'in_stock': item.in_stock, 'name': item.name,\n"
                   "                         'price': f'{item.price:.2f}'})\n"
                   "\n"
                   "async def post(self, request, name):\n"
                   "    from django.http import HttpResponseBadRequest\n"
                   "    from django.shortcuts import aget_object_or_404\n"
                   "    item = await aget_object_or_404(Item, name=name)\n"
                   "    try:\n"
                   "        in_stock = json.loads(request.body)['in_stock']\n"
                   "    except (ValueError, KeyError, TypeError):\n"
                   "        in_stock = None\n"
                   "    if not isinstance(in_stock, bool):\n"
                   "        return HttpResponseBadRequest('send {\"in_stock\": true or false}')\n"
                   "    item.in_stock = in_stock\n"
                   "    await item.asave(update_fields=['in_stock'])\n"
                   "    return await self.get(request, name)"),
        Acceptable("Http404 and BadRequest raised, the answer built by a helper",
                   "@staticmethod\n"
                   "def as_json(item):\n"
                   "    return JsonResponse(dict(name=item.name, price=str(item.price), in_stock=item.in_stock))\n"
                   "\n"
                   "async def get(self, request, name):\n"
                   "    from django.http import Http404\n"
                   "    item = await Item.objects.filter(name=name).afirst()\n"
                   "    if item is None:\n"
                   "        raise Http404(name)\n"
                   "    return self.as_json(item)\n"
                   "\n"
                   "async def post(self, request, name):\n"
                   "    from django.core.exceptions import BadRequest\n"
                   "    from django.http import Http404\n"
                   "    try:\n"
                   "        data = json.loads(request.body.decode())\n"
                   "    except ValueError:\n"
                   "        raise BadRequest('not JSON') from None\n"
                   "    if type(data) is not dict or type(data.get('in_stock')) is not bool:\n"
                   "        raise BadRequest('in_stock must be true or false')\n"
                   "    item = await Item.objects.filter(name=name).afirst()\n"
                   "    if item is None:\n"
                   "        raise Http404(name)\n"
                   "    await Item.objects.filter(pk=item.pk).aupdate(in_stock=data['in_stock'])\n"
                   "    await item.arefresh_from_db()\n"
                   "    return self.as_json(item)"),
    ],
    "sse-stream": [
        Acceptable("CRLF line breaks, no space after `data:`, bytes",
                   _countdown(event="f'data:{json.dumps({\"left\": left})}\\r\\n\\r\\n'.encode()")),
        Acceptable("a comment first, an id field, the wait before every event but the first",
                   "async def events():\n"
                   "    yield ': countdown\\n\\n'\n"
                   "    for k, left in enumerate(reversed(range(n))):\n"
                   "        if k:\n"
                   "            await asyncio.sleep(every)\n"
                   "        yield f'id: {k}\\nevent: message\\ndata: {json.dumps(dict(left=left))}\\n\\n'\n"
                   "response = StreamingHttpResponse(events(), content_type='text/event-stream; charset=utf-8')\n"
                   "response['Cache-Control'] = 'no-cache'\n"
                   "return response"),
    ],
}
