"""Your own data through the whole DAG: a product log (nine event types, subscriptions,
returning users, no churn dates) built with only a dataset file, in its own workspace next to
the synthetic build; each keeps its own production model and the API serves the one asked for."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import yaml

from churn.data.examples import ProductLogParams, product_log
from churn.dataset import load_dataset, ploomber_args
from churn.registry import ModelRegistry
from churn.store import offline
from churn.store.warehouse import Warehouse
from tests.pipeline.conftest import copy_build

ROOT = Path(__file__).resolve().parents[2]
# one worker builds the product log once (a module fixture) and runs both tests
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("own_data")]


@pytest.fixture(scope="module")
def own_build(small_build: Path, run_build, embedded_redis, tmp_path_factory) -> tuple[Path, Path]:
    """(synthetic data dir, product-log data dir): the product log built after the synthetic one,
    in a copy of the session's small build (which stays read-only)."""
    src = tmp_path_factory.mktemp("product_src")
    (src / "data").mkdir()
    for name, frame in product_log(ProductLogParams(n_users=300, seed=3)).items():
        frame.to_csv(src / "data" / f"{name}.csv", index=False)
    data = yaml.safe_load((ROOT / "examples/product_log/dataset.yaml").read_text())
    data["features"] = str(ROOT / "examples/product_log/features.yaml")
    (src / "dataset.yaml").write_text(yaml.safe_dump(data))
    root = copy_build(small_build, tmp_path_factory.mktemp("own") / "build", embedded_redis.url)
    args = ploomber_args(src / "dataset.yaml", root)  # workspace under the synthetic build's root
    result = run_build(root / "ignored", embedded_redis.url, *args)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return root / "data", root / "data" / load_dataset(src / "dataset.yaml").name


def test_each_workspace_keeps_its_own_production_model(own_build: tuple[Path, Path]) -> None:
    synthetic, product = own_build
    for folder, name in ((synthetic, None), (product, "product_log")):
        wh = Warehouse(folder / "churn.duckdb")
        production = ModelRegistry(wh, folder / "models").get_production("churn_model")
        assert production is not None and production.metrics["auc"] > 0.5
        if name:
            assert production.params["dataset"] == name
            assert offline.feature_set(wh)[0].startswith("product_log.")  # its own Redis namespace
    receipts = product / "products"
    assert json.loads((receipts / "build_features.json").read_text())["rule"] == "subscription"
    assert json.loads((receipts / "ab_test.json").read_text())["production_version"] >= 1
    assert (synthetic.parent / "reports" / "product_log" / "10_ab_test.html").exists()


def test_the_api_serves_the_workspace_it_is_pointed_at(own_build: tuple[Path, Path], embedded_redis) -> None:
    from churn.serving import Settings, create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    synthetic, product = own_build
    member = int(offline.latest_vectors(Warehouse(product / "churn.duckdb")).user_id.iloc[0])
    for folder, status in ((product, 200), (synthetic, 404)):
        settings = Settings(data_dir=folder, redis_url=embedded_redis.url, rate_limit_per_minute=0)
        with TestClient(create_app(settings)) as client:
            response = client.get(f"/predict/{member}")
            assert response.status_code == status, response.text
            if status == 200:
                assert 0.0 <= response.json()["probability"] <= 1.0
            expected = "product_log" if folder == product else "synthetic"
            assert client.get("/health").json()["model"]["dataset"] == expected  # it says what it serves
