"""The offline fallback's in-memory latest-vector index: the same vectors as the warehouse, one
load per published snapshot, and a new snapshot is served at once (never stale)."""

from __future__ import annotations

import numpy as np

from churn.serving.latest import LatestVectors
from churn.store import offline
from churn.store.warehouse import Warehouse


def test_index_returns_exactly_the_warehouses_latest_vectors(serving_base, latest, user_ids, unknown_id):
    warehouse = Warehouse(serving_base / "churn.duckdb")
    index = LatestVectors(warehouse)
    ids = np.array([*user_ids, unknown_id])
    got = index.lookup(ids, stamp="s1").sort_values("user_id").reset_index(drop=True)
    expected = offline.latest_vectors(warehouse, ids).reset_index(drop=True)
    assert got.to_numpy().tolist() == expected.to_numpy().tolist()  # same rows, same bits
    assert unknown_id not in set(got["user_id"])


def test_misses_are_served_from_memory_with_one_load_per_snapshot(client, monkeypatch, user_ids):
    """Twenty misses: one warehouse read (the index load), not one query per miss."""
    calls = []
    original = offline.latest_vectors

    def counted(*args, **kwargs):
        calls.append(args[1:] or kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr("churn.serving.latest.offline.latest_vectors", counted)
    monkeypatch.setattr("churn.serving.features.offline.latest_vectors", counted)
    for user in user_ids:
        assert client.post("/predict/batch", json={"user_ids": [user], "use_cache": False}).status_code == 200
    assert len(calls) <= 1


def test_a_new_snapshot_is_served_at_once(make_client, data_dir, user_ids):
    """After a build publishes new vectors, the next fallback uses them (the index reloads)."""
    client = make_client(data_dir=data_dir)
    before = client.post("/predict/batch", json={"user_ids": [user_ids[0]], "use_cache": False}).json()
    warehouse = Warehouse(data_dir / "churn.duckdb")
    frame = offline.read_features(warehouse)
    latest_at = frame["snapshot_at"].max()
    frame.loc[(frame["user_id"] == user_ids[0]) & (frame["snapshot_at"] == latest_at), "payment_failures_90d"] += 5
    feature_set, features = offline.feature_set(warehouse)
    offline.write_features(warehouse, frame, feature_set, features, {})
    after = client.post("/predict/batch", json={"user_ids": [user_ids[0]], "use_cache": False}).json()
    assert after["predictions"][0]["probability"] != before["predictions"][0]["probability"]
