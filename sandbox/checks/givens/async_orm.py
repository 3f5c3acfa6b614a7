"""Chapter 04's given: the publication date of exercise 'publish'."""

from __future__ import annotations

from datetime import date

PUBLISHED = date(2026, 12, 1)  # the check sets a new date here (and in the learner's namespace) for each call
