"""Chapter 07's app: its settings reach the kernel and the workers alike, its tasks behave as the lesson says
(inline, quietly failing, rolled back, run by a real db_worker), and the fire-and-forget view loses its work
when its event loop goes away."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from functools import partial

import pytest

WORKER_ENV = {"DJANGO_SETTINGS_MODULE": "sandbox.tasks_lab.settings", "TASKS_LAB_PROCESS": "db_worker"}


CHAPTER_SETTINGS = "sandbox.tasks_lab.settings"  # what the `chapter` fixture lays over this process's settings


def test_the_shared_settings_stay_without_the_task_apps(lab):
    """Every chapter boots with sandbox.settings: the three task apps would add about 0.8 s to every boot."""
    from sandbox import settings as shared
    from sandbox.tasks_lab import settings as chapter_settings

    added = {"django_tasks_db", "django_q", "huey.contrib.djhuey"}
    assert not added & set(shared.INSTALLED_APPS)
    assert added <= set(chapter_settings.INSTALLED_APPS)
    assert not hasattr(shared, "TASKS"), "chapter 02 shows that the shared settings leave TASKS to Django"


def test_chapter_settings_are_consistent(lab):
    from sandbox.tasks_lab import settings as chapter_settings

    assert chapter_settings.Q_CLUSTER["retry"] > chapter_settings.Q_CLUSTER["timeout"]
    assert chapter_settings.HUEY["immediate"] is False
    assert chapter_settings.TASKS["default"]["BACKEND"].endswith("ImmediateBackend")


async def test_apply_gives_the_kernel_the_backends_and_tables(chapter):
    from django.apps import apps
    from django.conf import settings
    from django_tasks_db.models import DBTaskResult

    assert list(settings.TASKS) == ["default", "dummy", "db", "huey"]
    assert apps.is_installed("django_q") and apps.is_installed("django_tasks_db")
    assert await DBTaskResult.objects.acount() >= 0  # the table exists: migrated


async def test_immediate_backend_runs_inline_and_a_sync_enqueue_fails_quietly(chapter):
    from sandbox.tasks_lab import tasks

    good = await tasks.add.aenqueue(2, 3)
    quiet = tasks.log_event.enqueue("sync enqueue in a loop")  # on the event loop's thread
    assert good.status == "SUCCESSFUL" and good.return_value == 5
    assert quiet.status == "FAILED"
    assert quiet.errors[0].exception_class_path == "django.core.exceptions.SynchronousOnlyOperation"


async def test_the_database_backend_raises_on_a_sync_enqueue_in_a_loop(chapter):
    from django.core.exceptions import SynchronousOnlyOperation

    from sandbox.tasks_lab import tasks

    with pytest.raises(SynchronousOnlyOperation):
        tasks.add.using(backend="db").enqueue(1, 2)  # on the event loop's thread


def test_a_rolled_back_transaction_takes_its_database_task_with_it(chapter):
    from django.db import transaction
    from django_tasks_db.models import DBTaskResult

    from sandbox.tasks_lab import tasks
    from sandbox.tasks_lab.models import Order

    before = DBTaskResult.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        order = Order.objects.create(item="rolled back in a test")
        tasks.confirm_order.using(backend="db").enqueue(order.pk)
        raise RuntimeError("roll back")
    assert DBTaskResult.objects.count() == before


def _main_module_task(text: str) -> int:
    return len(text.split())


_main_module_task.__module__ = "__main__"  # as if defined in a notebook cell


@pytest.mark.slow  # a worker
def test_a_real_db_worker_runs_importable_tasks_and_cannot_import_main(chapter, lab, monkeypatch):
    from django.tasks import task
    from django_tasks_db.models import DBTaskResult

    from sandbox.lab.servers import child_env
    from sandbox.tasks_lab import tasks

    # In a kernel, __main__ is the notebook's namespace: this process can import the task, the worker cannot.
    cell_task = task(_main_module_task)
    monkeypatch.setattr(sys.modules["__main__"], "_main_module_task", cell_task, raising=False)
    good = tasks.count_words.using(backend="db").enqueue("three little words")
    stranded = cell_task.using(backend="db").enqueue("never counted")
    done = subprocess.run([sys.executable, "-m", "django", "db_worker", "--backend", "db", "--batch", "--no-reload",
                           "--no-startup-delay"], env=child_env(WORKER_ENV), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    good_row, stranded_row = DBTaskResult.objects.get(id=good.id), DBTaskResult.objects.get(id=stranded.id)
    assert (good_row.status, good_row.return_value) == ("SUCCESSFUL", 3)
    assert stranded_row.status == "FAILED" and stranded_row.exception_class_path == "builtins.ImportError"
    assert stranded_row.task_path == "__main__._main_module_task"


def test_fire_and_forget_work_runs_only_while_the_loop_lives(chapter, lab, run):
    from sandbox.tasks_lab.models import Event

    async def kept():
        async with lab.client() as c:
            start = time.perf_counter()
            response = await c.get("/tasks/fire-and-forget/?label=test-kept&s=0.05")
            answered = time.perf_counter() - start
        await asyncio.sleep(0.5)  # the loop lives on: the task gets to run
        return response, answered

    async def lost():
        async with lab.client() as c:
            return await c.get("/tasks/fire-and-forget/?label=test-lost&s=5")  # the loop ends right after

    response, answered = run(kept())
    assert response.status_code == 200 and answered < 2
    assert run(lost()).status_code == 200
    assert Event.objects.filter(label="test-kept").count() == 1
    assert Event.objects.filter(label="test-lost").count() == 0


def test_celery_eager_mode_runs_the_task_in_the_caller_without_a_broker(chapter):
    from sandbox.tasks_lab import celery_app, celery_tasks

    celery_app.app.conf.task_always_eager = True
    try:
        result = celery_tasks.async_task.delay()
        where = celery_tasks.whoami.delay().get()
    finally:
        celery_app.app.conf.task_always_eager = False
    assert result.get() == "Task Completed"
    assert where["process"] == "kernel"


async def test_timing_counts_every_task(chapter):
    from sandbox.lab.experiments import task_queues as measure

    timing = await measure.timing("immediate", partial(measure.django_tasks_one, "default"),
                                  partial(measure.django_tasks_many, "default"), n=10, rounds=2)
    assert timing.n == 10 and timing.latency >= 0 and timing.hundred >= 0
    assert "10 tasks in" in str(timing)
