"""The load generator (locust, for real) and the two ASGI servers chapter 08 adds to daphne and uvicorn."""

from __future__ import annotations

import math

import httpx
import pytest

from sandbox.lab import loadgen

pytestmark = pytest.mark.slow  # servers and locust


@pytest.mark.parametrize("kind", ["hypercorn", "granian"])
async def test_more_asgi_servers_serve_the_sandbox_concurrently(lab, kind):
    server = await lab.start_server(kind, quiet=True)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            page = await client.get("/catalog/items/")
        waits = await lab.fire(server, "/wait/async/?s=0.5", 10)
    finally:
        server.stop()

    assert page.status_code == 200 and page.json()["items"]
    assert not waits.errors and waits.at_once(0.5) > 1, "ten 0.5 s waits overlapped in one process"
    assert not server.alive()


async def test_locust_measures_a_server_and_reports_percentiles_in_order(lab):
    server = await lab.start_server("uvicorn", quiet=True)
    try:
        ok = await lab.locust(server.url + "/whoami/", users=2, seconds=1, label="uvicorn")
        missing = await lab.locust(server.url + "/no-such-page/", users=2, seconds=1)
    finally:
        server.stop()

    assert ok.server == "uvicorn" and ok.users == 2
    assert ok.requests > 0 and ok.failures == 0 and ok.rps > 0
    assert ok.p50_ms <= ok.p95_ms <= ok.p99_ms
    assert missing.requests > 0 and missing.failures == missing.requests, "a 404 counts as a failure"


async def test_locust_against_nothing_records_failures_not_a_crash(lab):
    from sandbox.lab.servers import claim_port

    result = await lab.locust(f"http://127.0.0.1:{claim_port(None)}/", users=1, seconds=1)
    assert result.requests > 0 and result.failures == result.requests, "connection refused is a failure"


async def test_compare_servers_runs_each_server_alone_and_stops_it(lab, capsys):
    from sandbox.lab.servers import RUNNING

    before = list(RUNNING)  # servers other tests of this process keep are not this test's
    rows = await lab.compare_servers("/wait/async/?s=0.05", kinds=("uvicorn", "wsgi"), users=(8,), seconds=1,
                                     threads=2)
    assert [(r.server, r.users) for r in rows] == [("uvicorn", 8), ("wsgi", 8)]
    assert all(r.failures == 0 and r.requests > 0 for r in rows), lab.compare_table(rows)
    by = {(r.server, r.users): r for r in rows}
    # 8 users waiting 50 ms each: two WSGI threads serve at most two at a time, so at most 2 / 0.05 s per second
    assert by["wsgi", 8].rps <= 2 / 0.05
    assert len(capsys.readouterr().out.splitlines()) == 2, "one line per server"
    assert all(r.threads >= 1 for r in rows), "the server's threads were sampled while locust ran"
    assert by["wsgi", 8].threads >= 2, "gunicorn holds its two request threads"
    table = lab.compare_table(rows).splitlines()
    assert "requests per second" in table[0] and "server threads" in table[0]
    assert [line.split()[0] for line in table[2:]] == ["uvicorn", "wsgi", "failed:"]
    figure = lab.compare_plot(rows)
    assert [ax.get_xlabel() for ax in figure.axes[:3]] == ["concurrent users"] * 3
    assert list(figure.axes[0].get_xticks()) == [8] and figure.axes[2].get_ylim()[0] == 0
    assert RUNNING == before


async def test_a_run_without_a_window_is_refused_with_the_reason(lab):
    with pytest.raises(ValueError, match="needs a window of time"):
        await lab.locust("http://127.0.0.1:9/", seconds=0)


def test_percentiles_locust_could_not_compute_are_nan_not_zero(tmp_path):
    header = "Type,Name,Request Count,Failure Count,Requests/s,50%,95%,99%"
    (tmp_path / "r_stats.csv").write_text(f"{header}\n,Aggregated,0,0,0.0,N/A,N/A,N/A\n")
    result = loadgen._read_report(tmp_path / "r", "x", 1)
    assert result.requests == 0 and math.isnan(result.p95_ms)


async def test_a_locust_that_cannot_start_is_a_clear_error_with_its_log(lab, monkeypatch, tmp_path):
    monkeypatch.setattr(loadgen, "LOCUSTFILE", tmp_path / "missing_locustfile.py")
    with pytest.raises(lab.ServerError, match=r"(?s)locust exited \(code \d+\) before it started:.*missing_locustf"):
        await lab.locust("http://127.0.0.1:9/", seconds=1)
