"""Planted wrong answers: what a learner would plausibly write, one module per chapter.

Each module defines CHAPTER (a solutions/ stem) and PLANTED: {exercise id: [Planted, ...]}. Every exercise
check must fail on each of them with feedback that names the mistake.
"""

from __future__ import annotations

import importlib
import pkgutil

from tests.planted.common import Planted


def _collect() -> dict[str, dict[str, list[Planted]]]:
    found = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name != "common":
            module = importlib.import_module(f"{__name__}.{info.name}")
            found[module.CHAPTER] = module.PLANTED
    return found


PLANTED = _collect()
