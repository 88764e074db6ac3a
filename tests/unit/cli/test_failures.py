"""The one-line cause of a failed phase (churn.cli.failures, churn.cli.runner)."""

from __future__ import annotations

import io
import subprocess
import sys

import nbclient
import nbformat
import pytest

from churn.cli import failures
from churn.cli.runner import _banner_at, _pump


@pytest.fixture(scope="module")
def failed_notebook(tmp_path_factory) -> object:
    """A notebook really executed by a kernel until a cell raised, saved as a failed report."""
    folder = tmp_path_factory.mktemp("reports")
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("raise ValueError('label rate 0.004 is below 0.5\\nsecond line: the details')"),
    ])  # fmt: skip
    with pytest.raises(nbclient.exceptions.CellExecutionError):
        nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    path = folder / "04_check_features.failed.ipynb"
    nbformat.write(nb, path)
    return path


def test_cause_comes_from_the_failed_notebooks_error_output(failed_notebook):
    cause = failures.find_cause(failed_notebook.parent, since=0, output="lots of\nploomber output\n")
    assert cause.phase == "check-features" and cause.notebook == failed_notebook
    assert cause.line() == "error: check-features failed: ValueError: label rate 0.004 is below 0.5"
    assert cause.details() == ["second line: the details"]


def test_an_older_failed_notebook_is_not_blamed(failed_notebook):
    """Only notebooks written during this run count (a stale one from an earlier run does not)."""
    later = failed_notebook.stat().st_mtime + 3600
    cause = failures.find_cause(failed_notebook.parent, since=later, output="KeyError: 'links'\n", phase="plot")
    assert cause.line() == "error: plot failed: KeyError: 'links'"


def test_without_a_notebook_the_last_exception_line_of_the_output_is_the_cause(tmp_path):
    output = "\x1b[31mTraceback ...\nploomber.exceptions.DAGRenderError: bad param\nNeed help? https://x\n"
    assert failures.find_cause(tmp_path, 0, output).line() == "error: build failed: DAGRenderError: bad param"
    assert failures.find_cause(tmp_path, 0, "\n  it broke  \n").line() == "error: build failed: Error: it broke"


def test_the_terminal_stops_at_ploombers_failure_report_the_log_keeps_everything():
    text = "progress 10/10\\n========== DAG build failed ==========\\nTraceback x\\n"
    script = f"import sys; sys.stdout.write('{text}')"
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    echo, log = io.BytesIO(), io.BytesIO()
    output = _pump(proc, echo, log)
    assert echo.getvalue() == b"progress 10/10\n"
    assert log.getvalue() == output and b"Traceback x" in output
    assert _banner_at(b"no banner here") == -1
