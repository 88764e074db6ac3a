"""A project whose data lives in a temp dir: the default offline store and two registered
versions (v1 production, v2 registered), driven through `churn --set ...`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from churn.cli import main
from churn.features import default_feature_spec
from churn.modeling.predict import ChurnPredictor
from churn.modeling.train import labelled, make_pipeline
from churn.registry import ModelRegistry
from churn.store.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[3]
MODEL = "churn_model"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The API settings the CLI reuses read CHURN_* and REDIS_URL: none may leak in."""
    for name in list(os.environ):
        if name.startswith("CHURN_") or name == "REDIS_URL":
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def cli_base(
    default_warehouse: Warehouse, default_features: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The default raw data and offline store (``default_features`` wrote it into
    ``default_warehouse``), copied, plus the registry."""
    root = tmp_path_factory.mktemp("cli")
    shutil.copy2(default_warehouse.path, root / "churn.duckdb")
    warehouse = Warehouse(root / "churn.duckdb")
    spec = default_feature_spec()
    registry = ModelRegistry(warehouse, root / "models")
    rows = labelled(default_features)
    for c, stage in ((1.0, "production"), (0.01, "none")):
        pipeline = make_pipeline(c).fit(rows[spec.feature_names].to_numpy(float), rows["label"].to_numpy(int))
        predictor = ChurnPredictor(pipeline, spec.feature_names, model_name=MODEL, bands=(0.02, 0.1))
        registry.register_model(
            MODEL,
            model=predictor,
            features=spec.feature_names,
            metrics={"auc": 0.7 + c / 100},
            params={"C": c, "feature_set": spec.version},
            stage=stage,
            reason="test fixture",
        )
    return root


@pytest.fixture()
def data_dir(cli_base: Path, tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(cli_base, target)
    return target


@pytest.fixture()
def churn(data_dir: Path, embedded_redis, redis_client):
    """``churn(*args)`` -> click Result, on this test's data dir and the session's Redis."""
    sets = [
        "--set",
        f"data_dir={data_dir}",
        "--set",
        f"warehouse={data_dir / 'churn.duckdb'}",
        "--set",
        f"models_dir={data_dir / 'models'}",
        "--set",
        f"redis_url={embedded_redis.url}",
    ]

    def run(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(main, ["--project", str(ROOT), *sets, *args], input=input, catch_exceptions=False)

    return run
