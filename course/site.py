"""A static HTML copy of the course, for readers who want to read it without running Jupyter.

The pages show the outputs stored in the notebooks: nothing is executed, so the site is exactly what the
repository holds and builds in seconds. The layout mirrors the repository (notebooks/, exercises/,
solutions/), so a relative link between notebooks stays correct once `.ipynb` becomes `.html`.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

from sandbox.paths import REPO

FOLDERS = ("notebooks", "exercises", "solutions")
COURSE_TITLE = "Async Django, hands-on"

# href="..." or src="..." whose target is a relative .ipynb path, with an optional #fragment or ?query.
_IPYNB_LINK = re.compile(r'''((?:href|src)\s*=\s*["'])(?![a-z][a-z0-9+.-]*:|/|#)([^"'#?]*?)\.ipynb(?=[#?"'])''', re.I)
_BODY_OPEN = re.compile(r"<body[^>]*>", re.I)
_H1 = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.M)


def title_of(path: Path) -> str:
    """The notebook's first H1: the title a learner sees in Jupyter, so the site uses the same one."""
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "markdown" and (match := _H1.search(cell.source)):
            return match.group(1)
    return path.stem


def _inline(text: str) -> str:
    """Markdown title to HTML: escape it, and keep `code` spans as code (titles name APIs)."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def rewrite_links(page: str) -> str:
    """Point links to other notebooks at their pages: the site mirrors the repository, so only the suffix changes."""
    return _IPYNB_LINK.sub(lambda m: f"{m.group(1)}{m.group(2)}.html", page)


def _nav(links: list[tuple[str, str]]) -> str:
    """A small bar of (label, href) links, styled inline so it needs no stylesheet of its own."""
    items = " | ".join(f'<a href="{href}">{html.escape(label)}</a>' for label, href in links)
    return (f'<nav class="course-nav" style="font-family:sans-serif;padding:0.5em 1em;'
            f'border-bottom:1px solid #ddd;border-top:1px solid #ddd">{items}</nav>')


def _inject_nav(page: str, nav: str) -> str:
    """Put the nav at the top and bottom of <body>, so it is there whichever end a reader finishes at."""
    page = _BODY_OPEN.sub(lambda m: m.group(0) + "\n" + nav, page, count=1)
    head, sep, tail = page.rpartition("</body>")
    return f"{head}{nav}\n{sep}{tail}" if sep else page + nav


def _lesson_nav(chapters: list[str], i: int, repo: Path) -> str:
    """previous / index / next, then the chapter's exercise and solution when it has them (00 has none)."""
    links = []
    if i > 0:
        links.append(("← previous", f"{chapters[i - 1]}.html"))
    links.append(("course index", "../index.html"))
    if i + 1 < len(chapters):
        links.append(("next →", f"{chapters[i + 1]}.html"))
    for folder in ("exercises", "solutions"):
        if (repo / folder / f"{chapters[i]}.ipynb").exists():
            links.append((folder[:-1], f"../{folder}/{chapters[i]}.html"))
    return _nav(links)


def _practice_nav(folder: str, name: str, repo: Path) -> str:
    """An exercise or solution page leads back to its lesson, the index, and its counterpart."""
    other = "solutions" if folder == "exercises" else "exercises"
    links = [("course index", "../index.html")]
    if (repo / "notebooks" / f"{name}.ipynb").exists():
        links.append(("lesson", f"../notebooks/{name}.html"))
    if (repo / other / f"{name}.ipynb").exists():
        links.append((other[:-1], f"../{other}/{name}.html"))
    return _nav(links)


def _index(chapters: list[str], repo: Path) -> str:
    """The course map: each chapter in order, with its lesson, exercise and solution."""
    rows = []
    for name in chapters:
        parts = [f'<a href="notebooks/{name}.html">{_inline(title_of(repo / "notebooks" / f"{name}.ipynb"))}</a>']
        for folder in ("exercises", "solutions"):
            if (repo / folder / f"{name}.ipynb").exists():
                parts.append(f'<a href="{folder}/{name}.html">{folder[:-1]}</a>')
        rows.append(f"<li>{' · '.join(parts)}</li>")
    items = "\n".join(rows)
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{COURSE_TITLE}</title>
<style>body{{font-family:sans-serif;max-width:50em;margin:2em auto;line-height:1.6}}</style></head>
<body>
<h1>{COURSE_TITLE}</h1>
<p>A course on async Django 6.1. These pages show the notebooks with the outputs they were saved with; to run
the code, open the notebooks in JupyterLab.</p>
<ol start="0">
{items}
</ol>
</body>
</html>
"""


def build_site(out: Path, repo: Path = REPO) -> list[Path]:
    """Convert every notebook of the course to HTML under `out`, with an index; return the pages written.

    Chapters come from the notebooks folder, sorted by their NN- prefix, so a new chapter needs no change here.
    """
    out = Path(out)
    exporter = HTMLExporter(template_name="lab")  # images stay embedded as data: URIs, as stored
    chapters = sorted(p.stem for p in (repo / "notebooks").glob("*.ipynb"))
    written = []
    for folder in FOLDERS:
        names = chapters if folder == "notebooks" else sorted(p.stem for p in (repo / folder).glob("*.ipynb"))
        for name in names:
            source = repo / folder / f"{name}.ipynb"
            page, _ = exporter.from_notebook_node(nbformat.read(source, as_version=4),
                                                  resources={"metadata": {"name": title_of(source).replace("`", "")}})
            if folder == "notebooks":
                nav = _lesson_nav(chapters, chapters.index(name), repo)
            else:
                nav = _practice_nav(folder, name, repo)
            target = out / folder / f"{name}.html"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(_inject_nav(rewrite_links(page), nav), encoding="utf-8")
            written.append(target)
    index = out / "index.html"
    index.write_text(_index(chapters, repo), encoding="utf-8")
    return [index, *written]
