"""The benchmark script still runs against the toolkit: a small fan-out, checked by ratio only.

Absolute times depend on the machine (and on whatever else runs on it), so the test asserts only that the
async fan-out overlaps its upstream calls and the sync one does not.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path

import pytest

from sandbox import lab

pytestmark = pytest.mark.slow  # the benchmarks start servers

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


def test_the_fanout_benchmark_counts_the_calls_each_view_overlapped(monkeypatch):
    monkeypatch.setenv("JPY_SESSION_NAME", "test_benchmark")
    monkeypatch.delenv("SANDBOX_UPSTREAM_URL", raising=False)  # start_upstream() sets it; restored after
    result = asyncio.run(small_fanout(load_benchmark()))
    assert result.async_overlap == 3 and result.sync_overlap == 1, result
    assert result.sync_seconds >= 3 * 0.3, result  # three calls of 0.3 s, one after another


SERVERS = SCRIPT.with_name("servers.py")


def test_server_benchmark_reports_median_range_and_spread_per_server_and_level():
    spec = importlib.util.spec_from_file_location("benchmark_servers", SERVERS)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    run = lambda *rps: [lab.LoadResult("uvicorn", 8, r, 1, 10 * r, 20, 100, 0) for r in rps]  # noqa: E731
    rows = bench.summarise([run(100), run(80), run(120)])
    assert [(r["server"], r["users"], r["rps"], r["rps_min"], r["rps_max"]) for r in rows] == \
        [("uvicorn", 8, 100, 80, 120)]
    assert rows[0]["spread"] == 0.4 and rows[0]["p95"] == 1000
    assert "| uvicorn | 8 | 100 (80-120) | 1000 (800-1200) | 40% | 0 |" in bench.markdown(rows, "/x", 3)


def test_server_benchmark_script_runs_end_to_end():
    import subprocess

    done = subprocess.run([sys.executable, str(SERVERS), "--kinds", "uvicorn", "--users", "2", "--repeat", "1"],
                          capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "JPY_SESSION_NAME": "test_benchmark_servers"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| uvicorn | 2 |" in done.stdout and "| 0 |" in done.stdout
