"""The DAG end to end through Ploomber with a small profile, then nbval on its reports."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import redis

from churn.registry import ModelRegistry
from churn.store import materialize, offline
from churn.store.online import OnlineStore
from churn.store.raw import read_raw_tables
from churn.store.warehouse import Warehouse
from tests.pipeline.conftest import copy_redis, with_database

PHASES = ("01_generate_data", "02_check_raw_data", "03_build_features", "04_check_features",
          "05_train_model", "06_publish_online", "07_score_batch", "08_monitor", "09_decide_retraining",
          "10_ab_test")

pytestmark = pytest.mark.slow


def test_build_writes_raw_tables_and_reports(small_build: Path):
    """Every phase leaves its executed notebook as .ipynb and .html, plus the quality report."""
    reports = small_build / "reports"
    for phase in PHASES:
        assert (reports / f"{phase}.ipynb").stat().st_size > 0
        assert (reports / f"{phase}.html").stat().st_size > 0
    assert (reports / "data_quality" / "validation_result.json").exists()
    assert (reports / "data_quality" / "data_docs" / "index.html").exists()
    tables = read_raw_tables(Warehouse(small_build / "data" / "churn.duckdb"))
    assert len(tables["users"]) == 300
    receipt = json.loads((small_build / "data" / "products" / "check_raw_data.json").read_text())
    assert receipt["success"] is True
    assert (reports / "feature_quality" / "data_docs" / "index.html").exists()


def test_build_leaves_a_production_model_predictions_and_online_vectors(small_build: Path, build_redis: str,
                                                                       embedded_redis):
    """Registry has a production model that beats chance; every current user is scored and in
    Redis with exactly the offline store's vector."""
    wh = Warehouse(small_build / "data" / "churn.duckdb")
    production = ModelRegistry(wh, small_build / "data" / "models").get_production("churn_model")
    assert production is not None and production.metrics["auc"] > 0.5
    latest = offline.latest_vectors(wh)
    predictions = offline.read_predictions(wh)
    assert sorted(predictions.user_id) == sorted(latest.user_id)
    assert (predictions.model_version == production.version).all()
    features = offline.feature_set(wh)[1]
    read = OnlineStore.from_url(build_redis, materialize.namespace(wh), features).online_read(
        latest.user_id, count=False
    )
    assert read.found.all()
    assert read.values.tobytes() == latest[features].to_numpy(np.float64).tobytes()
    # the API (its own model load and serving form) gives batch scoring's probabilities
    from churn.serving import Settings
    from churn.serving.service import ServingState

    served_redis = with_database(embedded_redis.url, 5)  # the API counts hits: a copy of the build's Redis
    assert copy_redis(build_redis, served_redis) >= len(latest)
    state = ServingState.open(Settings(data_dir=small_build / "data", redis_url=served_redis))
    try:
        ids = predictions.user_id.head(50).tolist()
        served = asyncio.run(state.predict(ids, use_cache=True))["predictions"]
    finally:
        state.close()
        redis.Redis.from_url(served_redis).flushdb()
    batch = predictions.set_index("user_id").loc[ids, "probability"].to_numpy(float)
    assert np.allclose([p["probability"] for p in served], batch, rtol=0, atol=1e-9)


def test_executed_notebooks_rerun_identically_under_nbval(small_build: Path, build_copy: tuple[Path, str],
                                                          build_redis: str):
    """nbval re-executes every report; headline cells (row counts, content fingerprints) must
    reproduce exactly: the same parameters give the same tables. It runs on a copy of the build
    with its own Redis database, so the shared build and its online store are left as they were."""
    shared = redis.Redis.from_url(build_redis)
    before = (_sha256(small_build / "data" / "churn.duckdb"), sorted(shared.keys()))
    copy, private_url = build_copy
    notebooks = sorted(str(p) for p in (copy / "reports").glob("*.ipynb"))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q",
         "-o", "addopts=", *notebooks],
        cwd=copy, capture_output=True, text=True, timeout=900,
        env={**os.environ, "JUPYTER_DEFAULT_PROVISIONER_NAME": "churn-zygote"},  # kernels forked from the worker's zygote
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:]
    assert "failed" not in result.stdout.splitlines()[-1]
    assert redis.Redis.from_url(private_url).dbsize() > 0  # the re-run published into its own database
    assert (_sha256(small_build / "data" / "churn.duckdb"), sorted(shared.keys())) == before


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _corrupt_raw_files(source: Path, target: Path) -> None:
    target.mkdir()
    tables = read_raw_tables(Warehouse(source / "data" / "churn.duckdb"))
    users, events, billing = tables["users"], tables["events"], tables["billing"]
    users = pd.concat([users, users.head(1)])  # duplicate id
    billing.loc[billing.index[0], "amount"] = -5.0  # negative amount
    events.loc[events.index[0], "user_id"] = 999_999  # unknown user
    events.loc[events.index[1], "event_at"] = pd.Timestamp("2099-01-01")  # in the future
    for name, frame in {"users": users, "events": events, "billing": billing}.items():
        frame.to_parquet(target / f"{name}.parquet", index=False)


def test_corrupted_raw_data_stops_the_build_at_the_quality_gate(small_build: Path, tmp_path: Path, embedded_redis,
                                                                run_build):
    """Duplicate ids, negative amounts, unknown users and future timestamps stop the build at
    check-raw-data, and the failure names those expectations. The last good report of that
    phase stays in place (.ipynb and .html); the failed notebook is written next to it."""
    _corrupt_raw_files(small_build, tmp_path / "own")
    (tmp_path / "reports").mkdir()
    good = {suffix: (small_build / "reports" / f"02_check_raw_data{suffix}").read_bytes() for suffix in (".ipynb", ".html")}
    for suffix, content in good.items():
        (tmp_path / "reports" / f"02_check_raw_data{suffix}").write_bytes(content)
    result = run_build(tmp_path, embedded_redis.url, "--env--source", "files", "--env--raw_dir", str(tmp_path / "own"))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "check-raw-data" in output
    for expected in ("expect_column_values_to_be_unique", "expect_column_values_to_be_between",
                     "user_known", "amount"):
        assert expected in output, expected
    assert (tmp_path / "reports" / "data_quality" / "validation_result.json").exists()
    assert not (tmp_path / "reports" / "03_build_features.ipynb").exists()
    for suffix, content in good.items():
        assert (tmp_path / "reports" / f"02_check_raw_data{suffix}").read_bytes() == content, suffix
    failed = (tmp_path / "reports" / "02_check_raw_data.failed.ipynb").read_text()
    assert "expect_column_values_to_be_unique" in failed
