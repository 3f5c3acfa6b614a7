"""Chapter 06's picture of consumers at work: which thread ran each handler call, and from when to when.

Wrap the body of a handler in `with spans(who):`; each call is recorded as a `Span` (who, the thread that ran it,
its start and end on this process's clock). `gantt` draws one panel per run and one bar per call, coloured by
thread: calls that shared one thread form a staircase, calls that overlapped stand side by side.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # matplotlib loads when the first figure is drawn
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class Span:
    who: str
    thread: str
    start: float
    end: float


class Spans:
    """The handler calls recorded so far (`rows`); `take()` returns them and starts a new run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rows: list[Span] = []

    @contextlib.contextmanager
    def __call__(self, who: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            span = Span(who, threading.current_thread().name, start, time.perf_counter())
            with self._lock:
                self.rows.append(span)

    def take(self) -> list[Span]:
        with self._lock:
            rows, self.rows = sorted(self.rows, key=lambda s: s.start), []
        return rows


def threads(spans: Sequence[Span]) -> set[str]:
    """The threads that ran the calls."""
    return {s.thread for s in spans}


def at_once(spans: Sequence[Span]) -> int:
    """The most calls running at the same moment (a call that started when another ended did not overlap it)."""
    return max((sum(1 for o in spans if o.start <= s.start < o.end) for s in spans), default=0)


def gantt(runs: Mapping[str, Sequence[Span]], title: str | None = None) -> Figure:
    """One panel per run (label: its spans), one bar per call from its start to its end, coloured by thread,
    on a time axis shared by all panels (seconds since the run's first call started)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    names = sorted({s.thread for spans in runs.values() for s in spans})
    colours = {t: plt.cm.tab10(i % 10) for i, t in enumerate(names)}
    fig, axes = plt.subplots(len(runs), 1, figsize=(9, 0.9 + 1.1 * len(runs)), sharex=True, squeeze=False)
    for ax, (label, spans) in zip(axes[:, 0], runs.items(), strict=True):
        t0 = min((s.start for s in spans), default=0.0)
        who = sorted({s.who for s in spans})
        for s in spans:
            ax.barh(who.index(s.who), s.end - s.start, left=s.start - t0, color=colours[s.thread],
                    edgecolor="white", height=0.7)
        ax.set_yticks(range(len(who)), who, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"{label}: {at_once(spans)} at once, on {len(threads(spans))} thread(s)", fontsize=10,
                     loc="left")
    axes[-1, 0].set_xlabel("seconds since the first handler call started")
    axes[-1, 0].set_xlim(left=0)
    fig.legend(handles=[Patch(color=colours[t], label=f"ran on {t}") for t in names], fontsize=8,
               loc="upper left", bbox_to_anchor=(0.78, 0.98), frameon=False)
    if title:
        fig.suptitle(title, x=0.01, ha="left", fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.78, 1))
    plt.close(fig)  # the notebook shows the returned figure once, as the cell's result
    return fig
