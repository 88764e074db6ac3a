"""The offline fallback's in-memory latest-vector index: the same vectors as the warehouse, one
load per published snapshot, built off the request path, and a new snapshot is served at once
(never stale); unknown users' 404 reasons come from it too."""

from __future__ import annotations

import numpy as np

from churn.serving.latest import LatestVectors
from churn.store import offline
from churn.store.warehouse import Warehouse


def test_index_returns_exactly_the_warehouses_latest_vectors(serving_base, latest, user_ids, unknown_id):
    warehouse = Warehouse(serving_base / "churn.duckdb")
    index = LatestVectors(warehouse)
    ids = np.array([*user_ids, unknown_id])
    assert index.lookup(ids, stamp="s1") is None  # nothing indexed yet: the caller asks DuckDB
    assert index.refresh("s1") and not index.refresh("s1")  # one load per snapshot
    assert index.lookup(ids, stamp="s2") is None  # another snapshot on disk: not served from memory
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
    """After a build publishes new vectors, the next fallback uses them at once (from DuckDB: the
    request does not build the index); the next background tick indexes the new snapshot."""
    client = make_client(data_dir=data_dir, model_poll_seconds=3600)  # ticks only when the test says
    state = client.app.state.serving
    indexed = state.features.latest.stamp
    assert indexed == state.features.snapshot_stamp()  # built at startup
    before = client.post("/predict/batch", json={"user_ids": [user_ids[0]], "use_cache": False}).json()
    warehouse = Warehouse(data_dir / "churn.duckdb")
    frame = offline.read_features(warehouse)
    latest_at = frame["snapshot_at"].max()
    frame.loc[(frame["user_id"] == user_ids[0]) & (frame["snapshot_at"] == latest_at), "payment_failures_90d"] += 5
    feature_set, features = offline.feature_set(warehouse)
    offline.write_features(warehouse, frame, feature_set, features, {})
    after = client.post("/predict/batch", json={"user_ids": [user_ids[0]], "use_cache": False}).json()
    assert after["predictions"][0]["probability"] != before["predictions"][0]["probability"]
    assert state.features.latest.stamp == indexed  # the request path did not load the index
    state.tick()
    assert state.features.latest.stamp == state.features.snapshot_stamp() != indexed
    again = client.post("/predict/batch", json={"user_ids": [user_ids[0]], "use_cache": False}).json()
    assert again["predictions"][0]["probability"] == after["predictions"][0]["probability"]


def test_unknown_users_404_reasons_come_from_the_index(make_client, data_dir, latest, monkeypatch):
    """With the index current, a 404 opens no DuckDB reader; the reasons are the warehouse's."""
    import pandas as pd

    from churn.serving import queries

    churned, fresh, never = int(latest["user_id"].max()) + 1, int(latest["user_id"].max()) + 2, 10**12
    users = pd.DataFrame(
        {
            "user_id": [churned, fresh],
            "signup_at": pd.to_datetime(["2025-01-05", "2026-01-03"]),
            "churned_at": pd.to_datetime(["2025-06-30", None]),
        }
    )
    with Warehouse(data_dir / "churn.duckdb").writer() as con:
        Warehouse.replace_table(con, "raw_data.users", users)
    client = make_client(data_dir=data_dir)
    expected = {u: client.app.state.serving.not_found_detail(u) for u in (churned, fresh, never)}
    asked = []
    original = queries.absent_user_reason
    monkeypatch.setattr(queries, "absent_user_reason", lambda *a: asked.append(a) or original(*a))
    for user in (churned, fresh, never):
        response = client.get(f"/predict/{user}")
        assert response.status_code == 404 and response.json()["detail"] == expected[user]
        reference = original(Warehouse(data_dir / "churn.duckdb"), user)
        assert response.json()["detail"].endswith(": " + reference)  # the same words as DuckDB's answer
    assert asked == []
