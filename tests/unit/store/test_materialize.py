"""Materialize: offline vectors into Redis under the feature spec's key (real embedded Redis)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import redis

from churn.store import materialize, offline
from churn.store.warehouse import Warehouse, WarehouseError

FEATURES = ["events_30d", "tenure_days"]


def _warehouse(path: Path, spec_name: str, version: str, shift: float) -> Warehouse:
    """Two snapshots of three users; values differ by ``shift`` between warehouses."""
    snapshots = [pd.Timestamp("2025-11-01"), pd.Timestamp("2025-12-01")]
    frame = pd.DataFrame(
        [
            {"user_id": u, "snapshot_at": s, "events_30d": float(u + i) + shift, "tenure_days": 10.0 * u + shift,
             "label": 0, "label_mature": i == 0}
            for i, s in enumerate(snapshots)
            for u in (1, 2, 3)
        ]
    ).astype({"label": "int8"})  # fmt: skip
    warehouse = Warehouse(path)
    offline.write_features(warehouse, frame, version, FEATURES, {"name": spec_name, "version": version})
    return warehouse


def test_two_specs_with_the_same_version_do_not_share_keys(tmp_path: Path, redis_client: redis.Redis) -> None:
    """Same version ``v1``, different spec names: each store reads back its own vectors, and
    materializing one leaves the other's keys alone."""
    first = _warehouse(tmp_path / "a.duckdb", "churn_features", "v1", shift=0.0)
    second = _warehouse(tmp_path / "b.duckdb", "product_features", "v1", shift=0.5)
    store_a = materialize.online_store(first, redis_client)
    store_b = materialize.online_store(second, redis_client)
    assert (store_a.namespace, store_b.namespace) == ("churn_features:v1", "product_features:v1")
    done_a = materialize.materialize(first, store_a)
    done_b = materialize.materialize(second, store_b)
    assert done_b.removed == 0  # the first spec's vectors are not the second's to remove
    for store, done in ((store_a, done_a), (store_b, done_b)):
        read = store.online_read([1, 2, 3], count=False)
        assert read.found.all()
        assert read.values.tobytes() == done.latest[FEATURES].to_numpy(np.float64).tobytes()
    assert store_a.count() == store_b.count() == 3
    assert store_a.online_read([1], count=False).values[0, 1] != store_b.online_read([1], count=False).values[0, 1]


def test_materialize_replaces_what_the_store_held(tmp_path: Path, redis_client: redis.Redis) -> None:
    """A user gone from the latest snapshot does not linger; only the latest snapshot is written."""
    warehouse = _warehouse(tmp_path / "a.duckdb", "churn_features", "v1", shift=0.0)
    store = materialize.online_store(warehouse, redis_client)
    stale = pd.DataFrame({"user_id": [99], "snapshot_at": [pd.Timestamp("2025-01-01")], "events_30d": [1.0],
                          "tenure_days": [1.0]})  # fmt: skip
    store.online_write_batch(stale)
    done = materialize.materialize(warehouse, store)
    assert done.removed == 1 and done.written.users == 3
    assert not store.online_read([99], count=False).found.any()
    assert (store.online_read([1, 2, 3], count=False).snapshot_at == np.datetime64("2025-12-01", "us")).all()


def test_a_failed_read_leaves_the_online_store_as_it_was(tmp_path: Path, redis_client: redis.Redis) -> None:
    warehouse = _warehouse(tmp_path / "a.duckdb", "churn_features", "v1", shift=0.0)
    store = materialize.online_store(warehouse, redis_client)
    materialize.materialize(warehouse, store)
    with warehouse.writer() as con:
        con.execute("DROP TABLE ml_pipeline.features")
    with pytest.raises(WarehouseError, match="ml_pipeline.features does not exist"):
        materialize.materialize(warehouse, store)
    assert store.count() == 3


def test_namespace_is_the_spec_key_and_follows_a_models_version(tmp_path: Path) -> None:
    warehouse = _warehouse(tmp_path / "a.duckdb", "churn_features", "v2", shift=0.0)
    assert materialize.namespace(warehouse) == "churn_features:v2"
    assert materialize.namespace(warehouse, "v1") == "churn_features:v1"


def test_a_daily_cycle_writes_only_the_vectors_that_changed(tmp_path: Path, redis_client: redis.Redis) -> None:
    """``changed_only``: a user whose values changed is rewritten, an unchanged one is not (it
    keeps its stored as_of), a user gone from the latest snapshot is removed, a new one written;
    afterwards the store equals the offline store's latest vectors."""
    warehouse = _warehouse(tmp_path / "a.duckdb", "churn_features", "v1", shift=0.0)
    store = materialize.online_store(warehouse, redis_client)
    materialize.materialize(warehouse, store)
    day = pd.Timestamp("2025-12-02")
    rows = [
        {"user_id": 1, "snapshot_at": day, "events_30d": 2.0, "tenure_days": 10.0},  # same values as 2025-12-01
        {"user_id": 2, "snapshot_at": day, "events_30d": 7.0, "tenure_days": 20.0},  # changed
        {"user_id": 4, "snapshot_at": day, "events_30d": 1.0, "tenure_days": 1.0},  # new; user 3 is gone
    ]
    frame = pd.DataFrame([{**r, "label": None, "label_mature": False} for r in rows]).astype({"label": "Int8"})
    with warehouse.writer() as con, warehouse.transaction(con):
        Warehouse.append(con, offline.FEATURES_TABLE, frame)
    done = materialize.materialize(warehouse, store, changed_only=True)
    assert (done.written.users, done.unchanged, done.removed) == (2, 1, 1)
    read = store.online_read([1, 2, 3, 4], count=False)
    assert list(read.found) == [True, True, False, True]
    assert read.snapshot_at[0] == np.datetime64("2025-12-01", "us") and read.snapshot_at[1] == np.datetime64(day, "us")
    assert read.values[[0, 1, 3]].tobytes() == done.latest[FEATURES].to_numpy(np.float64).tobytes()


def test_the_online_store_is_opened_with_one_read_of_the_feature_set(
    tmp_path: Path, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Namespace and feature order come from one read of ``ml_pipeline.feature_sets`` (it was read
    three times: the order, then the spec and the version again for the namespace)."""
    warehouse = _warehouse(tmp_path / "a.duckdb", "churn_features", "v1", shift=0.0)
    reads: list[str] = []
    real = Warehouse.read_table

    def counting(con, name, *args, **kwargs):
        reads.append(name)
        return real(con, name, *args, **kwargs)

    monkeypatch.setattr(Warehouse, "read_table", staticmethod(counting))
    store = materialize.online_store(warehouse, redis_client)
    assert (store.namespace, store.features) == ("churn_features:v1", FEATURES)
    assert reads == [offline.FEATURE_SETS_TABLE]
