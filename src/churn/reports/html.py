"""Stakeholder HTML for an executed phase notebook: outputs and prose, no code, offline.

The ``.ipynb`` keeps everything (code, parameters, outputs) for whoever wants to re-run or audit
it; the ``.html`` next to it is for reading: code inputs and the ``parameters`` /
``injected-parameters`` cells are left out, and nothing is loaded from a CDN (nbconvert's lab
template would pull require.js and MathJax from cdnjs, which an offline browser cannot reach).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import jinja2
import nbformat
from nbconvert import HTMLExporter
from traitlets.config import Config

PARAMETER_TAGS = ("parameters", "injected-parameters")

# The lab template without the blocks that only load remote scripts: require.js (used by
# widgets and old-style JS outputs, which reports do not have), MathJax and mermaid.
_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
"""
TEMPLATE_NAME = "churn_report.html.j2"


@cache
def exporter(show_code: bool = False) -> HTMLExporter:
    """An HTML exporter for reports: no code inputs (unless ``show_code``), no parameter cells,
    no remote scripts. One per process and setting: compiling its templates took 2/3 of a
    report's time, ten times per build; it keeps no state from one notebook to the next."""
    config = Config()
    config.TagRemovePreprocessor.enabled = True
    config.TagRemovePreprocessor.remove_cell_tags = set(PARAMETER_TAGS)
    html = HTMLExporter(
        config=config, template_name="lab", extra_loaders=[jinja2.DictLoader({TEMPLATE_NAME: _TEMPLATE})]
    )
    html.template_file = TEMPLATE_NAME
    html.exclude_input = not show_code
    html.exclude_input_prompt = True
    html.exclude_output_prompt = True
    return html


def render_report(notebook: Path, html: Path, title: str | None = None, show_code: bool = False) -> Path:
    """Write ``html`` from the executed ``notebook`` (atomically: a reader never sees half a file).

    Args:
        notebook: the executed ``.ipynb`` (left untouched).
        html: where the report goes.
        title: the page title (default: the notebook's first H1, else its file name).
        show_code: keep the code inputs (the parameter cells are dropped either way).
    """
    nb = nbformat.read(notebook, as_version=4)
    nb.metadata["title"] = title or first_heading(nb) or notebook.stem
    body, _ = exporter(show_code).from_notebook_node(nb, resources={"metadata": {"name": notebook.stem}})
    tmp = html.with_name(f".{html.name}.tmp")
    tmp.write_text(body, encoding="utf-8")
    os.replace(tmp, html)
    return html


def first_heading(nb: nbformat.NotebookNode) -> str | None:
    """The text of the notebook's first markdown H1, if any."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return None
