"""A chapter's settings laid over a kernel that booted with the shared sandbox settings.

Chapters 07 and 09 serve their apps from processes started with their own settings module
(`sandbox.tasks_lab.settings`, `sandbox.capstone.settings`). `await lab.apply_chapter_settings(module)` gives the
kernel the same additions with Django's `override_settings`, the tool Django's own tests use to change settings in
a running process, then migrates the added apps into the notebook's database, which the processes share. So a task
enqueued from a cell lands in the table the worker reads.

A chapter settings module names what it adds: `KERNEL_OVERLAY` (setting names, laid first), its `INSTALLED_APPS`
(laid last: Huey and Django-Q2 read their settings when their app is imported), and optionally `KERNEL_QUIET`
({logger: level} for loggers that would flood a notebook).
"""

from __future__ import annotations

import asyncio
import importlib
import logging

from sandbox.lab.boot import migrate

_applied: dict[str, list] = {}  # module -> the overrides enabled for it, in order
_levels: dict[str, int] = {}  # logger -> its level before a chapter quietened it


def added_apps(module: str) -> list[str]:
    """The apps a chapter settings module adds to the shared settings."""
    from sandbox import settings as shared

    chapter = importlib.import_module(module)
    return [app for app in chapter.INSTALLED_APPS if app not in shared.INSTALLED_APPS]


async def apply_chapter_settings(module: str, *, quiet: bool = False) -> None:
    """Idempotent: `module`'s additions in this kernel's settings, and the added apps migrated."""
    from django.conf import settings
    from django.test import override_settings

    chapter = importlib.import_module(module)
    if module not in _applied:
        changes = [override_settings(**{name: getattr(chapter, name) for name in chapter.KERNEL_OVERLAY}),
                   override_settings(INSTALLED_APPS=chapter.INSTALLED_APPS)]
        for change in changes:
            change.enable()
        _applied[module] = changes
        await asyncio.to_thread(migrate)
        for name, level in getattr(chapter, "KERNEL_QUIET", {}).items():
            _levels.setdefault(name, logging.getLogger(name).level)
            logging.getLogger(name).setLevel(level)
    if not quiet:
        backends = {alias: conf["BACKEND"] for alias, conf in settings.TASKS.items()}
        print(f"{module} applied to this kernel: apps added {added_apps(module)}, task backends {backends}")


def revert_chapter_settings() -> None:
    """Undo every `apply_chapter_settings` (the tests use it; a notebook keeps the settings until its kernel ends)."""
    for module in reversed(list(_applied)):
        for change in reversed(_applied.pop(module)):
            change.disable()
    for name, level in _levels.items():
        logging.getLogger(name).setLevel(level)
    _levels.clear()
