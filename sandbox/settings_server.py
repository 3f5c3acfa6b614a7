"""Settings for servers started from a notebook (daphne, uvicorn, gunicorn).

Same project as the kernel; the difference is that errors go to the server's log file, which
`Server.log_tail()` shows when something fails.
"""

from __future__ import annotations

from sandbox.settings import *  # noqa: F403

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django": {"handlers": ["stderr"], "level": "WARNING"},
        # django-tasks-db's db_worker (chapters 07 and 09) logs "Starting worker ..." here: the toolkit's ready sign
        "django_tasks_db": {"handlers": ["stderr"], "level": "INFO"},
    },
}
