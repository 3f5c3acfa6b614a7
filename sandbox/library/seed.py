"""Deterministic seed data for the async ORM lessons (chapter 04)."""

from __future__ import annotations


async def aseed() -> int:
    """Create the library's rows if they are missing; return how many books exist. Idempotent."""
    return 0
