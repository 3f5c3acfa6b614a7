"""Celery for chapter 07: the app a worker starts with `celery -A sandbox.tasks_lab.celery_app worker`.

The usual Django integration (Celery's "First steps with Django"): the app reads every CELERY_* setting from
Django's settings, and loads the task modules listed in `include`.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sandbox.tasks_lab.settings")

app = Celery("sandbox", include=["sandbox.tasks_lab.celery_tasks"])
app.config_from_object("django.conf:settings", namespace="CELERY")


def use_broker(url: str) -> dict[str, str]:
    """Point this process's app at a broker (and result store); returns the environment for a worker."""
    app.conf.update(broker_url=url, result_backend=url)
    return {"SANDBOX_CELERY_URL": url}
