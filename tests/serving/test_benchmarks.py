"""``make bench``'s serving setup: a private copy of a build whose own Redis holds the latest vectors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.serving import prepare
from churn.store import materialize, offline
from churn.store.online import OnlineStore
from churn.store.redis_server import EmbeddedRedis
from churn.store.warehouse import Warehouse


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def test_prepare_publishes_the_builds_latest_vectors_and_only_reads_the_build(
    serving_base: Path, latest: pd.DataFrame, tmp_path: Path
) -> None:
    before = _digest(serving_base)
    env = prepare(serving_base, tmp_path)
    try:
        assert env["CHURN_DATA_DIR"] == str(tmp_path) and env["CHURN_RATE_LIMIT_PER_MINUTE"] == "0"
        wh = Warehouse(tmp_path / "churn.duckdb")
        features = offline.feature_set(wh)[1]
        read = OnlineStore.from_url(env["REDIS_URL"], materialize.namespace(wh), features).online_read(
            latest["user_id"], count=False
        )
        assert read.found.all()
        np.testing.assert_allclose(read.values, latest[features].to_numpy(float))
    finally:
        EmbeddedRedis(tmp_path).stop()
    assert _digest(serving_base) == before


def test_prepare_refuses_a_directory_without_a_build(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="run `make build` first"):
        prepare(tmp_path / "nothing", tmp_path)


@pytest.mark.parametrize("factory", ["frozen_app", "unfrozen_app"])
def test_the_tail_benchmarks_apps_serve_and_report_what_their_worker_saw(
    factory: str, serving_base: Path, embedded_redis, tmp_path: Path, monkeypatch, user_ids
) -> None:
    import gc
    import json

    from fastapi.testclient import TestClient

    from benchmarks import tail

    monkeypatch.setenv("CHURN_DATA_DIR", str(serving_base))
    monkeypatch.setenv("REDIS_URL", embedded_redis.url)
    monkeypatch.setenv("CHURN_TAIL_DIR", str(tmp_path))
    with TestClient(getattr(tail, factory)()) as client:
        assert (gc.get_freeze_count() > 0) is (factory == "frozen_app")
        assert client.get(f"/predict/{user_ids[0]}").status_code == 200
        gc.collect(2)  # one full collection while serving: recorded
    (report,) = tmp_path.glob("*.json")
    seen = json.loads(report.read_text())
    assert any(generation == 2 for generation, _ in seen["pauses"]) and isinstance(seen["lags"], list)
