"""Chapter 06's picture counts what it draws: calls at once and the threads that ran them, from each call's stamps."""

from __future__ import annotations

import threading

from sandbox.lab.experiments.consumer_spans import Span, Spans, at_once, gantt, threads


def test_calls_one_after_another_do_not_overlap_and_calls_together_do():
    staircase = [Span("/1", "T", 0.0, 0.3), Span("/2", "T", 0.3, 0.6), Span("/3", "T", 0.6, 0.9)]
    together = [Span(f"/{i}", "loop", 0.0 + i / 100, 0.3) for i in range(3)]
    assert at_once(staircase) == 1 and threads(staircase) == {"T"}
    assert at_once(together) == 3 and at_once([]) == 0


def test_spans_record_the_thread_and_take_starts_a_new_run():
    spans = Spans()

    def work() -> None:
        with spans("/w"):
            pass

    worker = threading.Thread(target=work, name="worker")
    with spans("/main"):
        worker.start()
        worker.join()
    rows = spans.take()
    assert sorted((s.who, s.thread) for s in rows) == [("/main", threading.current_thread().name), ("/w", "worker")]
    assert all(s.end >= s.start for s in rows) and at_once(rows) == 2 and spans.take() == []


def test_gantt_draws_one_panel_per_run_with_a_thread_legend():
    fig = gantt({"a": [Span("/1", "T", 0.0, 0.3)], "b": [Span("/1", "loop", 1.0, 1.3), Span("/2", "loop", 1.0, 1.3)]})
    axes = fig.get_axes()
    assert len(axes) == 2 and "2 at once" in axes[1].get_title(loc="left")
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["ran on T", "ran on loop"]
