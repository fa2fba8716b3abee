"""HTML export of an executed notebook: no code, no prompts, nothing loaded from other hosts."""

from __future__ import annotations

import copy
import os
from pathlib import Path

from satmodel.jobs.files import write_text
from satmodel.resources import template_path

TEMPLATE_NAME = "satmodel_report"


FIGURE_TEXT = "Figure: "


def alt_text(output, section: str) -> str:
    """An image's alt text: the figure's own description (its ``text/plain``, ``Figure: ...``,
    see :func:`satmodel.reporting.figures.new_figure`), else a chart of the section it is in."""
    plain = output.get("data", {}).get("text/plain", "")
    plain = "".join(plain) if isinstance(plain, list) else str(plain)
    if plain.startswith(FIGURE_TEXT) and plain[len(FIGURE_TEXT) :].strip():
        return plain[len(FIGURE_TEXT) :].strip()
    return f"Chart of the section {section}" if section else "Chart"


def _heading(cell, current: str) -> str:
    """The last Markdown heading of a cell, else ``current``."""
    lines = [line for line in cell.source.splitlines() if line.startswith("#")]
    return lines[-1].lstrip("#").strip() if lines else current


def html_notebook(nb):
    """A copy of the executed notebook for the HTML: no stderr streams, no hidden cells, an
    alt text on every figure (``metadata["image/png"]["alt"]``, used by the template)."""
    nb = copy.deepcopy(nb)
    cells = []
    section = ""
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if cell.cell_type == "markdown":
            section = _heading(cell, section)
        if tags & {"remove-cell", "parameters", "injected-parameters"}:
            continue
        if cell.cell_type == "code":
            if "remove-output" in tags:
                cell.outputs = []
            cell.outputs = [
                out
                for out in cell.outputs
                if not (out.get("output_type") == "stream" and out.get("name") == "stderr")
            ]
            for out in cell.outputs:
                if "image/png" in out.get("data", {}):
                    meta = out.setdefault("metadata", {})
                    png = dict(meta.get("image/png", {}))
                    png.setdefault("alt", alt_text(out, section))
                    meta["image/png"] = png
        cells.append(cell)
    nb.cells = cells
    return nb


def export_html(notebook: str | os.PathLike, html: str | os.PathLike, title: str) -> Path:
    """Export an executed notebook to self-contained HTML without code, prompts or CDN requests.

    Uses the ``satmodel_report`` template (package data ``satmodel/templates/``): the lab
    template without its require.js, MathJax, mermaid and widget script tags; figures are
    embedded as data URIs.

    Parameters
    ----------
    notebook : the executed ``.ipynb``.
    html : the file to write (atomically).
    title : the page title.

    Returns
    -------
    Path
    """
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(notebook, as_version=4)
    nb.metadata["title"] = title
    exporter = HTMLExporter(
        template_name=TEMPLATE_NAME,
        extra_template_basedirs=[str(template_path(TEMPLATE_NAME).parent)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
        mathjax_url="",
        require_js_url="",
        mermaid_js_url="",
        mermaid_layout_elk_js_url="",
        widget_renderer_url="",
        jupyter_widgets_base_url="",
    )
    body, _ = exporter.from_notebook_node(html_notebook(nb))
    target = Path(html)
    write_text(target, body)
    return target
