"""Guards for lessons: a "must raise" block that fails when nothing is raised, the one scoped escape hatch
for a "before" demo of sync ORM code, and showing sandbox source from its real file."""

from __future__ import annotations

import contextlib
import inspect
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from sandbox.paths import REPO


@contextlib.contextmanager
def expect_raises(exc_type: type[BaseException], match: str | None = None) -> Iterator[None]:
    """Like `pytest.raises`, for a notebook: prints what was raised, and fails loudly when nothing was."""
    try:
        yield
    except exc_type as exc:
        if match and not re.search(match, str(exc)):
            raise AssertionError(f"raised {type(exc).__name__}, but its message {str(exc)!r} "
                                 f"does not match {match!r}") from exc
        print(f"raised {type(exc).__name__}: {exc}")
    else:
        raise AssertionError(f"expected {exc_type.__name__}, but nothing was raised")


@contextlib.contextmanager
def env_var(name: str, value: str) -> Iterator[None]:
    """Set the environment variable `name` for the block only; its previous value (or absence) comes back after."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


@contextlib.contextmanager
def UNSAFE_allow_sync_orm_in_event_loop() -> Iterator[None]:  # noqa: N802 - shouting: it switches a safety check off
    """Set DJANGO_ALLOW_ASYNC_UNSAFE for this block only, for a "before" demo of sync ORM code.

    Django checks the variable on every call, so the block is the whole scope. Never use it in real code:
    it hides SynchronousOnlyOperation, which protects a database connection from being used by the event loop.
    Servers started from the kernel never inherit it.
    """
    print("WARNING: DJANGO_ALLOW_ASYNC_UNSAFE is set for this block only (a 'before' demo; never in real code)")
    with env_var("DJANGO_ALLOW_ASYNC_UNSAFE", "true"):
        yield


def show_source(obj: ModuleType | Callable[..., Any]) -> None:
    """Print the real source of a sandbox object, labelled with its path (never a pasted copy)."""
    if callable(obj):  # a decorated function: show (and label) the function, not its decorator
        obj = inspect.unwrap(obj)
    path = Path(inspect.getsourcefile(obj) or inspect.getfile(obj)).resolve()
    try:
        label = path.relative_to(REPO)
    except ValueError:
        label = path
    print(f"# {label}\n{inspect.getsource(obj)}", end="")
