"""Planted answers for chapter 07, background tasks."""

from tests.planted.common import Acceptable, Planted

CHAPTER = "07-background-tasks"

# exercise 'wait-or-ticket': the solution, and each planted answer as one change to it
_TICKET = """\
if "task" in request.GET:
    try:
        result = await worker_count.aget_result(request.GET["task"])
    except TaskResultDoesNotExist:
        return JsonResponse({"error": "no such task"}, status=404)
    succeeded = result.status == TaskResultStatus.SUCCESSFUL
    return JsonResponse({"status": result.status, "words": result.return_value if succeeded else None})
result = await worker_count.aenqueue(request.GET.get("text", ""))
try:
    async with asyncio.timeout(float(request.GET.get("wait", 0))):
        while result.status != TaskResultStatus.SUCCESSFUL:
            await asyncio.sleep(0.05)
            await result.arefresh()
except TimeoutError:
    return JsonResponse({"task": result.id}, status=202)
return JsonResponse({"words": result.return_value})"""


def _ticket(old: str, new: str) -> str:
    assert old in _TICKET, old
    return _TICKET.replace(old, new)


PLANTED: dict[str, list[Planted]] = {
    "enqueue-from-async": [
        Planted("enqueues with the sync API from async code (ImmediateBackend runs it on the loop's thread)",
                "result = confirm_order.enqueue(order.pk)", "sync `enqueue()` from async code"),
        Planted("forgets to await aenqueue",
                "result = confirm_order.aenqueue(order.pk)", "never awaited"),
        Planted("runs the task inline instead of enqueueing it",
                "await confirm_order.acall(order.pk)\nresult = await tasks.add.aenqueue(1, 2)", "never enqueued"),
        Planted("enqueues on the dummy backend, which stores the task and never runs it",
                "result = await confirm_order.using(backend='dummy').aenqueue(order.pk)",
                "on the 'dummy' backend", "result"),
        Planted("enqueues for the order of the lesson's example instead of the one just saved",
                "result = await confirm_order.aenqueue(1)", "for the order this request saved", "result"),
        Planted("enqueues the task twice for one order",
                "await confirm_order.aenqueue(order.pk)\nresult = await confirm_order.aenqueue(order.pk)",
                "enqueued 2 times for one order", "result"),
        Planted("passes the Order itself instead of its id",
                "result = await confirm_order.aenqueue(order)", "stores a task's arguments as JSON", "result"),
    ],
    "importable-task": [
        Planted("enqueues the task defined in a notebook cell (__main__)",
                "return await word_count.using(backend=\"db\").aenqueue(text)", "`__main__", "condition"),
        Planted("enqueues on the default backend, which runs the task in the kernel",
                "return await tasks.count_words.aenqueue(text)", "not in the worker", "result"),
        Planted("enqueues with the sync API from async code (the database backend raises)",
                "return tasks.count_words.using(backend=\"db\").enqueue(text)", "sync `enqueue()` from async code"),
        Planted("forgets to await aenqueue",
                "return tasks.count_words.using(backend=\"db\").aenqueue(text)", "never awaited"),
        Planted("names the backend as a queue",
                "return await tasks.count_words.using(queue_name=\"db\").aenqueue(text)",
                "`queue_name` names a queue *inside* a backend", "result"),
        Planted("returns the result's id instead of the TaskResult",
                "result = await tasks.count_words.using(backend=\"db\").aenqueue(text)\nreturn result.id",
                "return the TaskResult itself", "result"),
        Planted("counts the lesson's example text instead of the one it is given",
                "return await tasks.count_words.using(backend=\"db\").aenqueue(\"a task that a worker can import\")",
                "count the words of the `text`", "result"),
        Planted("hands the worker the list of words instead of the text",
                "return await tasks.count_words.using(backend=\"db\").aenqueue(text.split())",
                "was the task given the text itself", "result"),
    ],
    "enqueue-on-commit": [
        Planted("enqueues inside the transaction, before the commit",
                "with transaction.atomic():\n"
                "    order = Order.objects.create(item=item)\n"
                "    queue.enqueue(order.pk)\n"
                "return order.pk", "before the order's row was", "condition"),
        Planted("passes the result of enqueue() to on_commit instead of a callable",
                "with transaction.atomic():\n"
                "    order = Order.objects.create(item=item)\n"
                "    transaction.on_commit(queue.enqueue(order.pk))\n"
                "return order.pk", "not a function"),
        Planted("enqueues after its own atomic block, while a caller's transaction may still be open",
                "with transaction.atomic():\n"
                "    order = Order.objects.create(item=item)\n"
                "queue.enqueue(order.pk)\n"
                "return order.pk", "caller's transaction was still open", "condition"),
        Planted("enqueues on commit, but on the default backend instead of `queue`",
                "with transaction.atomic():\n"
                "    order = Order.objects.create(item=item)\n"
                "    transaction.on_commit(lambda: confirm_order.enqueue(order.pk))\n"
                "return order.pk", "not to `queue`", "result"),
        Planted("enqueues the item instead of the order's id",
                "with transaction.atomic():\n"
                "    order = Order.objects.create(item=item)\n"
                "    transaction.on_commit(lambda: queue.enqueue(order.item))\n"
                "return order.pk", "not the id of the order just saved", "result"),
        Planted("returns the Order instead of its id",
                "with transaction.atomic():\n"
                "    order = Order.objects.create(item=item)\n"
                "    transaction.on_commit(lambda: queue.enqueue(order.pk))\n"
                "return order", "returned the Order itself", "result"),
        Planted("makes its block durable, which refuses to run inside a caller's transaction",
                "with transaction.atomic(durable=True):\n"
                "    order = Order.objects.create(item=item)\n"
                "    transaction.on_commit(lambda: queue.enqueue(order.pk))\n"
                "return order.pk", "A durable atomic block refuses to run inside another transaction", "condition"),
        Planted("swallows the error when the order cannot be saved",
                "try:\n"
                "    with transaction.atomic():\n"
                "        order = Order.objects.create(item=item)\n"
                "        transaction.on_commit(lambda: queue.enqueue(order.pk))\n"
                "except Exception:\n"
                "    return None\n"
                "return order.pk", "let the error reach your caller", "condition"),
    ],
    "keep-a-reference": [
        Planted("keeps no reference to the task",
                "return asyncio.create_task(coro)", "garbage-collected"),
        Planted("keeps every task forever",
                "task = asyncio.create_task(coro)\nbackground.add(task)\nreturn task", "memory leak"),
        Planted("returns the coroutine without starting it",
                "return coro", "coroutine itself"),
        Planted("a finished task empties the whole set",
                "task = asyncio.create_task(coro)\nbackground.add(task)\n"
                "task.add_done_callback(lambda done: background.clear())\nreturn task",
                "other task(s) still waiting were garbage-collected", "concurrency"),
        Planted("keeps only the newest task in the set",
                "task = asyncio.create_task(coro)\nbackground.clear()\nbackground.add(task)\n"
                "task.add_done_callback(background.discard)\nreturn task",
                "each task needs a reference of its own", "concurrency"),
        Planted("removes the task only when its coroutine returns, not when it raises or is cancelled",
                "async def run():\n"
                "    value = await coro\n"
                "    background.discard(task)\n"
                "    return value\n"
                "task = asyncio.create_task(run())\nbackground.add(task)\nreturn task",
                "however it ended", "condition"),
        Planted("wraps the coroutine and drops what it returns",
                "async def run():\n"
                "    await coro\n"
                "task = asyncio.create_task(run())\nbackground.add(task)\n"
                "task.add_done_callback(background.discard)\nreturn task",
                "not what its coroutine returned", "result"),
    ],
    "wait-or-ticket": [
        Planted("polls with time.sleep", "import time\n" + _ticket("await asyncio.sleep(0.05)", "time.sleep(0.5)"),
                "blocked"),
        Planted("refreshes with the sync refresh()", _ticket("await result.arefresh()", "result.refresh()"),
                "async twin"),
        Planted("forgets to await arefresh", _ticket("await result.arefresh()", "result.arefresh()"),
                "never awaited"),
        Planted("never waits: always a ticket",
                _ticket("try:\n    async with",
                        "return JsonResponse({'task': result.id}, status=202)\ntry:\n    async with"),
                "wait for the worker's answer", "condition"),
        Planted("ignores `wait`: waits until the worker is done",
                _ticket('asyncio.timeout(float(request.GET.get("wait", 0)))', "asyncio.timeout(30)"),
                "answer 202", "condition"),
        Planted("lets an unknown id raise",
                _ticket('    try:\n        result = await worker_count.aget_result(request.GET["task"])\n'
                        '    except TaskResultDoesNotExist:\n        return JsonResponse({"error": "no such task"}, '
                        'status=404)\n',
                        '    result = await worker_count.aget_result(request.GET["task"])\n'),
                "answer 404", "protocol"),
        Planted("reads the count before the task succeeded",
                _ticket('"words": result.return_value if succeeded else None', '"words": result.return_value'),
                "no value to give", "result"),
        Planted("names the ticket's key `id`", _ticket('JsonResponse({"task": result.id}, status=202)',
                                                        'JsonResponse({"id": result.id}, status=202)'),
                "a ticket is exactly", "protocol"),
        Planted("answers the status's label, not its value", _ticket('"status": result.status,',
                                                                      '"status": result.status.label,'),
                '"READY"', "result"),
    ],
}
ACCEPTABLE: dict[str, list[Acceptable]] = {
    "enqueue-from-async": [
        Acceptable("the order's id as a keyword argument", "result = await confirm_order.aenqueue(order_id=order.pk)"),
        Acceptable("the sync enqueue in a worker thread, with the default backend named",
                   "from asgiref.sync import sync_to_async\n"
                   "result = await sync_to_async(confirm_order.using(backend='default').enqueue)(order.id)"),
    ],
    "importable-task": [
        Acceptable("the text as a keyword argument, the backend chosen on the module's task",
                   "db_task = tasks.count_words.using(backend='db')\nreturn await db_task.aenqueue(text=text)"),
        Acceptable("waits for the worker's verdict before returning the result",
                   "result = await tasks.count_words.using(backend='db').aenqueue(text)\n"
                   "async with asyncio.timeout(15):\n"
                   "    while not result.is_finished:\n"
                   "        await asyncio.sleep(0.05)\n"
                   "        await result.arefresh()\n"
                   "return result"),
    ],
    "enqueue-on-commit": [
        Acceptable("a lambda with a keyword argument",
                   "with transaction.atomic():\n"
                   "    order = Order.objects.create(item=item)\n"
                   "    transaction.on_commit(lambda: queue.enqueue(order_id=order.pk))\n"
                   "return order.pk"),
        Acceptable("on_commit registered after the block (it still waits for the outermost commit)",
                   "with transaction.atomic():\n"
                   "    order = Order(item=item)\n"
                   "    order.save()\n"
                   "transaction.on_commit(partial(queue.enqueue, order.id), robust=True)\n"
                   "return order.id"),
    ],
    "keep-a-reference": [
        Acceptable("the loop's create_task, and set.remove",
                   "task = asyncio.get_running_loop().create_task(coro)\nbackground.add(task)\n"
                   "task.add_done_callback(background.remove)\nreturn task"),
        Acceptable("ensure_future, and a lambda that discards the task",
                   "task = asyncio.ensure_future(coro)\nbackground.add(task)\n"
                   "task.add_done_callback(lambda finished: background.discard(finished))\nreturn task"),
    ],
    "wait-or-ticket": [
        Acceptable("polls with aget_result and a deadline of wait_for",
                   _ticket("""try:
    async with asyncio.timeout(float(request.GET.get("wait", 0))):
        while result.status != TaskResultStatus.SUCCESSFUL:
            await asyncio.sleep(0.05)
            await result.arefresh()
except TimeoutError:""", """async def finished():
    current = result
    while current.status != TaskResultStatus.SUCCESSFUL:
        await asyncio.sleep(0.05)
        current = await worker_count.aget_result(result.id)
    return current
try:
    result = await asyncio.wait_for(finished(), float(request.GET.get("wait", 0)))
except TimeoutError:""")),
    ],
}
