"""Chapter 02's introspection: which Django APIs exist, which are async, and which do their own async work.

The lesson asks the questions and reads the answers; this module holds the `importlib`, `pkgutil` and `__code__`
plumbing that finds them in the installed Django.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterable
from types import ModuleType


def resolve(dotted: str) -> object:
    """Import 'package.module.Class.attribute'; raises ImportError or AttributeError if it does not exist."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for name in parts[i:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(dotted)


def kind(obj: object) -> str:
    """'class', 'async def' (a coroutine or async generator function) or 'def'."""
    if inspect.isclass(obj):
        return "class"
    return "async def" if inspect.iscoroutinefunction(obj) or inspect.isasyncgenfunction(obj) else "def"


def look_up(rows: Iterable[tuple[str, str, str]]) -> list[tuple[str, str, str, str]]:
    """Each (release, what landed, dotted API) row with what the API is in this install; a missing API raises."""
    return [(release, landed, dotted, kind(resolve(dotted))) for release, landed, dotted in rows]


def print_releases(rows: Iterable[tuple[str, str, str]], version: str) -> None:
    """The release table with the kind each API has here (`look_up`), one line a row."""
    print(f"{'release':<8}{'what landed':<40}{'API':<58}found in {version} as")
    for release, landed, dotted, found in look_up(rows):
        print(f"{release:<8}{landed:<40}{dotted:<58}{found}")


def async_methods(cls: type) -> list[str]:
    """The names of `cls`'s methods that start with 'a' and are coroutine (or async generator) functions."""
    return [name for name in dir(cls) if name.startswith("a")
            and (inspect.iscoroutinefunction(getattr(cls, name)) or inspect.isasyncgenfunction(getattr(cls, name)))]


def guarded_methods(cls: type) -> list[str]:
    """The methods of `cls` wrapped by Django's `@async_unsafe`: every wrapper it makes runs the same code object."""
    from django.utils.asyncio import async_unsafe

    guard = async_unsafe(lambda: None).__code__
    return [name for name in dir(cls) if getattr(getattr(cls, name), "__code__", None) is guard]


def _modules(package: ModuleType) -> list[ModuleType]:
    """`package`'s modules and subpackages' modules, imported."""
    return [importlib.import_module(info.name)
            for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")]


def cache_backends_own_async() -> dict[str, list[str]]:
    """Every cache backend class Django ships -> the async methods it defines itself instead of inheriting
    `BaseCache`'s (which wrap the sync method in `sync_to_async`)."""
    import django.core.cache.backends as backends
    from django.core.cache.backends.base import BaseCache

    names = async_methods(BaseCache)
    found = {}
    for module in _modules(backends):
        for cls in vars(module).values():
            if inspect.isclass(cls) and issubclass(cls, BaseCache) and cls.__module__ == module.__name__:
                short = f"{module.__name__.rsplit('.', 1)[1]}.{cls.__name__}"
                found[short] = [n for n in names if getattr(cls, n) is not getattr(BaseCache, n)]
    return found


def async_defs_in(package: ModuleType) -> list[str]:
    """Every `async def` (a function, or a method of a class) defined in `package` and its submodules."""
    found = []
    for module in [package, *_modules(package)] if hasattr(package, "__path__") else [package]:
        for obj in vars(module).values():
            members = vars(obj).values() if inspect.isclass(obj) else [obj]
            found += [f"{module.__name__}: {f.__qualname__}" for f in members if inspect.iscoroutinefunction(f)
                      and getattr(f, "__module__", None) == module.__name__]
    return sorted(set(found))


def submodules(package: ModuleType, *, but: str = "") -> list[str]:
    """The names of `package`'s direct submodules, without `but`."""
    return [info.name for info in pkgutil.iter_modules(package.__path__) if info.name != but]
