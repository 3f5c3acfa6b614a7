"""Planted wrong answers for chapter 07, background tasks."""

from tests.planted.common import Planted

CHAPTER = "07-background-tasks"
PLANTED: dict[str, list[Planted]] = {
    "enqueue-from-async": [
        Planted("enqueues with the sync API from async code (ImmediateBackend runs it on the loop's thread)",
                "result = confirm_order.enqueue(order.pk)", "sync `enqueue()` from async code"),
        Planted("forgets to await aenqueue",
                "result = confirm_order.aenqueue(order.pk)", "never awaited"),
        Planted("runs the task inline instead of enqueueing it",
                "await confirm_order.acall(order.pk)\nresult = await tasks.add.aenqueue(1, 2)", "never enqueued"),
    ],
    "importable-task": [
        Planted("enqueues the task defined in a notebook cell (__main__)",
                "return await word_count.using(backend=\"db\").aenqueue(text)", "`__main__"),
        Planted("enqueues on the default backend, which runs the task in the kernel",
                "return await tasks.count_words.aenqueue(text)", "not in the worker"),
        Planted("enqueues with the sync API from async code (the database backend raises)",
                "return tasks.count_words.using(backend=\"db\").enqueue(text)", "sync `enqueue()` from async code"),
    ],
    "enqueue-on-commit": [
        Planted("enqueues inside the transaction, before the commit",
                "with transaction.atomic():\n"
                "    order = Order.objects.create(item=item)\n"
                "    queue.enqueue(order.pk)\n"
                "return order.pk", "before the order's row was"),
        Planted("passes the result of enqueue() to on_commit instead of a callable",
                "with transaction.atomic():\n"
                "    order = Order.objects.create(item=item)\n"
                "    transaction.on_commit(queue.enqueue(order.pk))\n"
                "return order.pk", "not a function"),
        Planted("enqueues after its own atomic block, while a caller's transaction may still be open",
                "with transaction.atomic():\n"
                "    order = Order.objects.create(item=item)\n"
                "queue.enqueue(order.pk)\n"
                "return order.pk", "caller's transaction was rolled back"),
    ],
    "keep-a-reference": [
        Planted("keeps no reference to the task",
                "return asyncio.create_task(coro)", "garbage-collected"),
        Planted("keeps every task forever",
                "task = asyncio.create_task(coro)\nbackground.add(task)\nreturn task", "memory leak"),
        Planted("returns the coroutine without starting it",
                "return coro", "coroutine itself"),
    ],
}
