"""Models of the async ORM lessons (chapter 04)."""

from django.db import models  # noqa: F401
