"""Views of chapter 07, under /tasks/: background work started from a request."""

from __future__ import annotations

import asyncio
import os
import time

from django.http import JsonResponse

from sandbox.tasks_lab.models import Event
from sandbox.tasks_lab.work import process_name


async def _record_later(label: str, seconds: float) -> None:
    await asyncio.sleep(seconds)  # stands for slow work: an email, a call to another service
    await Event.objects.acreate(label=label, source=process_name(), pid=os.getpid(), at=time.time())


async def fire_and_forget(request):
    """A mistake on purpose: work scheduled on the server's event loop, with no queue behind it.

    The response goes out at once; the work runs later, in this process, if this process is still alive,
    and nothing keeps a reference to the task.
    """
    label = request.GET.get("label", "fire-and-forget")
    seconds = float(request.GET.get("s", "1"))
    asyncio.create_task(_record_later(label, seconds))  # no reference kept, no queue: the mistake
    return JsonResponse({"scheduled": label, "runs in": f"{seconds} s", "pid": os.getpid()})
