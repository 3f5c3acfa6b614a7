"""A timeline of requests: one bar per request from its start to its end, coloured by the thread that served
it. Concurrency becomes visible: bars side by side ran together, a staircase ran one after another."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # matplotlib loads when the first figure is drawn, not with the toolkit
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from sandbox.lab.load import Run, Samples
    from sandbox.lab.loadgen import LoadResult


def timeline(*runs: Run, title: str | None = None) -> Figure:
    """Plot one or more `Run`s (from `lab.fire`) as stacked timelines that share the time axis.

    A request whose view reports its own start and end (a `stamped` view) is drawn in three parts: grey while it
    waited (for a thread, a worker or the loop), in its thread's colour while its view ran, pale while the answer was
    on its way back. Any other request is one bar from sent to answered. A black edge marks a failed request.
    """
    import matplotlib.pyplot as plt

    height = min(2.0 * len(runs) + 0.12 * sum(len(r.records) for r in runs), 3.2 * len(runs))
    fig, axes = plt.subplots(len(runs), 1, figsize=(10, max(height, 1.6 * len(runs))), sharex=True, squeeze=False)
    for ax, run in zip(axes[:, 0], runs, strict=True):
        threads = sorted({r.thread or "?" for r in run.records})
        colours = {t: plt.cm.tab20(i % 20) for i, t in enumerate(threads)}  # past 20 threads, colours repeat
        staged = False
        for r in run.records:
            colour, edge = colours[r.thread or "?"], "black" if r.error else "none"
            stamps = run.stamps(r)
            if stamps is None:
                ax.barh(r.index, r.end - r.start, left=r.start, color=colour, edgecolor=edge)
                continue
            staged = True
            began, ended = max(stamps[0], r.start), min(max(stamps[1], stamps[0]), r.end)
            ax.barh(r.index, began - r.start, left=r.start, color="0.85", edgecolor=edge)
            ax.barh(r.index, ended - began, left=began, color=colour, edgecolor=edge)
            ax.barh(r.index, r.end - ended, left=ended, color=colour, alpha=0.3, edgecolor=edge)
        ax.set_yticks([])
        ax.set_ylabel("request")
        ax.set_title(f"{run.label}: {run.wall:.2f} s, {len(threads)} server thread(s)", fontsize=10, loc="left")
        ax.legend(handles=_legend(threads, colours, staged), fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1),
                  borderaxespad=0, frameon=False)
    axes[-1, 0].set_xlabel("seconds since the first request was sent")
    axes[-1, 0].set_xlim(left=0)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    plt.close(fig)  # the notebook shows the returned figure once, as the cell's result
    return fig


def _legend(threads: list[str], colours: dict, staged: bool) -> list:
    """One swatch per thread (up to six, then a count), and what the three parts of a bar mean when drawn."""
    from matplotlib.patches import Patch

    shown = [Patch(color=colours[t], label=f"view ran on {t}") for t in threads[:6]]
    if len(threads) > 6:
        shown.append(Patch(color="white", label=f"... {len(threads)} threads in all"))
    if staged:
        shown += [Patch(color="0.85", label="waiting: sent, view not started"),
                  Patch(color=colours[threads[0]], alpha=0.3, label="pale: answered, on its way back")]
    return shown


def _count_axis(ax: Axes) -> None:
    """A count (threads) on this y axis: integer ticks, from 0."""
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(bottom=0, top=max(ax.get_ylim()[1], 1))


def usage_plot(samples: Samples, title: str = "server while under load") -> Figure:
    """Threads and memory over time, from `lab.sample`."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 2.6))
    t = [r[0] for r in samples.rows]
    ax.plot(t, [r[1] for r in samples.rows], color="tab:blue")
    ax.set_ylabel("threads", color="tab:blue")
    _count_axis(ax)
    ax2 = ax.twinx()
    ax2.plot(t, [r[2] for r in samples.rows], color="tab:orange")
    ax2.set_ylabel("RSS (MB)", color="tab:orange")
    ax2.set_ylim(bottom=0)
    ax.set_xlabel("seconds")
    ax.set_title(title, fontsize=10, loc="left")
    fig.tight_layout()
    plt.close(fig)
    return fig


def compare_plot(rows: Sequence[LoadResult], title: str = "the same view behind each server") -> Figure:
    """Requests per second, 95th-percentile latency and, when sampled, the server's peak threads, per server and
    concurrency level (from `compare_servers`); the x axis has a tick at each level measured."""
    import matplotlib.pyplot as plt

    panels = [("requests per second", lambda r: r.rps), ("95th percentile latency (ms)", lambda r: r.p95_ms)]
    if any(r.threads for r in rows):
        panels.append(("server threads (peak)", lambda r: r.threads))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels) + 1.6, 3.4))
    levels = sorted({r.users for r in rows})
    for server in dict.fromkeys(r.server for r in rows):
        mine = sorted((r for r in rows if r.server == server), key=lambda r: r.users)
        style = {"marker": "o", "linestyle": "--" if server == "wsgi" else "-", "label": server}
        for ax, (_, value) in zip(axes, panels, strict=True):
            ax.plot([r.users for r in mine], [value(r) for r in mine], **style)
    for ax, (label, _) in zip(axes, panels, strict=True):
        if len(levels) > 1 and levels[0] > 0:
            ax.set_xscale("log", base=2)
        ax.set_xticks(levels, [str(n) for n in levels])
        ax.minorticks_off()
        ax.set_xlabel("concurrent users")
        ax.set_ylabel(label)
        if label.startswith("server threads"):
            _count_axis(ax)
        else:
            ax.set_ylim(bottom=0)
    axes[-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    plt.close(fig)
    return fig
