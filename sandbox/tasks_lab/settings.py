"""Chapter 07's settings: the sandbox's server settings plus what background tasks need.

This is what a real project would add to its settings.py. The workers of chapter 07 start with it as their
DJANGO_SETTINGS_MODULE; the notebook's kernel, which booted with the shared sandbox settings, gets the same
additions from `lab.apply_chapter_settings("sandbox.tasks_lab.settings")`. The shared settings stay without
them, so that every other chapter boots without importing three task apps and running their 40 migrations (about
0.8 s of CPU more per boot, which would double it).
"""

from __future__ import annotations

import logging
import os

from sandbox.settings_server import *  # noqa: F403
from sandbox.settings_server import DATA_DIR, INSTALLED_APPS

# The apps that bring models (tables) or management commands: django-tasks-db's task table and `db_worker`,
# Django-Q2's tables and `qcluster`, Huey's `run_huey`.
INSTALLED_APPS = [*INSTALLED_APPS, "django_tasks_db", "django_q", "huey.contrib.djhuey"]

# django.tasks: "default" stays Django's ImmediateBackend (runs a task inline, inside enqueue). The others
# are picked per call with `task.using(backend=...)`.
TASKS = {
    "default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"},
    "dummy": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"},  # stores tasks, never runs them
    "db": {"BACKEND": "django_tasks_db.DatabaseBackend"},  # a table in our SQLite database; `db_worker` runs them
    "huey": {"BACKEND": "huey.contrib.djhuey.tasks_backend.HueyBackend"},  # Huey's queue; `run_huey` runs them
}

# Huey keeps its queue in a SQLite file of its own, next to the notebook's database: no server to run.
HUEY = {
    "huey_class": "huey.SqliteHuey",
    "name": "sandbox",
    "filename": str(DATA_DIR / "huey.sqlite3"),
    "immediate": False,  # djhuey's default is settings.DEBUG: with DEBUG on, tasks would run inline, in memory
    "results": True,
    "store_intermediate_errors": False,  # a retried task's result is its last attempt's, not its first error
    # The consumer polls its SQLite queue. By default it waits 0.1 s, then backs off (x1.15) up to 10 s while
    # the queue stays empty, so an idle consumer can take seconds to notice a task: poll every 0.1 s instead.
    "consumer": {"workers": 2, "worker_type": "thread", "initial_delay": 0.1, "backoff": 1, "max_delay": 0.1},
}

# Django-Q2 with the ORM broker: its queue is a table in the default database.
Q_CLUSTER = {
    "name": "sandbox",
    "orm": "default",
    "workers": 2,
    "timeout": 1,  # seconds a task may run (ours take milliseconds)
    "retry": 2,  # seconds before an unacknowledged task (one that failed, or whose worker died) is handed out again
    "poll": 0.05,  # seconds between the ORM broker's polls when the queue is empty (default 0.2)
    "catch_up": False,
    "max_attempts": 2,  # hand a failing task out twice at most (0 means: forever)
    "log_level": "INFO",  # its own "django-q" logger: "Q Cluster ... running." tells the notebook it is ready
}

# Celery reads every CELERY_* setting (the namespace set in sandbox/tasks_lab/celery_app.py). The broker is
# the private Redis a notebook starts; the notebook passes its URL to the worker in SANDBOX_CELERY_URL.
CELERY_BROKER_URL = os.environ.get("SANDBOX_CELERY_URL", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = CELERY_BROKER_URL
CELERY_TASK_ALWAYS_EAGER = False
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # keep Django's logging configuration
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# What `lab.apply_chapter_settings` lays over a kernel's settings (with INSTALLED_APPS, last), and the loggers it
# quietens there: ImmediateBackend logs every failed task with its traceback (the lesson reads `result.errors`
# instead), and Django-Q2 logs every enqueue. The workers' own logs keep everything.
KERNEL_OVERLAY = ("TASKS", "HUEY", "Q_CLUSTER", *(name for name in list(globals()) if name.startswith("CELERY_")))
KERNEL_QUIET = {"django.tasks": logging.CRITICAL, "django-q": logging.WARNING}
