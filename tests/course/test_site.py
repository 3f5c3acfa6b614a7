"""The published HTML copy of the course: every notebook has a page, and no link on the site is broken.

A static site fails silently: a link to a .ipynb or to a page that was never written only shows when a reader
clicks it, so the test follows every relative link of every page.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

from course.site import FOLDERS
from sandbox.paths import REPO

pytestmark = pytest.mark.slow  # converts every notebook

LINK = re.compile(r'''(?:href|src)\s*=\s*["']([^"']*)["']''', re.I)
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//|#)", re.I)  # http(s):, mailto:, data:, javascript:, //host, #anchor


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> tuple[Path, list[Path]]:
    """The site as `course site` builds it (one build for every test here); the pages it wrote."""
    out = tmp_path_factory.mktemp("site") / "site"
    result = subprocess.run([sys.executable, "-m", "course.cli", "site", "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"{len(list(out.rglob('*.html')))} pages written" in result.stdout
    return out, sorted(out.rglob("*.html"))


def relative_links(page: Path) -> list[str]:
    return [link for link in LINK.findall(page.read_text(encoding="utf-8")) if link and not EXTERNAL.match(link)]


def test_every_notebook_has_a_page(site):
    out, pages = site
    for folder in FOLDERS:
        notebooks = sorted((REPO / folder).glob("*.ipynb"))
        assert notebooks, folder
        for notebook in notebooks:
            page = out / folder / f"{notebook.stem}.html"
            assert page.is_file(), page
            assert page in pages
    assert (out / "index.html").is_file()


def test_index_links_every_lesson_in_order(site):
    out, _ = site
    links = relative_links(out / "index.html")
    lessons = [link for link in links if link.startswith("notebooks/")]
    assert lessons == [f"notebooks/{p.stem}.html" for p in sorted((REPO / "notebooks").glob("*.ipynb"))]
    for folder in ("exercises", "solutions"):
        for notebook in (REPO / folder).glob("*.ipynb"):
            assert f"{folder}/{notebook.stem}.html" in links


def test_lesson_pages_have_navigation(site):
    out, _ = site
    page = (out / "notebooks" / "01-sync-vs-async.html").read_text(encoding="utf-8")
    assert page.count('class="course-nav"') == 2
    for href in ("00-start-here.html", "../index.html", "02-djangos-async-support.html",
                 "../exercises/01-sync-vs-async.html", "../solutions/01-sync-vs-async.html"):
        assert f'href="{href}"' in page, href


def test_every_internal_link_resolves(site):
    out, pages = site
    broken = []
    for page in pages:
        for link in relative_links(page):
            target = unquote(re.split(r"[#?]", link, maxsplit=1)[0])
            if not target or not (page.parent / target).resolve().is_file():
                broken.append(f"{page.relative_to(out)}: {link}")
    assert not broken, "\n".join(broken)


def test_no_link_points_to_a_notebook(site):
    out, pages = site
    stale = [f"{page.relative_to(out)}: {link}" for page in pages for link in LINK.findall(page.read_text("utf-8"))
             if re.search(r"\.ipynb(?:[#?]|$)", link, re.I)]
    assert not stale, "\n".join(stale)
