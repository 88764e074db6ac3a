"""Ploomber task hooks: the last good report of a phase survives a failed run, every successful
run gets a stakeholder HTML report, and ``reports/index.html`` is refreshed after every phase.

Papermill writes the executed notebook to its product path cell by cell, so a failing run used to
leave ``reports/NN_<phase>.ipynb`` holding the failed notebook while ``.html`` (converted only on
success) and the warehouse (every write is one transaction) still came from the last good run.
The hooks, set on every notebook task in ``pipeline.yaml``:

* ``on_render`` (before anything runs): keep a copy of the current report,
  ``.NN_<phase>.ipynb.last-good`` (hidden, so globs over ``*.ipynb`` never see it);
* ``on_failure``: move the failed notebook to ``NN_<phase>.failed.ipynb`` and put the copy back;
* ``on_finish`` (success): drop the copy and any ``.failed.ipynb`` of an earlier failure.

``finish_report`` and ``fail_report`` (the hooks ``pipeline.yaml`` sets) add the readable side:
the ``.html`` is written from the executed notebook without code or parameter cells
(:mod:`churn.reports.html`) and the index lists every task of the DAG (:mod:`churn.reports.index`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from churn.pipeline import RECEIPT_KEY

NB_KEY = "nb_ipynb"  # the product key of a task's executed notebook (pipeline.yaml)


def _notebook(product: Any) -> Path:
    """The executed-notebook path of a task's products (a MetaProduct or a single File)."""
    try:
        return Path(str(product[NB_KEY]))
    except (KeyError, TypeError):
        return Path(str(product))


def last_good_path(notebook: Path) -> Path:
    return notebook.with_name(f".{notebook.name}.last-good")


def failed_path(notebook: Path) -> Path:
    """``NN_phase.ipynb`` -> ``NN_phase.failed.ipynb``."""
    return notebook.with_name(f"{notebook.stem}.failed{notebook.suffix}")


def keep_last_good(product: Any) -> None:
    """``on_render``: copy the current report aside before the task may overwrite it."""
    notebook = _notebook(product)
    if notebook.is_file():
        tmp = last_good_path(notebook).with_suffix(".tmp")
        tmp.write_bytes(notebook.read_bytes())
        os.replace(tmp, last_good_path(notebook))


def restore_last_good(product: Any) -> None:
    """``on_failure``: the failed notebook becomes ``NN_phase.failed.ipynb``; the last good
    report, if there was one, is back at its own name."""
    notebook = _notebook(product)
    kept = last_good_path(notebook)
    if notebook.is_file():
        os.replace(notebook, failed_path(notebook))
    if kept.is_file():
        os.replace(kept, notebook)


def drop_last_good(product: Any) -> None:
    """``on_finish``: the run succeeded, so its report is the good one."""
    notebook = _notebook(product)
    last_good_path(notebook).unlink(missing_ok=True)
    failed_path(notebook).unlink(missing_ok=True)


HTML_KEY = "nb_html"


def finish_report(product: Any, task: Any) -> None:
    """``on_finish``: the run succeeded; write its HTML report and refresh the index."""
    from churn.reports.html import render_report

    drop_last_good(product)
    render_report(_notebook(product), Path(str(product[HTML_KEY])))
    write_dag_index(task.dag)


def fail_report(product: Any, task: Any) -> None:
    """``on_failure``: keep the last good report, then refresh the index (the phase shows as failed)."""
    restore_last_good(product)
    write_dag_index(task.dag)


def write_dag_index(dag: Any) -> Path | None:
    """``reports/index.html`` for every notebook task of ``dag`` (in the DAG's order)."""
    from churn.reports.index import Phase, write_index

    phases, models_dirs = [], set()
    for name in dag:
        product = dag[name].product
        if "models_dir" in dag[name].params:
            models_dirs.add(Path(str(dag[name].params["models_dir"])))
        try:
            notebook, html = Path(str(product[NB_KEY])), Path(str(product[HTML_KEY]))
        except (KeyError, TypeError):
            continue
        phases.append(Phase(name, notebook, html, _optional(product, RECEIPT_KEY)))
    if not phases:
        return None
    reports_dir = phases[0].notebook.parent
    return write_index(reports_dir, phases, extra_links(reports_dir, sorted(models_dirs)))


def _optional(product: Any, key: str) -> Path | None:
    try:
        return Path(str(product[key]))
    except KeyError:
        return None


def extra_links(reports_dir: Path, models_dirs: Sequence[Path] = ()) -> list[tuple[str, Path]]:
    """Other pages worth a link from the index (only those that exist are shown): the data
    quality reports and the model card of every registered model."""
    from churn.reports.model_card import CARD_SUFFIX

    cards = sorted(
        (card for models_dir in models_dirs for card in models_dir.glob(f"*/v*{CARD_SUFFIX}")),
        key=lambda card: (card.parent.name, int("0" + card.name[1:].removesuffix(CARD_SUFFIX))),
    )
    return [
        ("raw data quality", reports_dir / "data_quality" / "index.html"),
        ("feature quality", reports_dir / "feature_quality" / "index.html"),
        (
            "raw data quality: Great Expectations Data Docs (need internet)",
            reports_dir / "data_quality" / "data_docs" / "index.html",
        ),
        (
            "feature quality: Great Expectations Data Docs (need internet)",
            reports_dir / "feature_quality" / "data_docs" / "index.html",
        ),
        *[(f"model card: {card.parent.name} {card.name.removesuffix(CARD_SUFFIX)}", card) for card in cards],
    ]
