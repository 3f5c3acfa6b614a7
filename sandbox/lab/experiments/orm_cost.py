"""Chapter 04's timing of the async ORM's hops: each way of reading the same rows run in turn, its best time kept,
and drawn relative to one of them (absolute times depend on the machine and its load; the order does not)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure


async def best_times(ways: dict[str, Callable[[], Awaitable[object]]], repeats: int = 5,
                     timeout: float = 30.0) -> dict[str, float]:
    """Each way `repeats` times, in turn, inside one deadline; the best (smallest) seconds of each."""
    best = dict.fromkeys(ways, float("inf"))
    async with asyncio.timeout(timeout):
        for _ in range(repeats):
            for label, way in ways.items():
                start = time.perf_counter()
                await way()
                best[label] = min(best[label], time.perf_counter() - start)
    return best


def ratio_plot(best: dict[str, float], baseline: str,
               title: str = "Reading 200 books: the cost of a hop per query") -> Figure:
    """One bar per way: its best time divided by the `baseline` way's."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 2.4))
    ax.barh(list(best), [s / best[baseline] for s in best.values()],
            color=["tab:red", "tab:blue", "tab:green", "tab:gray", "tab:purple"][:len(best)])
    ax.axvline(1, color="black", linewidth=0.8)
    ax.invert_yaxis()
    ax.set_xlabel(f"time, relative to {baseline}")
    ax.set_title(title, fontsize=10, loc="left")
    fig.tight_layout()
    plt.close(fig)  # the notebook shows the returned figure once, as the cell's result
    return fig
