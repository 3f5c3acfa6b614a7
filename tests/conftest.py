"""Fixtures for the toolkit and sandbox tests: a booted sandbox in the test process."""

from __future__ import annotations

import asyncio
import os

import pytest


@pytest.fixture(scope="session")
def lab():
    """The toolkit, booted once per test process (its own data directory, like a notebook's)."""
    os.environ["JPY_SESSION_NAME"] = "pytest.ipynb"  # nbval items in this worker may have set another
    from sandbox import lab

    asyncio.run(lab.boot())
    yield lab
    lab.stop_all()


@pytest.fixture(scope="module")
def chapter(lab, request):
    """The settings of the chapter the test module names in CHAPTER_SETTINGS, laid over this test process's, and
    undone afterwards (other tests share the process)."""
    asyncio.run(lab.apply_chapter_settings(request.module.CHAPTER_SETTINGS, quiet=True))
    yield
    lab.revert_chapter_settings()


@pytest.fixture
def run(lab):
    """Run a coroutine to completion in a fresh event loop, as a test's one async step."""
    return asyncio.run
