"""A static HTML copy of the executed notebooks, so the results can be read without starting Jupyter."""

from __future__ import annotations

import re
from pathlib import Path

from aqa_utils.workbook.profile import Profile


def export_html(prof: Profile) -> list[Path]:
    """Every executed notebook in ``<results_dir>/notebooks/`` as an HTML file (figures embedded) in
    ``<results_dir>/html/``, the stylesheet they all share once beside them (``STYLESHEET``); returns the HTML files
    written. Older exports of notebooks that are gone are removed, and the README's notebook list is rewritten to
    link the copies."""
    import nbformat
    from nbconvert import HTMLExporter

    source, target = prof.results_dir / "notebooks", prof.results_dir / "html"
    notebooks = sorted(source.glob("*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"{source}: no executed notebooks to export (run `make reproduce` first)")
    target.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name="lab")
    bodies = {}
    for path in notebooks:
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception as err:  # nbformat's errors do not name the file
            raise ValueError(f"{path}: not a readable notebook ({err})") from err
        bodies[target / f"{path.stem}.html"] = exporter.from_notebook_node(
            nb, resources={"metadata": {"name": path.stem}})[0]
    for out, body in share_stylesheet(bodies, target / STYLESHEET).items():
        out.write_text(without_unused_mermaid(body), encoding="utf-8")
    written = list(bodies)
    for stale in set(target.glob("*.html")) - set(written):
        stale.unlink()
    refresh_notebook_index(prof)
    return written


STYLESHEET = "notebook.css"
_STYLE = re.compile(r"<style[^>]*>(.*?)</style>\s*", re.S)


def share_stylesheet(bodies: dict[Path, str], css: Path) -> dict[Path, str]:
    """The pages with every ``<style>`` block that all of them carry (nbconvert's theme, ~0.25 MB a page) moved
    to the one file ``css``, linked where the first of them stood; blocks of one page only stay in it."""
    blocks = {out: _STYLE.findall(body) for out, body in bodies.items()}
    shared = [b for b in next(iter(blocks.values()), []) if all(b in found for found in blocks.values())]
    if not shared:
        return bodies
    css.write_text("\n".join(shared), encoding="utf-8")
    link = f'<link rel="stylesheet" href="{css.name}">\n'
    out = {}
    for page, body in bodies.items():
        first = True

        def swap(match: re.Match) -> str:
            nonlocal first
            if match.group(1) not in shared:
                return match.group(0)
            keep, first = link if first else "", False
            return keep

        out[page] = _STYLE.sub(swap, body)
    return out


_MODULE_SCRIPT = re.compile(r"<script type=\"module\">(.*?)</script>\s*", re.S)
_MERMAID_DIAGRAM = re.compile(r'class="[^"]*\bjp-Mermaid\b')


def without_unused_mermaid(body: str) -> str:
    """``body`` without nbconvert's mermaid loader (a ~420-line inline module, the same in every page) when the
    page has no mermaid diagram: the loader looks for ``.jp-Mermaid`` elements and does nothing without one. It is
    dropped rather than shared as a file because a browser refuses a module script from file:// (the usual way a
    static copy is opened)."""
    if _MERMAID_DIAGRAM.search(_MODULE_SCRIPT.sub("", body)):
        return body
    return _MODULE_SCRIPT.sub(lambda m: "" if "jp-Mermaid" in m.group(1) else m.group(0), body)


INDEX_START, INDEX_END = "<!-- notebooks: written by aqa_utils.workbook.report -->", "<!-- /notebooks -->"


def notebook_index(prof: Profile) -> str:
    """Markdown links to every executed notebook at its real path (and its HTML copy when exported), relative to
    ``<results_dir>/README.md``. Notebooks executed in place (nbval's CI copies) are linked in ``notebooks/``."""
    import os

    from aqa_utils.workbook.profile import repo_root

    root = repo_root()
    executed = sorted((prof.results_dir / "notebooks").glob("*.ipynb"))
    where = executed or sorted((root / "notebooks").glob("*.ipynb"))
    lines = [INDEX_START, "", "## The executed notebooks", ""]
    if not executed:
        lines += ["This profile's notebooks were executed in place (no `make reproduce` copies yet):", ""]
    for path in where:
        shown = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
        line = f"- [{shown}]({Path(os.path.relpath(path, prof.results_dir)).as_posix()})"
        html = prof.results_dir / "html" / f"{path.stem}.html"
        if executed and html.exists():
            line += f" ([static HTML]({Path(os.path.relpath(html, prof.results_dir)).as_posix()}))"
        lines.append(line)
    return "\n".join(lines + ["", INDEX_END])


def refresh_notebook_index(prof: Profile) -> Path | None:
    """Rewrite the notebook section of ``<results_dir>/README.md`` (after the HTML export), if the README exists."""
    readme = prof.results_dir / "README.md"
    if not readme.exists():
        return None
    text = readme.read_text()
    if INDEX_START not in text or INDEX_END not in text:
        raise ValueError(f"{readme}: no notebook section between {INDEX_START!r} and {INDEX_END!r}; rerun notebook 06")
    head, rest = text.split(INDEX_START, 1)
    readme.write_text(head + notebook_index(prof) + rest.split(INDEX_END, 1)[1])
    return readme
