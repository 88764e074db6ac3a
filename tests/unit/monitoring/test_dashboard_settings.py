"""The dashboards read the API's ``Settings`` (one configuration source), never os.environ."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from churn.monitoring.dashboard import open_workspace
from churn.serving.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
DASHBOARDS = sorted((ROOT / "notebooks" / "dashboards").glob("*.ipynb"))


def _code(notebook: Path) -> str:
    cells = json.loads(notebook.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


@pytest.mark.parametrize("notebook", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboards_take_their_configuration_from_settings_only(notebook):
    """No dashboard reads environment variables or hard-codes a path or model name itself."""
    code = _code(notebook)
    assert "Settings()" in code and "open_workspace(settings)" in code and "settings.model_name" in code
    for banned in ("os.environ", "os.getenv", "import os", "churn_model", "churn.duckdb", "Warehouse("):
        assert banned not in code, f"{notebook.name} uses {banned}"


def test_dashboards_exist():
    assert {p.stem for p in DASHBOARDS} == {"monitoring", "ab_testing"}


def test_relative_settings_count_from_the_project_folder(monkeypatch, tmp_path):
    """Voila runs the kernel in notebooks/dashboards: CHURN_DATA_DIR=data still means <project>/data."""
    project = tmp_path / "project"
    kernel_dir = project / "notebooks" / "dashboards"
    kernel_dir.mkdir(parents=True)
    (project / "pipeline.yaml").write_text("tasks: []\n")
    for name in ("CHURN_WAREHOUSE", "CHURN_MODELS_DIR", "CHURN_MODEL_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHURN_DATA_DIR", "data/purchase_log")
    warehouse, registry = open_workspace(Settings(), cwd=kernel_dir)
    assert warehouse.path == project / "data" / "purchase_log" / "churn.duckdb"
    assert registry.models_dir == project / "data" / "purchase_log" / "models"


def test_absolute_and_explicit_settings_are_kept(monkeypatch, tmp_path):
    """CHURN_WAREHOUSE and CHURN_MODELS_DIR win over the data folder, as they do for the API."""
    monkeypatch.setenv("CHURN_DATA_DIR", str(tmp_path / "ignored"))
    monkeypatch.setenv("CHURN_WAREHOUSE", str(tmp_path / "w" / "other.duckdb"))
    monkeypatch.setenv("CHURN_MODELS_DIR", str(tmp_path / "m"))
    monkeypatch.setenv("CHURN_MODEL_NAME", "retail")
    settings = Settings()
    warehouse, registry = open_workspace(settings, cwd=tmp_path)
    assert (warehouse.path, registry.models_dir, settings.model_name) == (
        tmp_path / "w" / "other.duckdb",
        tmp_path / "m",
        "retail",
    )
