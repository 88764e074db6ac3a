"""Report hooks: a failed run never overwrites the last good report of a phase."""

from __future__ import annotations

from pathlib import Path

from churn.reports import drop_last_good, keep_last_good, restore_last_good


def _products(reports: Path) -> dict[str, Path]:
    # Ploomber passes a MetaProduct; indexing it by key gives a File whose str() is the path.
    return {"nb_ipynb": reports / "02_check_raw_data.ipynb", "nb_html": reports / "02_check_raw_data.html"}


def test_failed_run_keeps_the_last_good_report_and_writes_the_failed_one_next_to_it(tmp_path):
    """Render keeps a copy; papermill overwrites the report cell by cell and fails; on_failure
    moves the failed notebook to NN_phase.failed.ipynb and puts the good one back."""
    product = _products(tmp_path)
    product["nb_ipynb"].write_text("good run")
    keep_last_good(product)
    product["nb_ipynb"].write_text("failed run")  # what papermill leaves behind
    restore_last_good(product)
    assert product["nb_ipynb"].read_text() == "good run"
    assert (tmp_path / "02_check_raw_data.failed.ipynb").read_text() == "failed run"
    assert sorted(p.name for p in tmp_path.glob("*.ipynb")) == [
        "02_check_raw_data.failed.ipynb", "02_check_raw_data.ipynb"]


def test_success_clears_the_copy_and_an_earlier_failure(tmp_path):
    """After a good run its report stands alone: no hidden copy, no stale .failed.ipynb."""
    product = _products(tmp_path)
    product["nb_ipynb"].write_text("good run")
    keep_last_good(product)
    product["nb_ipynb"].write_text("failed run")
    restore_last_good(product)
    keep_last_good(product)
    product["nb_ipynb"].write_text("next good run")
    drop_last_good(product)
    assert [p.name for p in tmp_path.iterdir()] == ["02_check_raw_data.ipynb"]
    assert product["nb_ipynb"].read_text() == "next good run"


def test_first_run_failing_leaves_only_the_failed_notebook(tmp_path):
    """With no earlier report there is nothing to restore: the failure is kept, named as such."""
    product = _products(tmp_path)
    keep_last_good(product)
    product["nb_ipynb"].write_text("failed run")
    restore_last_good(product)
    assert [p.name for p in tmp_path.iterdir()] == ["02_check_raw_data.failed.ipynb"]


def _executed_notebook(path: Path, *, exception: bool = False, duration: float = 12.5) -> Path:
    """A notebook as Papermill leaves it: parameter cells, code with outputs, papermill metadata."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    nb = new_notebook(cells=[
        new_markdown_cell("# Train model\nWhat this phase does."),
        new_code_cell("secret_parameter = None", metadata={"tags": ["parameters"]}),
        new_code_cell("secret_parameter = 'injected-value'", metadata={"tags": ["injected-parameters"]}),
        new_code_cell("import pandas as pd\nvisible_code_marker = 1\nprint('AUC 0.81')",
                      outputs=[new_output("stream", name="stdout", text="AUC 0.81\n")]),
    ])  # fmt: skip
    nb.metadata["papermill"] = {"duration": duration, "end_time": "2026-12-05T01:02:03.000001+00:00",
                                "start_time": "2026-12-05T01:01:50+00:00", "exception": exception or None}
    nbformat.write(nb, path)
    return path


def test_html_report_shows_outputs_and_prose_but_no_code_or_parameters(tmp_path):
    """The .html is for reading: markdown and outputs stay; code inputs and both parameter
    cells go; the .ipynb is not touched."""
    from churn.reports.html import render_report

    notebook = _executed_notebook(tmp_path / "05_train_model.ipynb")
    before = notebook.read_bytes()
    page = render_report(notebook, tmp_path / "05_train_model.html").read_text()
    assert "AUC 0.81" in page and "What this phase does." in page
    for hidden in ("visible_code_marker", "import pandas", "secret_parameter", "injected-value"):
        assert hidden not in page, hidden
    assert "<title>Train model</title>" in page
    assert notebook.read_bytes() == before


def test_html_report_loads_nothing_from_the_network(tmp_path):
    """No <script src>, <link href> or @import pointing at another host (require.js and MathJax
    came from cdnjs): the report renders the same offline."""
    import re

    from churn.reports.html import render_report

    page = render_report(_executed_notebook(tmp_path / "a.ipynb"), tmp_path / "a.html").read_text()
    remote = re.findall(r"""(?:src|href)\s*=\s*["'](?:https?:)?//[^"']+|@import\s+url\(["']?https?://[^)]+""", page)
    assert remote == []


def test_html_report_can_keep_the_code_when_asked(tmp_path):
    from churn.reports.html import render_report

    page = render_report(_executed_notebook(tmp_path / "a.ipynb"), tmp_path / "a.html", show_code=True).read_text()
    assert "visible_code_marker" in page
    assert "injected-value" not in page


def test_html_reports_rendered_in_a_row_equal_each_rendered_alone(tmp_path):
    """The exporter is shared by the reports of a build (its templates compile once): a report
    rendered after another is byte for byte the one a fresh exporter renders."""
    import nbformat

    from churn.reports.html import exporter, render_report

    first = _executed_notebook(tmp_path / "05_train_model.ipynb")
    second = _executed_notebook(tmp_path / "07_score_batch.ipynb")
    nb = nbformat.read(second, as_version=4)
    nb.cells[0].source = "# Score batch\nAnother phase."
    nbformat.write(nb, second)
    render_report(first, tmp_path / "first.html")
    in_a_row = render_report(second, tmp_path / "in_a_row.html").read_bytes()
    exporter.cache_clear()
    alone = render_report(second, tmp_path / "alone.html").read_bytes()
    assert in_a_row == alone and b"<title>Score batch</title>" in in_a_row and b"Train model" not in in_a_row


def test_index_lists_every_phase_with_status_time_and_headline_figures(tmp_path):
    """ok / failed / not run are told apart; time comes from Papermill's metadata; headline
    figures from the receipt (fingerprints and timestamps left out)."""
    import json

    from churn.reports.index import Phase, write_index

    ok = _executed_notebook(tmp_path / "05_train_model.ipynb", duration=14.04)
    receipt = tmp_path / "train_model.json"
    receipt.write_text(json.dumps({"written_at": "x", "version": 3, "auc": 0.75444, "stage": "production",
                                   "counts": {"users": 1000}, "fingerprint": "abc:123", "drifted": ["a", "b"]}))
    (tmp_path / "05_train_model.html").write_text("report")
    good = _executed_notebook(tmp_path / "08_monitor.ipynb")
    _executed_notebook(tmp_path / "08_monitor.failed.ipynb", exception=True)
    phases = [Phase("train-model", ok, tmp_path / "05_train_model.html", receipt),
              Phase("monitor", good, tmp_path / "08_monitor.html", None),
              Phase("ab-test", tmp_path / "10_ab_test.ipynb", tmp_path / "10_ab_test.html", None)]
    page = write_index(tmp_path, phases).read_text()
    rows = page.split("<tr class=")[1:]
    assert [r.split('"')[1] for r in rows] == ["ok", "failed", "not-run"]
    assert '<a href="05_train_model.html">train-model</a>' in rows[0]
    assert "14.0 s" in rows[0] and "2026-12-05 01:02:03" in rows[0]
    for figure in ("<b>auc</b>: 0.754", "<b>version</b>: 3", "<b>counts users</b>: 1,000", "<b>drifted</b>: a, b"):
        assert figure in rows[0], figure
    assert "abc:123" not in page and "written_at" not in page
    assert "last run failed" in rows[1] and "last good run" in rows[1]
    assert "1 ok, 1 failed, 1 not run" in page


def test_index_links_the_quality_reports_and_every_model_card_in_version_order(tmp_path):
    from churn.reports import extra_links

    models = tmp_path / "models" / "churn_model"
    models.mkdir(parents=True)
    for version in (10, 2, 1):
        (models / f"v{version}.card.html").write_text("card")
        (models / f"v{version}.joblib").write_text("artifact")
    docs = tmp_path / "reports" / "data_quality" / "data_docs"
    docs.mkdir(parents=True)
    (docs / "index.html").write_text("docs")
    links = [label for label, path in extra_links(tmp_path / "reports", [tmp_path / "models"]) if path.exists()]
    assert links == ["raw data quality: Great Expectations Data Docs (need internet)", "model card: churn_model v1",
                     "model card: churn_model v2", "model card: churn_model v10"]
