"""The toolkit's parts for learning by doing: code from a cell served in process (`lab.serve`), server stamps on a
timeline, a prediction revealed (`lab.reveal`) and a quiz bank checked (`lab.quiz`)."""

from __future__ import annotations

import threading
import time

import pytest
from django.http import HttpResponse, JsonResponse

from sandbox.concurrency.views import _who, stamped
from sandbox.lab.learn import Quiz


async def test_a_view_from_a_cell_is_served_and_an_edit_changes_what_runs(lab):
    def hello(request):
        return HttpResponse("first")

    async with lab.serve(hello) as c:
        assert (await c.get("/")).text == "first"

    def hello(request):  # noqa: F811 (the learner edits the cell and runs it again)
        return HttpResponse("edited")

    async with lab.serve({"hi/": hello}) as c:
        assert (await c.get("/hi/")).text == "edited"
        assert (await c.get("/")).status_code == 404  # only the given routes, not the sandbox's


async def test_middleware_from_a_cell_runs_outermost_first_adapted_as_django_does(lab):
    seen = []

    def outer(get_response):  # sync only: Django adapts it for the async handler, in a thread
        def middleware(request):
            seen.append(("outer", threading.current_thread().name))
            return get_response(request)
        return middleware

    def inner(get_response):
        async def middleware(request):
            seen.append(("inner", threading.current_thread().name))
            return await get_response(request)
        return middleware

    async def view(request):
        return HttpResponse("ok")

    inner.async_capable, inner.sync_capable = True, False
    async with lab.serve(view, middleware=[outer, inner]) as c:
        assert (await c.get("/")).text == "ok"
    assert [name for name, _ in seen] == ["outer", "inner"]
    assert seen[0][1] != "MainThread" and seen[1][1] == "MainThread"


async def test_a_stamped_view_reports_its_start_and_the_timeline_draws_three_parts(lab):
    @stamped
    def slow(request):
        time.sleep(0.05)
        return JsonResponse(_who(view="slow"))

    async with lab.serve(slow) as c:
        run = await lab.fire(c, "/", 3)
    for r in run.records:
        began, ended = run.stamps(r)
        assert r.start <= began + 0.01 and began < ended <= r.end + 0.01 and ended - began >= 0.04
    fig = lab.timeline(run)
    assert len(fig.axes[0].patches) == 3 * 3  # waiting, running, on its way back, for each request
    assert _who()["began"] is None  # the stamp never outlives its request


def test_reveal_compares_a_guess_and_says_so_without_one(lab, capsys):
    assert lab.reveal(8, 8, "threads") is True
    assert lab.reveal(1, 8, "threads") is False
    assert lab.reveal(0.5, 0.55, "s") is True
    assert lab.reveal(None, 8, "threads") is None
    out = capsys.readouterr().out
    assert "You predicted 1 threads; measured 8 threads: not what happened" in out
    assert "Write your guess" in out


def test_a_quiz_without_a_bank_says_where_it_looked():
    with pytest.raises(ValueError, match="no quiz for 'nope'"):
        Quiz("nope")


def test_a_quiz_links_to_a_heading_as_jupyterlab_renders_its_id():
    from sandbox.lab.learn import anchor

    assert anchor("The 19 `a` methods, and no `aall()`") == "#The-19-a-methods,-and-no-aall()"
    assert anchor("Row 2: **views**") == "#Row-2:-views"
