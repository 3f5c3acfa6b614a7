"""Give a kernel that booted with the shared sandbox settings the settings of chapter 07.

`await apply()` layers `sandbox.tasks_lab.settings` (the task apps, TASKS, HUEY, Q_CLUSTER, CELERY_*) over
the kernel's settings with Django's `override_settings`, the tool Django's own tests use to change settings
in a running process, then migrates the new apps. The workers start with the same module as their
DJANGO_SETTINGS_MODULE, so the kernel and the workers agree.
"""

from __future__ import annotations

import asyncio
import logging

# Quiet in the kernel: ImmediateBackend logs every failed task with its traceback (the lesson reads
# `result.errors` instead), and Django-Q2 logs every enqueue. The workers' own logs keep everything.
QUIET = {"django.tasks": logging.CRITICAL, "django-q": logging.WARNING}

_applied: list = []
_levels: dict[str, int] = {}


def _migrate() -> None:
    from django.core.management import call_command
    from django.db import connections

    try:
        call_command("migrate", verbosity=0, interactive=False)
    finally:
        connections.close_all()


def chapter_settings() -> dict:
    """The settings chapter 07 adds, by name, from `sandbox.tasks_lab.settings`."""
    from sandbox.tasks_lab import settings as chapter

    names = ["TASKS", "HUEY", "Q_CLUSTER", *[n for n in vars(chapter) if n.startswith("CELERY_")]]
    return {name: getattr(chapter, name) for name in names}


def added_apps() -> list[str]:
    from sandbox import settings as shared
    from sandbox.tasks_lab import settings as chapter

    return [app for app in chapter.INSTALLED_APPS if app not in shared.INSTALLED_APPS]


async def apply(*, quiet: bool = False) -> None:
    """Idempotent. The apps come last: Huey and Django-Q2 read their settings when their app is imported."""
    from django.conf import settings
    from django.test import override_settings

    from sandbox.tasks_lab import settings as chapter

    if not _applied:
        values = override_settings(**chapter_settings())
        values.enable()
        _applied.append(values)
        apps = override_settings(INSTALLED_APPS=chapter.INSTALLED_APPS)
        apps.enable()
        _applied.append(apps)
        await asyncio.to_thread(_migrate)
        for name, level in QUIET.items():
            _levels[name] = logging.getLogger(name).level
            logging.getLogger(name).setLevel(level)
    if not quiet:
        print(f"chapter 07 settings applied to this kernel: apps added {added_apps()}, "
              f"task backends {list(settings.TASKS)}")


def revert() -> None:
    """Undo `apply()` (the tests use it; a notebook keeps the settings until its kernel ends)."""
    while _applied:
        _applied.pop().disable()
    for name, level in _levels.items():
        logging.getLogger(name).setLevel(level)
    _levels.clear()
