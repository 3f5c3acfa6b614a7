"""Give a kernel that booted with the shared sandbox settings what the auction's processes have.

`await apply()` lays the additions of `sandbox.capstone.settings` (django-tasks-db, TASKS) over the kernel's
settings with Django's `override_settings`, and migrates django-tasks-db's table into the notebook's database,
which daphne and the worker share. So a task enqueued from a cell lands in the table the worker reads.
"""

from __future__ import annotations

import asyncio

_applied: list = []


def _migrate() -> None:
    from django.core.management import call_command
    from django.db import connections

    try:
        call_command("migrate", verbosity=0, interactive=False)
    finally:
        connections.close_all()


def added_apps() -> list[str]:
    from sandbox import settings as shared
    from sandbox.capstone import settings as capstone

    return [app for app in capstone.INSTALLED_APPS if app not in shared.INSTALLED_APPS]


async def apply(*, quiet: bool = False) -> None:
    """Idempotent: the chapter's settings in this kernel, and django-tasks-db's table migrated."""
    from django.conf import settings
    from django.test import override_settings

    from sandbox.capstone import settings as capstone

    if not _applied:
        for change in (override_settings(TASKS=capstone.TASKS),
                       override_settings(INSTALLED_APPS=capstone.INSTALLED_APPS)):
            change.enable()
            _applied.append(change)
        await asyncio.to_thread(_migrate)
    if not quiet:
        print(f"chapter 09 settings applied to this kernel: apps added {added_apps()}, "
              f"tasks go to {settings.TASKS['default']['BACKEND']}")


def revert() -> None:
    """Undo `apply()` (the tests use it; a notebook keeps the settings until its kernel ends)."""
    while _applied:
        _applied.pop().disable()
