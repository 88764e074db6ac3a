"""Warm kernels: inside a run, each notebook gets a fresh kernel that was started (and had that
notebook's imports done, nothing else) while the notebook before it ran; nothing crosses from one
notebook to the next, and the kernel left over at the run's end is killed."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import papermill as pm
import psutil
import pytest

from churn.reports import kernel
from churn.reports.preload import phase_imports

CELL = """import os, sys
print(json.dumps({"pid": os.getpid(), "preloaded": "matplotlib.pyplot" in sys.modules,
                  "unused": sorted(m for m in ("sklearn", "scipy.stats", "great_expectations") if m in sys.modules),
                  "leaked": "left_behind" in globals(), "cwd": os.getcwd()}))
left_behind = 1
import matplotlib.pyplot as plt
plt.plot([1, 2])"""


@pytest.fixture(autouse=True)
def _no_shared_zygote(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests choose the zygote themselves, whatever this process was given."""
    monkeypatch.delenv("CHURN_KERNEL_ZYGOTE", raising=False)


@pytest.fixture()
def notebook(tmp_path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import json"), nbformat.v4.new_code_cell(CELL)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "in.ipynb")
    return tmp_path / "in.ipynb"


def _run(notebook: Path, out: Path) -> tuple[dict, list[str]]:
    executed = pm.execute_notebook(
        notebook, out, kernel_manager_class="churn.reports.kernel.IPCKernelManager", progress_bar=False
    )
    outputs = executed.cells[1].outputs
    facts = json.loads(next(o["text"] for o in outputs if o["output_type"] == "stream"))
    return facts, [kind for o in outputs if o["output_type"] == "display_data" for kind in o["data"]]


@pytest.mark.slow  # starts real kernels importing the scientific stack (make test runs it)
def test_each_notebook_of_a_run_adopts_the_kernel_started_while_the_one_before_ran(notebook, tmp_path) -> None:
    kernel.enable_warm_kernels([phase_imports(notebook)] * 3)
    try:
        first, _ = _run(notebook, tmp_path / "1.ipynb")
        warm = kernel._STATE["warm"]
        assert warm is not None  # started while the first notebook ran
        warm_pid = warm.provisioner.process.pid
        second, images = _run(notebook, tmp_path / "2.ipynb")
        left = kernel._STATE["warm"]
    finally:
        kernel.discard_warm_kernels()
    assert not first["preloaded"] and second["preloaded"] and second["pid"] == warm_pid != first["pid"]
    assert second["unused"] == []  # only what the notebook imports
    assert not second["leaked"] and second["cwd"] == first["cwd"]  # a fresh process, same place
    assert sorted(images) == ["image/png", "text/plain"]  # the inline backend still draws
    assert not psutil.pid_exists(first["pid"]) and not psutil.pid_exists(second["pid"])
    assert left is not None and left.provisioner.process.poll() is not None  # killed at the run's end
    assert kernel._STATE["warm"] is None


@pytest.mark.slow  # starts real kernels (make test runs it)
def test_the_last_phase_of_a_run_starts_no_kernel_for_nothing(notebook, tmp_path) -> None:
    kernel.enable_warm_kernels([(), ()])
    try:
        _run(notebook, tmp_path / "1.ipynb")
        assert kernel._STATE["warm"] is not None  # a second phase is coming
        _run(notebook, tmp_path / "2.ipynb")
        assert kernel._STATE["warm"] is None  # none after the last one (an Airflow task: one phase)
    finally:
        kernel.discard_warm_kernels()


def test_outside_a_run_no_kernel_is_started_ahead(notebook, tmp_path) -> None:
    facts, _ = _run(notebook, tmp_path / "1.ipynb")
    assert not facts["preloaded"] and kernel._STATE["warm"] is None
