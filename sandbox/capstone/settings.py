"""Settings of the auction's processes (chapter 09): daphne serves it, django-tasks-db's `db_worker` runs its tasks.

This is what a real project would add to its settings.py for the capstone. The kernel, which booted with the
shared sandbox settings, gets the same additions from `lab.apply_chapter_settings("sandbox.capstone.settings")`.
"""

from __future__ import annotations

import os

from sandbox.settings_server import *  # noqa: F403
from sandbox.settings_server import INSTALLED_APPS

# django-tasks-db brings the task table and the `db_worker` command.
INSTALLED_APPS = [*INSTALLED_APPS, "django_tasks_db"]

# Every task goes to the database by default; a worker process runs it.
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
KERNEL_OVERLAY = ("TASKS",)  # what `lab.apply_chapter_settings` lays over a kernel's settings, with INSTALLED_APPS

# Which package holds the live parts (views, consumers, tasks): the course's reference implementation, or the
# learner's own (`auction_live`, in the notebook's data directory, which the processes get on PYTHONPATH).
CAPSTONE_PACKAGE = os.environ.get("CAPSTONE_PACKAGE", "sandbox.capstone.reference")

# The channel layer comes from the shared settings: Redis when SANDBOX_REDIS_URL is set (the course always sets
# it for the auction: daphne and the worker are two processes), otherwise the in-memory layer, which cannot
# carry a message from one process to another.
ASGI_APPLICATION = "sandbox.capstone.asgi.application"
