"""The benchmark script still runs against the toolkit: a small fan-out, checked by ratio only.

Absolute times depend on the machine (and on whatever else runs on it), so the test asserts only that the
async fan-out overlaps its upstream calls and the sync one does not.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path

from sandbox import lab

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "concurrency.py"


def load_benchmark():
    """Import the script by path: `benchmarks/` is a folder of scripts, not a package.

    Registered in sys.modules before it runs, because dataclasses look their module up there.
    """
    spec = importlib.util.spec_from_file_location("benchmark_concurrency", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def small_fanout(bench):
    """Boot, fan out 3 calls of 0.3 s, and leave no server and no upstream URL behind for later tests."""
    await lab.boot()
    from django.conf import settings

    upstream_before = settings.UPSTREAM_URL
    try:
        return await bench.measure_fanout(n=3, seconds=0.3)
    finally:
        lab.stop_all()
        settings.UPSTREAM_URL = upstream_before


def test_async_fanout_is_at_least_twice_as_fast_as_sync(monkeypatch):
    monkeypatch.setenv("JPY_SESSION_NAME", "test_benchmark")
    monkeypatch.delenv("SANDBOX_UPSTREAM_URL", raising=False)  # start_upstream() sets it; restored after
    result = asyncio.run(small_fanout(load_benchmark()))
    assert result.sync_seconds >= 2 * result.async_seconds, result
    assert result.async_overlap == 3 and result.sync_overlap == 1, result
