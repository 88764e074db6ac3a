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
