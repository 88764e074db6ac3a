"""Stateless replicas: two API processes on different ports, one Redis, one warehouse snapshot.
A promotion reaches both within the poll interval, and with CHURN_RATE_LIMIT_SHARED the rate
limit is one budget per client across them (a Lua token bucket in Redis)."""

from __future__ import annotations

import http.client
import json

import numpy as np

from churn.registry import ModelRegistry
from churn.store.warehouse import Warehouse


def _get(port: int, path: str) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def test_a_promotion_reaches_every_replica(launch, data_dir, redis_client, user_ids, wait_for):
    env = {"CHURN_DATA_DIR": str(data_dir), "CHURN_RATE_LIMIT_PER_MINUTE": "0", "CHURN_MODEL_POLL_SECONDS": "0.2"}
    ports = [launch(**env), launch(**env)]
    for port in ports:
        status, body = _get(port, f"/predict/{user_ids[0]}")
        assert status == 200 and body["model_version"] == 1
    # the replicas share the online store: what one refilled, the other reads as a hit
    assert _get(ports[1], f"/predict/{user_ids[0]}")[1]["cached"] is True
    ModelRegistry(Warehouse(data_dir / "churn.duckdb"), data_dir / "models").promote_model(
        "churn_model", 2, "production", "test: promotion seen by every replica")
    for port in ports:
        assert wait_for(lambda port=port: _get(port, f"/predict/{user_ids[1]}")[1]["model_version"] == 2)
    probabilities = [_get(port, f"/predict/{user_ids[1]}")[1]["probability"] for port in ports]
    assert probabilities[0] == probabilities[1]


def test_the_shared_rate_limit_is_one_budget_across_replicas(launch, redis_client):
    """A budget of 6 per minute: 4 requests to each replica give 6 answers and 2 refusals in
    total (each replica alone would have allowed all 4)."""
    env = {"CHURN_RATE_LIMIT_PER_MINUTE": "6", "CHURN_RATE_LIMIT_SHARED": "true"}
    ports = [launch(**env), launch(**env)]
    for key in redis_client.scan_iter("churn:ratelimit:*"):  # start-up health probes used some
        redis_client.delete(key)
    codes = [_get(int(port), "/dashboard/models")[0] for port in np.repeat(ports, 4)]
    assert sorted(codes) == [200] * 6 + [429] * 2
    assert redis_client.exists("churn:ratelimit:ip:127.0.0.1")
