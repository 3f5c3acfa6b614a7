"""The README's first command, as a learner meets it: JupyterLab opens at the start-here notebook, the whole
course is in its file browser, a lesson's link opens its exercise notebook, and nothing is left behind.

The JupyterLab here is the one that also runs notebooks 00 and 05 through the UI for nbval (tests/jupyterlab.py):
these tests run just before those notebooks, on the same worker (tests/scheduling.py); JupyterLab shuts down
after the last of them, and the run's hygiene check (conftest.py) then finds none of its processes left.
"""

from __future__ import annotations

import pytest

from tests import jupyterlab

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not jupyterlab.available(),
    reason="needs Debian's chromium (apt-get install chromium); CI installs it and never skips this")]

LESSON, EXERCISE = "notebooks/05-async-middleware.ipynb", "exercises/05-async-middleware.ipynb"


def test_the_readme_command_opens_the_whole_course_at_start_here():
    lab = jupyterlab.lab()
    assert lab.opened == "notebooks/00-start-here.ipynb", f"JupyterLab opened {lab.opened!r}"
    listing = lab.top_folder()
    assert {"notebooks", "exercises", "solutions", "docs"} <= set(listing), f"file browser's top folder: {listing}"


def test_a_lessons_link_opens_its_exercise_notebook():
    """The lesson stays open: nbval's run of it, next on this worker, uses the same tab and kernel."""
    lab = jupyterlab.lab()
    lab.open(LESSON)
    try:
        lab.click_link(EXERCISE, then_open=EXERCISE)
    finally:
        lab.close_notebook(EXERCISE)
