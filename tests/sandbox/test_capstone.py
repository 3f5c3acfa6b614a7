"""Chapter 09's auction: the provided parts, the reference implementation in one process and with real processes
(daphne, a db_worker, Redis, the slow upstream), the lost updates of a read-modify-write, and what the lesson
says about daphne and warnings. The reference implementation is also the solution notebook's answer, file by
file."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import nbformat
import pytest

from sandbox.paths import REPO
from tests.markers import needs_redis

ROOT = REPO
REFERENCE = ROOT / "sandbox" / "capstone" / "reference"
IN_ONE_PROCESS = {
    "TASKS": {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}},
    "CHANNEL_LAYERS": {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
}
ORIGIN = [(b"origin", b"http://127.0.0.1")]


CHAPTER_SETTINGS = "sandbox.capstone.settings"  # what the `chapter` fixture lays over this process's settings


def _written_files(notebook: Path) -> dict[str, str]:
    """{file name: text} of the notebook's `%%writefile "{package}/<name>"` cells, solution markers removed."""
    files = {}
    for cell in nbformat.read(notebook, as_version=4).cells:
        match = re.match(r'%%writefile "\{package\}/(\w+\.py)"\n', cell.source)
        if cell.cell_type == "code" and match:
            body = cell.source[match.end():]
            files[match.group(1)] = re.sub(r"^[ \t]*### (BEGIN|END) SOLUTION\n?", "", body, flags=re.M)
    return files


def _normalised(text: str) -> tuple[list[str], set[str]]:
    """(the lines other than imports and comment lines, in order; the import lines): import order may differ."""
    lines = [line for line in text.strip().splitlines() if not line.strip().startswith("# ")]
    imports = {line for line in lines if line.startswith(("import ", "from "))}
    return [line for line in lines if line not in imports], imports


def test_the_reference_implementation_is_the_solution_notebooks_answer():
    files = _written_files(ROOT / "solutions" / "09-capstone.ipynb")
    assert sorted(files) == ["consumers.py", "tasks.py", "views.py"]
    for name, text in files.items():
        reference = (REFERENCE / name).read_text().replace("sandbox.capstone.reference.tasks", "auction_live.tasks")
        # the reference's comment lines explain it to a reader; the exercise's task text does that in the notebook
        assert _normalised(text) == _normalised(reference), f"{name} differs from sandbox/capstone/reference/{name}"


def test_the_exercise_stubs_raise_inside_the_functions_only():
    """Every module of the pristine exercise notebook imports (the stub raises when called, not when imported)."""
    files = _written_files(ROOT / "exercises" / "09-capstone.ipynb")
    for name, text in files.items():
        compile(text, name, "exec")
        assert "raise NotImplementedError" in text and text.index("raise NotImplementedError") > text.index("def ")


def test_reading_a_bid_refuses_bad_bodies(lab):
    from django.core.exceptions import BadRequest
    from django.test import RequestFactory

    from sandbox.capstone.auction import read_bid

    def post(body) -> object:
        return RequestFactory().post("/", body if isinstance(body, str) else json.dumps(body),
                                     content_type="application/json")

    assert read_bid(post({"bidder": "ada", "amount": 120})) == ("ada", 120)
    for bad in ("not json", {"bidder": "ada"}, {"bidder": "", "amount": 1}, {"bidder": "ada", "amount": 1.5},
                {"bidder": "ada", "amount": 0}, {"bidder": "ada", "amount": True}, [1, 2]):
        with pytest.raises(BadRequest):
            read_bid(post(bad))


async def test_the_reference_app_in_one_process(chapter, lab):
    """The lesson's test, and the answers around it: 201, 409, 404, 400, 405, and a feed refused for no lot."""
    from channels.testing import WebsocketCommunicator
    from django.test import AsyncClient, override_settings

    from sandbox.capstone import asgi
    from sandbox.capstone.auction import NO_SUCH_LOT
    from sandbox.lab.experiments import auction_run as app_run

    upstream = await lab.start_upstream(quiet=True)  # the fraud-check service
    try:
        with override_settings(**IN_ONE_PROCESS):
            lot = await app_run.new_lot("Test lot", 100)
            feed = WebsocketCommunicator(asgi.application, f"/ws/capstone/lots/{lot.pk}/", headers=ORIGIN)
            assert (await feed.connect(timeout=5))[0]
            price = await feed.receive_json_from(timeout=5)
            client = AsyncClient()

            async def bid(amount, lot_id=lot.pk, **extra):
                return await client.post(f"/capstone/lots/{lot_id}/bid/", {"bidder": "ada", "amount": amount},
                                         content_type="application/json", **extra)

            won, lost, missing = [await bid(130), await bid(120), await bid(140, lot_id=999_999)]
            event = await feed.receive_json_from(timeout=5)
            assert await feed.receive_nothing(timeout=0.3)  # the 409 is not announced
            await feed.disconnect()
            bad = await client.post(f"/capstone/lots/{lot.pk}/bid/", "nope", content_type="application/json")
            get = await client.get(f"/capstone/lots/{lot.pk}/bid/")
            detail = await client.get(f"/capstone/lots/{lot.pk}/")
            nowhere = WebsocketCommunicator(asgi.application, "/ws/capstone/lots/999999/", headers=ORIGIN)
            refused = await nowhere.connect(timeout=5)
    finally:
        upstream.stop()
    assert price == {"type": "price", "lot": price["lot"], "title": "Test lot", "current_price": 100, "closed": False}
    assert won.status_code == 201 and won.json()["current_price"] == 130
    assert lost.status_code == 409 and lost.json()["current_price"] == 130
    assert missing.status_code == 404
    assert event["type"] == "bid.placed" and event["amount"] == 130 and event["sent_by"].startswith("kernel")
    assert bad.status_code == 400 and get.status_code == 405
    assert detail.json()["current_price"] == 130
    assert refused == (False, NO_SUCH_LOT)


# The reference app with real processes (daphne, a db_worker, Redis, concurrent bids, the feed, the naive view's lost
# updates) is what notebooks/09-capstone.ipynb runs and checks on every test run.


@pytest.mark.slow  # daphne
@needs_redis
async def test_daphne_discards_a_never_awaited_warning_unless_it_is_an_error(chapter, lab):
    """What `process_env`'s comment and the instructor guide say about its PYTHONWARNINGS: without it, daphne's log
    never shows the warning."""
    from sandbox.lab.experiments import auction_run as app_run

    package = app_run.workspace("auction_unawaited")
    for name in ("consumers", "tasks", "views"):
        text = (REFERENCE / f"{name}.py").read_text().replace("sandbox.capstone.reference", "auction_unawaited")
        (package / f"{name}.py").write_text(text.replace("await self.channel_layer.group_add",
                                                         "self.channel_layer.group_add"))

    redis = await lab.start_redis(quiet=True, emulate_if_missing=False)
    logs = []
    try:
        for warnings in ("", None):  # Python's default filters; then the course's (error:coroutine:...)
            env = app_run.process_env("auction_unawaited", "daphne", redis)
            if warnings is not None:
                env["PYTHONWARNINGS"] = warnings
            server = await lab.start_server("daphne", app="sandbox.capstone.asgi:application", env=env, quiet=True)
            try:
                lot = await app_run.new_lot()
                async with app_run.watch(f"{server.ws_url}/ws/capstone/lots/{lot.pk}/") as feed:
                    await feed.until(1)
                await asyncio.sleep(0.2)
                logs.append(server.log_tail(400))
            finally:
                server.stop()
    finally:
        redis.stop()

    default, course = logs
    assert "never awaited" not in default and "WSCONNECT" in default
    assert "coroutine 'RedisChannelLayer.group_add' was never awaited" in course


def test_a_rewritten_module_is_imported_as_it_is_now(lab):
    """The checks import the learner's files after each rewrite, even two rewrites of the same size in a second."""
    from sandbox.lab.experiments import auction_run as app_run

    package = app_run.workspace("auction_rewritten")
    for value in ("1", "2"):
        (package / "answer.py").write_text(f"VALUE = {value}\n")
        assert app_run.import_fresh("auction_rewritten.answer").VALUE == int(value)
    assert not (package / "__pycache__").exists()
