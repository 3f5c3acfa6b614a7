"""Planted answers: what a learner would plausibly write, one module per chapter (named like its check module).

Each module defines CHAPTER (a solutions/ stem), PLANTED: {exercise id: [Planted, ...]}, wrong answers that every
check must reject with feedback that names the mistake, and ACCEPTABLE: {exercise id: [Acceptable, ...]}, other
correct answers that must pass. tests/probes.py runs them.
"""

from __future__ import annotations

import importlib
import pkgutil

from tests.planted.common import Acceptable, Planted

__all__ = ["ACCEPTABLE", "MODULES", "PLANTED", "Acceptable", "Planted"]


def _collect():
    wrong, fine, modules = {}, {}, {}
    for info in pkgutil.iter_modules(__path__):
        if info.name != "common":
            module = importlib.import_module(f"{__name__}.{info.name}")
            wrong[module.CHAPTER] = module.PLANTED
            fine[module.CHAPTER] = getattr(module, "ACCEPTABLE", {})
            modules[info.name] = module.CHAPTER
    return wrong, fine, modules


PLANTED, ACCEPTABLE, MODULES = _collect()  # MODULES: {module name (also its check module's): chapter}
