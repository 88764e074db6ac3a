"""Predictions: parity with batch scoring, online-first lookup, offline fallback, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.registry import ModelRegistry
from churn.store.warehouse import Warehouse

ADMIN = {"X-API-Key": "admin-secret"}


@pytest.fixture(scope="module")
def batch_scores(serving_base, latest) -> pd.DataFrame:
    """What score-batch computes for every current user with the production model."""
    predictor, record = ModelRegistry(Warehouse(serving_base / "churn.duckdb"), serving_base / "models").load_model("churn_model")
    return predictor.predict_frame(latest).assign(version=record.version).set_index("user_id")


def test_single_prediction_equals_the_batch_predictor(client, batch_scores, latest, user_ids):
    """Same user, same model: the API's probability is the batch predictor's to 1e-12, both on
    a miss (offline store) and on the following hit (Redis)."""
    user = user_ids[0]
    first, second = client.get(f"/predict/{user}").json(), client.get(f"/predict/{user}").json()
    expected = batch_scores.loc[user]
    for body in (first, second):
        assert abs(body["probability"] - expected["probability"]) <= 1e-12
        assert body["risk_band"] == expected["risk_band"] and body["model_version"] == expected["version"]
        as_of = latest.set_index("user_id").loc[user, "snapshot_at"]
        assert body["features_as_of"].endswith("Z")  # UTC, with its offset
        assert pd.Timestamp(body["features_as_of"]) == as_of.tz_localize("UTC")
    assert (first["cached"], second["cached"]) == (False, True)


def test_miss_falls_back_to_the_offline_store_and_refills_redis(client, redis_client, user_ids):
    """A miss is served from DuckDB and written to Redis: the next call is a hit."""
    key = f"churn:fs:churn_features:v1:u:{user_ids[1]}"
    assert not redis_client.exists(key)
    assert client.get(f"/predict/{user_ids[1]}").json()["cached"] is False
    assert redis_client.exists(key)
    assert client.get(f"/predict/{user_ids[1]}").json()["cached"] is True


def test_use_cache_false_bypasses_redis(client, redis_client, user_ids):
    """use_cache=false reads the offline store only and leaves Redis untouched."""
    response = client.post("/predict/batch", json={"user_ids": user_ids[:3], "use_cache": False})
    assert response.status_code == 200
    assert [p["cached"] for p in response.json()["predictions"]] == [False] * 3
    assert redis_client.dbsize() == 0


def test_hit_rate_is_100_percent_after_cache_sync(client, latest, user_ids):
    """After /cache/sync every known user is a hit and /health reports a 100% hit rate."""
    synced = client.post("/cache/sync", headers=ADMIN)
    assert synced.status_code == 200 and synced.json()["written"] == len(latest)
    body = client.post("/predict/batch", json={"user_ids": user_ids}).json()
    assert all(p["cached"] for p in body["predictions"])
    assert client.get(f"/predict/{user_ids[0]}").json()["cached"] is True
    cache = client.get("/health").json()["cache"]
    assert cache["hit_rate"] == 1.0 and cache["hits"] == len(user_ids) + 1


def test_batch_scores_all_users_in_request_order_and_lists_unknown_ids(client, batch_scores, user_ids, unknown_id):
    """Unknown ids go to not_found instead of failing the batch; the rest keep request order."""
    ids = [user_ids[2], unknown_id, user_ids[3], user_ids[2]]
    body = client.post("/predict/batch", json={"user_ids": ids}).json()
    assert body["not_found"] == [unknown_id] and body["requested"] == 4
    got = [(p["user_id"], p["probability"]) for p in body["predictions"]]
    assert [u for u, _ in got] == [user_ids[2], user_ids[3], user_ids[2]]
    assert np.allclose([p for _, p in got], batch_scores.loc[[u for u, _ in got], "probability"], rtol=0, atol=1e-12)


def test_mixed_batch_reads_redis_once_and_the_warehouse_for_the_rest(client, user_ids):
    """Cached and uncached users in one batch: hits flagged cached, misses filled from DuckDB."""
    client.get(f"/predict/{user_ids[4]}")  # now cached
    body = client.post("/predict/batch", json={"user_ids": [user_ids[4], user_ids[5]]}).json()
    assert [p["cached"] for p in body["predictions"]] == [True, False]


def test_unknown_user_is_404(client, unknown_id):
    response = client.get(f"/predict/{unknown_id}")
    assert response.status_code == 404
    assert response.json() == {"detail": f"user {unknown_id} not found in the online or offline store"}


@pytest.mark.parametrize("path", ["/predict/abc", "/predict/1.5", "/predict/-3", f"/predict/{2**64}", "/predict/0005",
                                  "/predict/+5", "/predict/1_0", "/predict/%205", "/predict/5%20", "/explain/007"])
def test_non_integer_or_out_of_range_id_is_422(client, path):
    response = client.get(path)
    assert response.status_code == 422 and response.json()["detail"].startswith("invalid request: path.user_id")


def test_zero_is_a_valid_id(client):
    assert client.get("/predict/0").status_code in (200, 404)


@pytest.mark.parametrize("body", [
    {}, {"user_ids": []}, {"user_ids": "1,2"}, {"user_ids": [1, "x"]}, {"user_ids": [1.5]},
    {"user_ids": ["1"]}, {"user_ids": [1], "use_cache": "maybe"}, {"user_ids": [1], "extra": 1},
])
def test_malformed_batch_body_is_422(client, body):
    response = client.post("/predict/batch", json=body)
    assert response.status_code == 422 and isinstance(response.json()["detail"], str)


def test_an_integral_json_number_is_an_id(client, user_ids):
    """JSON Schema's integer includes 376.0; the batch treats it as 376 (1.5 and "376" stay 422)."""
    body = client.post("/predict/batch", json={"user_ids": [float(user_ids[0])]}).json()
    assert body["predictions"][0]["user_id"] == user_ids[0]


def test_invalid_json_is_422(client):
    response = client.post("/predict/batch", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422 and "JSON" in response.json()["detail"]


def test_too_many_ids_is_413(make_client):
    client = make_client(batch_limit=5)
    response = client.post("/predict/batch", json={"user_ids": list(range(6))})
    assert response.status_code == 413
    assert response.json()["detail"] == "6 user ids in one batch; the limit is 5: split the request"
    assert client.post("/predict/batch", json={"user_ids": list(range(5))}).status_code == 200


def test_a_batch_is_one_redis_read_and_one_vectorised_scoring(client, monkeypatch, user_ids, unknown_id):
    """However many ids: a single online read (one MGET, on the asyncio client) and a single
    predict_proba call; the blocking client is not used on the request path."""
    state = client.app.state.serving
    model = state.models.current
    store = state.features.store_for(model)
    calls = {"aonline_read": 0, "online_read": 0, "predict_proba": 0}
    for obj, name in ((store, "aonline_read"), (store, "online_read"), (model.predictor, "predict_proba")):
        original = getattr(obj, name)

        def spy(*args, _original=original, _name=name, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(obj, name, spy)
    response = client.post("/predict/batch", json={"user_ids": [*user_ids, unknown_id]})
    assert response.status_code == 200 and len(response.json()["predictions"]) == len(user_ids)
    assert calls == {"aonline_read": 1, "online_read": 0, "predict_proba": 1}


def test_cache_clear_empties_the_online_store(client, redis_client, latest, user_ids):
    """After /cache/clear every lookup is a miss again (served from the offline store)."""
    client.post("/cache/sync", headers=ADMIN)
    cleared = client.post("/cache/clear", headers=ADMIN).json()
    assert cleared == {"feature_set": "v1", "removed": len(latest)}
    assert not redis_client.keys("churn:fs:churn_features:v1:u:*")
    assert client.get(f"/predict/{user_ids[0]}").json()["cached"] is False


def test_prediction_states_where_the_risk_bands_are_cut(client, user_ids):
    """The cut-offs are the model's bands, and the band follows from them."""
    body = client.get(f"/predict/{user_ids[0]}").json()
    cut = body["band_cutoffs"]
    assert cut == {"medium": 0.02, "high": 0.1}
    p = body["probability"]
    assert body["risk_band"] == ("high" if p >= cut["high"] else "medium" if p >= cut["medium"] else "low")
    batch = client.post("/predict/batch", json={"user_ids": user_ids[:3]}).json()
    assert batch["band_cutoffs"] == cut and "band_cutoffs" not in batch["predictions"][0]


def test_404_says_whether_the_user_churned_or_never_existed(make_client, data_dir, latest):
    """With raw_data.users in the warehouse, an absent user's 404 names the reason."""
    churned, fresh, never = int(latest["user_id"].max()) + 1, int(latest["user_id"].max()) + 2, 10**12
    users = pd.DataFrame({"user_id": [churned, fresh],
                          "signup_at": pd.to_datetime(["2025-01-05", "2026-01-03"]),
                          "churned_at": pd.to_datetime(["2025-06-30", None])})
    warehouse = Warehouse(data_dir / "churn.duckdb")
    with warehouse.writer() as con:
        Warehouse.replace_table(con, "raw_data.users", users)
    client = make_client(data_dir=data_dir)
    gone = client.get(f"/predict/{churned}")
    assert gone.status_code == 404
    assert gone.json()["detail"] == (f"user {churned} not found in the online or offline store: the user churned "
                                     "on 2025-06-30; churned users are not scored")
    assert client.get(f"/explain/{churned}").json() == gone.json()
    assert "never existed" in client.get(f"/predict/{never}").json()["detail"]
    assert "signed up 2026-01-03" in client.get(f"/predict/{fresh}").json()["detail"]
