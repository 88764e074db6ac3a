"""A bad value in Redis is a miss for that key only: served from the offline store, rewritten,
counted; never an outage for other users and never a 200 without a probability."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.features import default_feature_spec
from churn.store import offline
from churn.store.warehouse import Warehouse

ADMIN = {"X-API-Key": "admin-secret"}
FEATURES = default_feature_spec().feature_names
N_FEATURES = len(FEATURES)


def _record(as_of_us: int, values: list[float]) -> bytes:
    return np.int64(as_of_us).tobytes() + np.asarray(values, dtype="<f8").tobytes()


def _valid_as_of() -> int:
    return int(np.datetime64("2025-12-31", "us").astype(np.int64))


@pytest.mark.parametrize("value", [
    b"garbage",
    _record(0, [1.0] * N_FEATURES) + b"x",  # another length
    _record(_valid_as_of(), [float("nan")] + [1.0] * (N_FEATURES - 1)),
    _record(_valid_as_of(), [float("inf")] * N_FEATURES),
    _record(2**62, [1.0] * N_FEATURES),  # as_of far beyond year 9999
    _record(-(2**62), [1.0] * N_FEATURES),
], ids=["garbage", "length", "nan", "inf", "as_of-high", "as_of-low"])
def test_a_bad_value_is_a_miss_for_that_key_only(client, redis_client, user_ids, value):
    """User A's key holds a bad value: A is answered from the offline store (a real probability),
    the key is rewritten, user B keeps being served from Redis, /health stays ok and counts it."""
    bad, good = user_ids[0], user_ids[1]
    assert client.post("/cache/sync", headers=ADMIN).status_code == 200
    reference = client.post("/predict/batch", json={"user_ids": [bad], "use_cache": False}).json()
    redis_client.set(f"churn:fs:churn_features:v1:u:{bad}", value)
    answers = []
    for _ in range(3):
        answers.append(client.get(f"/predict/{bad}"))
        other = client.get(f"/predict/{good}")
        assert other.status_code == 200 and other.json()["cached"] is True
    first = answers[0].json()
    assert answers[0].status_code == 200 and first["cached"] is False
    assert first["probability"] == reference["predictions"][0]["probability"]
    assert [a.json()["cached"] for a in answers[1:]] == [True, True]  # rewritten after the first miss
    assert redis_client.get(f"churn:fs:churn_features:v1:u:{bad}") != value
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["redis"]["ok"] is True
    assert health["cache"]["bad_values"] == 1


def test_bad_values_in_a_batch_do_not_affect_the_other_ids(client, redis_client, user_ids):
    client.post("/cache/sync", headers=ADMIN)
    redis_client.set(f"churn:fs:churn_features:v1:u:{user_ids[2]}", b"garbage")
    body = client.post("/predict/batch", json={"user_ids": user_ids[:5]}).json()
    assert [p["cached"] for p in body["predictions"]] == [True, True, False, True, True]
    assert all(isinstance(p["probability"], float) for p in body["predictions"])
    explain = client.get(f"/explain/{user_ids[2]}")
    assert explain.status_code == 200 and explain.json()["cached"] is True


def test_a_bad_value_of_an_unknown_user_is_deleted(client, redis_client, unknown_id):
    redis_client.set(f"churn:fs:churn_features:v1:u:{unknown_id}", b"garbage")
    assert client.get(f"/predict/{unknown_id}").status_code == 404
    assert not redis_client.exists(f"churn:fs:churn_features:v1:u:{unknown_id}")


def test_a_non_finite_offline_vector_is_a_500_naming_the_user_never_a_null_probability(
        make_client, data_dir, user_ids):
    warehouse = Warehouse(data_dir / "churn.duckdb")
    frame = offline.read_features(warehouse)
    latest_at = frame["snapshot_at"].max()
    frame.loc[(frame["user_id"] == user_ids[0]) & (frame["snapshot_at"] == latest_at), "events_30d"] = np.nan
    feature_set, features = offline.feature_set(warehouse)
    offline.write_features(warehouse, frame, feature_set, features, {})
    client = make_client(data_dir=data_dir, raise_server_exceptions=False)
    response = client.get(f"/predict/{user_ids[0]}")
    assert response.status_code == 500 and str(user_ids[0]) in response.json()["detail"]
    assert "null" not in response.text
    batch = client.post("/predict/batch", json={"user_ids": [user_ids[0], user_ids[1]], "use_cache": False})
    assert batch.status_code == 500
    assert client.get(f"/predict/{user_ids[1]}").status_code == 200  # other users are unaffected


def test_offline_store_values_are_finite(latest):
    """The default build's vectors are all finite (the check above never fires on real data)."""
    assert np.isfinite(latest[FEATURES].to_numpy(float)).all()
    assert pd.notna(latest["snapshot_at"]).all()
