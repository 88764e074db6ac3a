"""The API records its operational figures (requests, server errors, latency) in Redis."""

from __future__ import annotations

from churn.store.api_state import clear_ops, read_ops


def test_requests_and_latency_reach_redis(client):
    """After a flush, every request is counted and its latency is among the samples."""
    redis_client = client.app.state.serving.features.client
    clear_ops(redis_client)
    client.app.state.ops.flush(redis_client)  # drop what set-up requests recorded
    clear_ops(redis_client)
    for _ in range(5):
        client.get("/health")
    client.get("/predict/999999999")  # a 404 is a request, not a server error
    client.app.state.ops.flush(redis_client)
    ops = read_ops(redis_client)
    assert ops["requests"] == 6 and ops["server_errors"] == 0 and ops["latency_samples"] == 6
    assert 0 < ops["latency_p50_ms"] <= ops["latency_p99_ms"]
