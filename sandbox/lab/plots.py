"""A timeline of requests: one bar per request from its start to its end, coloured by the thread that served
it. Concurrency becomes visible: bars side by side ran together, a staircase ran one after another."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # matplotlib loads when the first figure is drawn, not with the toolkit
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
                  Patch(color="0.5", alpha=0.3, label="answered, on its way back")]
    return shown


def usage_plot(samples: Samples, title: str = "server while under load") -> Figure:
    """Threads and memory over time, from `lab.sample`."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 2.6))
    t = [r[0] for r in samples.rows]
    ax.plot(t, [r[1] for r in samples.rows], color="tab:blue")
    ax.set_ylabel("threads", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(t, [r[2] for r in samples.rows], color="tab:orange")
    ax2.set_ylabel("RSS (MB)", color="tab:orange")
    ax.set_xlabel("seconds")
    ax.set_title(title, fontsize=10, loc="left")
    fig.tight_layout()
    plt.close(fig)
    return fig


def compare_plot(rows: Sequence[LoadResult], title: str = "the same view behind each server") -> Figure:
    """Requests per second and 95th-percentile latency per server and concurrency level (from `compare_servers`)."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
    for server in dict.fromkeys(r.server for r in rows):
        mine = [r for r in rows if r.server == server]
        style = {"marker": "o", "linestyle": "--" if server == "wsgi" else "-", "label": server}
        left.plot([r.users for r in mine], [r.rps for r in mine], **style)
        right.plot([r.users for r in mine], [r.p95_ms for r in mine], **style)
    for ax, label in ((left, "requests per second"), (right, "95th percentile latency (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent users")
        ax.set_ylabel(label)
    right.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    plt.close(fig)
    return fig
