"""Compare the ASGI servers (and the WSGI baseline) the way chapter 08 does, several times, to know the noise.

Run it as `uv run python benchmarks/servers.py [--repeat 3] [--markdown-out PATH]`. It calls the notebook's own
`lab.compare_servers` (same servers, same view, same locust scenario) `--repeat` times and prints, per server
and concurrency level, the median requests per second and 95th-percentile latency with their range across
the repeats: the spread is the noise a single run in the notebook carries.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
from pathlib import Path

from sandbox import lab

DEFAULTS = {"path": "/wait/async/?s=0.05", "users": (1, 16, 64), "seconds": 1.5,
            "kinds": ("daphne", "uvicorn", "hypercorn", "granian", "wsgi")}


def summarise(runs: list[list[lab.LoadResult]]) -> list[dict]:
    """One row per (server, users): median and range of rps and p95 over the repeats, and the rps spread."""
    rows = []
    for first in runs[0]:
        same = [r for run in runs for r in run if (r.server, r.users) == (first.server, first.users)]
        rps, p95 = [r.rps for r in same], [r.p95_ms for r in same]
        median = statistics.median(rps)
        rows.append({"server": first.server, "users": first.users, "rps": median, "rps_min": min(rps),
                     "rps_max": max(rps), "p95": statistics.median(p95), "p95_min": min(p95), "p95_max": max(p95),
                     "spread": (max(rps) - min(rps)) / median if median else float("nan"),
                     "failures": sum(r.failures for r in same)})
    return rows


def markdown(rows: list[dict], path: str, repeat: int) -> str:
    lines = [f"Path `{path}`, median of {repeat} run(s) (range); {platform.python_version()} on "
             f"{os.cpu_count()} CPU(s), locust on the same machine.", "",
             "| Server | Users | Requests/s | p95 (ms) | rps spread | Failures |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['server']} | {r['users']} | {r['rps']:.0f} ({r['rps_min']:.0f}-{r['rps_max']:.0f}) "
                     f"| {r['p95']:.0f} ({r['p95_min']:.0f}-{r['p95_max']:.0f}) | {r['spread']:.0%} "
                     f"| {r['failures']} |")
    return "\n".join(lines)


async def main(args) -> str:
    os.environ.setdefault("JPY_SESSION_NAME", "benchmark-servers")
    await lab.boot()
    runs = []
    try:
        for i in range(args.repeat):
            print(f"run {i + 1} of {args.repeat}", file=sys.stderr)
            runs.append(await lab.compare_servers(args.path, kinds=args.kinds, users=args.users,
                                                  seconds=args.seconds, quiet=True))
    finally:
        lab.stop_all()
    return markdown(summarise(runs), args.path, args.repeat)


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", default=DEFAULTS["path"])
    parser.add_argument("--users", type=int, nargs="+", default=DEFAULTS["users"])
    parser.add_argument("--kinds", nargs="+", default=DEFAULTS["kinds"])
    parser.add_argument("--seconds", type=float, default=DEFAULTS["seconds"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown-out", type=Path)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse()
    table = asyncio.run(main(arguments))
    print(table)
    if arguments.markdown_out:
        arguments.markdown_out.write_text(table + "\n")
