"""Settings for the kernel: the Django project as a notebook cell sees it.

Servers started from a notebook use `sandbox.settings_server`, which differs only in where logs go.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent
# Each notebook gets its own data directory (made by `lab.boot()`); servers it starts share it through the
# environment, so a row written in a cell is visible to daphne and uvicorn.
DATA_DIR = Path(os.environ.get("SANDBOX_DATA_DIR", BASE_DIR.parent / ".course-data" / "default"))

SECRET_KEY = "fake-secret-key-for-a-local-course-sandbox-never-use-in-production"  # FAKE on purpose
DEBUG = True
# Loopback only; "testserver" is the host name Django's in-process test clients send, not a network address.
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"]

INSTALLED_APPS = [
    # "daphne" is deliberately absent: `python -m daphne` does not need it, and importing it here would add
    # 0.9 s to every boot and install Twisted's reactor in the kernel.
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
    "sandbox.catalog",  # chapters 00-01: a small catalogue
    "sandbox.concurrency",  # chapter 01: paired sync/async views, the slow upstream, a Channels consumer
    "sandbox.asyncviews",  # chapter 03: async views, class-based views, streaming
    "sandbox.library",  # chapter 04: models with every kind of relation, for the async ORM
    "sandbox.middleware_lab",  # chapter 05: middleware written right and wrong
    "sandbox.chat",  # chapter 06: a chat over Channels
    "sandbox.tasks_lab",  # chapter 07: background tasks
    "sandbox.considerations",  # chapter 08: connections, thread safety, ASGI servers
    "sandbox.capstone",  # chapter 09: the capstone's provided parts
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
# Chapter 05 starts servers with extra middleware (the source document's broken example among them):
# SANDBOX_EXTRA_MIDDLEWARE="dotted.Path,other.Path" appends to the stack above.
MIDDLEWARE += [path for path in os.environ.get("SANDBOX_EXTRA_MIDDLEWARE", "").split(",") if path]

ROOT_URLCONF = "sandbox.urls"
WSGI_APPLICATION = "sandbox.wsgi.application"
ASGI_APPLICATION = "sandbox.asgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "db.sqlite3",
        "OPTIONS": {
            # WAL lets a server read while the kernel writes; the timeout waits out short write locks. With WAL,
            # synchronous=NORMAL is SQLite's recommended setting: a commit no longer waits for the disk to flush
            # (1,000 chat disconnects at once are 1,000 commits in chapter 06).
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "timeout": 20,
        },
    }
}
# Chapter 08 points servers at a private PostgreSQL (`lab.postgres_env`): the database URL, CONN_MAX_AGE and
# OPTIONS["pool"] (true, or psycopg_pool.ConnectionPool arguments), each JSON-encoded.
if os.environ.get("SANDBOX_DATABASE_URL"):
    _pg = urlsplit(os.environ["SANDBOX_DATABASE_URL"])
    DATABASES["default"] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _pg.path.lstrip("/"), "USER": _pg.username, "PASSWORD": _pg.password or "",
        "HOST": _pg.hostname, "PORT": _pg.port,
        "CONN_MAX_AGE": json.loads(os.environ.get("SANDBOX_CONN_MAX_AGE", "0")),
        "OPTIONS": {"pool": json.loads(os.environ.get("SANDBOX_DB_POOL", "false"))},
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

# One process only: good for a lesson, never for production (chapter 06 shows why).
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
if os.environ.get("SANDBOX_REDIS_URL"):  # chapter 06 scales out: processes share a private Redis
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                  "CONFIG": {"hosts": [os.environ["SANDBOX_REDIS_URL"]]}}}

USE_TZ = True
TIME_ZONE = "UTC"

# The slow upstream service the fan-out views call; `lab.start_upstream()` sets it for the kernel and servers.
UPSTREAM_URL = os.environ.get("SANDBOX_UPSTREAM_URL", "")

# Quiet in the kernel: a lesson that serves a 500 on purpose should not flood the cell with a traceback.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {
        "django.request": {"level": "CRITICAL"},
        "django.tasks": {"level": "WARNING"},
    },
}
