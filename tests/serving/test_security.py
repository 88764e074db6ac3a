"""API keys, rate limit, body size limit, clean errors and the OpenAPI docs."""

from __future__ import annotations

import logging

import duckdb
import pytest

from churn.serving.proxy import forwarded_for
from churn.serving.security import RateLimiter
from churn.store.online import OnlineStoreError
from churn.store.warehouse import WarehouseError

KEY, ADMIN = "client-secret", "admin-secret"


@pytest.mark.parametrize("path", ["/cache/sync", "/cache/clear"])
def test_admin_endpoints_need_the_admin_key(client, path):
    """401 without a key, 403 with a wrong one, 200 with the admin key."""
    assert client.post(path).status_code == 401
    assert client.post(path, headers={"X-API-Key": "wrong"}).status_code == 403
    assert client.post(path, headers={"X-API-Key": ADMIN}).status_code == 200


@pytest.mark.parametrize("path", ["/cache/sync", "/cache/clear"])
def test_state_changing_admin_endpoints_refuse_get(client, redis_client, path):
    """GET never changes state: 405 with Allow: POST, even with the admin key; Redis untouched."""
    redis_client.set("churn:fs:v1:u:1", b"sentinel")
    response = client.get(path, headers={"X-API-Key": ADMIN})
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert response.json() == {"detail": "Method Not Allowed"}
    assert redis_client.get("churn:fs:v1:u:1") == b"sentinel"


def test_admin_endpoints_are_closed_when_no_key_is_configured(make_client):
    """Without CHURN_ADMIN_KEY and CHURN_API_KEY no key can open the admin endpoints."""
    client = make_client(admin_key=None)
    assert client.post("/cache/clear").status_code == 401
    response = client.post("/cache/clear", headers={"X-API-Key": "anything"})
    assert response.status_code == 403 and "CHURN_ADMIN_KEY" in response.json()["detail"]


def test_api_key_protects_every_endpoint_when_configured(make_client, user_ids):
    client = make_client(api_key=KEY, admin_key=None)
    for path in ["/health", f"/predict/{user_ids[0]}", "/dashboard/summary"]:
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"X-API-Key": "wrong"}).status_code == 403
        assert client.get(path, headers={"X-API-Key": KEY}).status_code == 200
    # admin falls back to the API key when no admin key is set
    assert client.post("/cache/clear", headers={"X-API-Key": KEY}).status_code == 200


def test_a_separate_admin_key_is_required_for_admin_endpoints(make_client):
    client = make_client(api_key=KEY, admin_key=ADMIN)
    assert client.post("/cache/clear", headers={"X-API-Key": KEY}).status_code == 403
    assert client.post("/cache/clear", headers={"X-API-Key": ADMIN}).status_code == 200
    assert client.get("/health", headers={"X-API-Key": ADMIN}).status_code == 200


def test_rate_limit_answers_429_with_retry_after(make_client, user_ids):
    """The 4th request in a minute with a budget of 3 is refused, with a Retry-After in seconds."""
    client = make_client(rate_limit_per_minute=3)
    codes = [client.get(f"/predict/{user_ids[0]}").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = client.get("/health")
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 20
    assert "rate limit" in refused.json()["detail"]


def test_token_bucket_refills_and_tracks_clients_separately():
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])  # one token per second, burst 60
    assert all(limiter.acquire("a") == 0 for _ in range(60))
    assert limiter.acquire("a") == pytest.approx(1.0)
    assert limiter.acquire("b") == 0  # another client has its own bucket
    now[0] += 1.0
    assert limiter.acquire("a") == 0 and limiter.acquire("a") > 0


def test_bucket_memory_is_bounded():
    limiter = RateLimiter(60, clock=lambda: 0.0, max_clients=10)
    for i in range(100):
        limiter.acquire(f"ip:{i}")
    assert len(limiter._buckets) <= 10


def test_body_over_the_limit_is_413_json(make_client):
    client = make_client(max_body_bytes=2048)
    big = {"user_ids": list(range(1000))}
    response = client.post("/predict/batch", json=big)
    assert response.status_code == 413 and response.json() == {"detail": "request body larger than 2,048 bytes"}


def test_chunked_body_over_the_limit_is_413_json(make_client):
    """Without Content-Length the limit is enforced while the body streams in."""
    client = make_client(max_body_bytes=2048)
    chunks = (b'{"user_ids": [' + b"1," * 400, b"1" * 2000 + b"]}")
    response = client.post("/predict/batch", content=iter(chunks), headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["detail"].startswith("request body larger")


def test_internal_errors_are_json_without_traces_or_paths(make_client, monkeypatch, user_ids):
    client = make_client(raise_server_exceptions=False)
    state = client.app.state.serving

    def broken(*args, **kwargs):
        raise RuntimeError("boom in /srv/secret/module.py line 3")

    monkeypatch.setattr(state.features, "alookup", broken)
    monkeypatch.setattr(state.features, "alookup_one", broken)  # the single prediction's entry
    response = client.get(f"/predict/{user_ids[0]}")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error; the details are in the server log"}
    assert "Traceback" not in response.text and "/srv" not in response.text


def test_unknown_route_and_method_are_json(client):
    assert client.get("/nope").json() == {"detail": "Not Found"}
    assert client.delete("/health").status_code == 405


def test_docs_list_every_endpoint_with_examples(client):
    spec = client.get("/openapi.json").json()
    paths = {(p, m) for p, item in spec["paths"].items() for m in item}
    expected = {("/health", "get"), ("/predict/{user_id}", "get"), ("/predict/batch", "post"),
                ("/explain/{user_id}", "get"), ("/cache/sync", "post"),
                ("/cache/clear", "post"), ("/dashboard/summary", "get"),
                ("/dashboard/models", "get"), ("/dashboard/models/production", "get"),
                ("/dashboard/models/staging", "get"), ("/dashboard/retraining-status", "get"),
                ("/dashboard/ab-tests/{test_name}", "get"), ("/dashboard/metrics/timeline", "get"),
                ("/dashboard/alerts", "get"), ("/dashboard/health", "get")}
    assert expected <= paths and ("/cache/sync", "get") not in paths and ("/cache/clear", "get") not in paths
    schemas = spec["components"]["schemas"]
    for name in ["PredictionOut", "BatchRequest", "BatchOut", "ExplanationOut", "HealthOut", "ErrorOut"]:
        assert schemas[name].get("examples"), name
    assert "X-API-Key" in str(spec["components"]["securitySchemes"])
    assert client.get("/docs").status_code == 200 and client.get("/redoc").status_code == 200


@pytest.mark.parametrize(("exc", "status"), [
    (duckdb.BinderException("Referenced column \"x\" not found"), 500),
    (duckdb.CatalogException("Table with name features does not exist"), 500),
    (duckdb.ParserException("syntax error at or near SELEC"), 500),
    (KeyError("snapshot_at"), 500),
    (duckdb.IOException("Could not set lock on file: Conflicting lock is held"), 503),
    (WarehouseError("warehouse locked by another process"), 503),
    (OnlineStoreError("online store (Redis) unreachable"), 503),
], ids=["binder", "catalog", "parser", "keyerror", "io", "warehouse", "redis"])
def test_only_real_unavailability_is_503_and_a_bug_is_a_logged_500(make_client, monkeypatch, caplog, user_ids,
                                                                     exc, status):
    """A Binder/Catalog error is our bug: 500 with the traceback in the log, not "unavailable"."""
    client = make_client(raise_server_exceptions=False)

    def fail(*args, **kwargs):
        raise exc

    monkeypatch.setattr("churn.serving.features.offline.latest_vectors", fail)
    monkeypatch.setattr(client.app.state.serving.features, "latest", None)  # no index: the fallback asks DuckDB
    with caplog.at_level(logging.WARNING, logger="churn.serving"):
        response = client.post("/predict/batch", json={"user_ids": user_ids[:2], "use_cache": False})
    assert response.status_code == status
    if status == 500:
        assert response.json() == {"detail": "internal server error; the details are in the server log"}
        logged = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert logged and logged[-1].exc_info and logged[-1].exc_info[1] is exc
    else:
        assert "unavailable" in response.json()["detail"]


def test_rotating_forwarded_for_does_not_bypass_the_rate_limit(make_client, user_ids):
    """Without a configured proxy, X-Forwarded-For is ignored: one peer is one client."""
    client = make_client(rate_limit_per_minute=3)
    codes = [client.get(f"/predict/{user_ids[0]}", headers={"X-Forwarded-For": f"10.0.0.{i}"}).status_code
             for i in range(6)]
    assert codes == [200, 200, 200, 429, 429, 429]


def test_forwarded_for_is_believed_only_from_a_configured_proxy(make_client, user_ids):
    """Behind a trusted proxy each forwarded client has its own budget; a spoofed hop to the left
    of the real client changes nothing."""
    client = make_client(rate_limit_per_minute=2, forwarded_allow_ips="testclient, 10.9.0.0/16")
    real = [client.get("/health", headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code for i in range(4)]
    assert real == [200] * 4  # four clients, one request each
    spoofed = [client.get("/health", headers={"X-Forwarded-For": f"1.1.1.{i}, 198.51.100.7, 10.9.3.4"}).status_code
               for i in range(3)]
    assert spoofed == [200, 200, 429]  # all counted against 198.51.100.7, the first untrusted hop


def test_a_proxy_appending_its_own_forwarded_for_line_is_read_as_one_chain(make_client):
    """A proxy that adds a separate X-Forwarded-For line (HAProxy's forwardfor) leaves the
    client's forged line first: the real client is still the rightmost untrusted hop."""
    client = make_client(rate_limit_per_minute=2, forwarded_allow_ips="testclient")
    codes = [client.get("/health", headers=[("X-Forwarded-For", f"1.1.1.{i}"),
                                            ("X-Forwarded-For", "198.51.100.7")]).status_code
             for i in range(3)]
    assert codes == [200, 200, 429]


def _client_seen(allow_ips: str, peer: str, forwarded: str | None = None) -> str:
    """The client address an app behind ``forwarded_for`` sees for one request from ``peer``."""
    import asyncio

    seen = {}

    async def app(scope, receive, send) -> None:
        seen["client"] = scope["client"][0]

    headers = [] if forwarded is None else [(b"x-forwarded-for", forwarded.encode())]
    scope = {"type": "http", "client": (peer, 5000), "headers": headers}
    asyncio.run(forwarded_for(app, allow_ips)(scope, None, None))
    return seen["client"]


def test_trusted_proxies_are_addresses_networks_and_names():
    allow = "127.0.0.1, 10.9.0.1/16,::1,proxy.sock"  # a network written with host bits still counts
    assert _client_seen(allow, "127.0.0.1", "9.9.9.9, 10.9.1.1") == "9.9.9.9"
    assert _client_seen(allow, "127.0.0.1", "10.9.1.1, 10.9.2.2") == "10.9.1.1"  # all trusted: the leftmost
    for peer in ("10.9.3.4", "::1", "proxy.sock"):
        assert _client_seen(allow, peer, "9.9.9.9") == "9.9.9.9"
    for peer in ("11.0.0.1", "testclient"):  # untrusted peers: their header is ignored
        assert _client_seen(allow, peer, "9.9.9.9") == peer
    assert _client_seen("", "127.0.0.1", "9.9.9.9") == "127.0.0.1"  # empty trusts no one
    assert _client_seen("*", "8.8.8.8", "9.9.9.9") == "9.9.9.9"
    assert _client_seen(allow, "127.0.0.1") == "127.0.0.1"


def test_pruning_never_forgets_a_throttled_client():
    """A throttled client stays throttled however many new clients arrive (else it could reset
    its own budget by spraying requests from other addresses)."""
    limiter = RateLimiter(60, clock=lambda: 0.0, max_clients=10)
    for _ in range(60):
        limiter.acquire("victim")
    assert limiter.acquire("victim") > 0
    for i in range(100):
        limiter.acquire(f"ip:{i}")
        assert limiter.acquire("victim") > 0, f"forgotten after {i + 1} new clients"
    assert len(limiter._buckets) <= 10


def test_pruning_keeps_every_throttled_client_even_beyond_the_cap():
    limiter = RateLimiter(1, clock=lambda: 0.0, max_clients=5)
    for i in range(8):
        limiter.acquire(f"ip:{i}")  # uses its only token: now throttled
    assert all(limiter.acquire(f"ip:{i}") > 0 for i in range(8))


def test_the_shared_rate_limit_obeys_the_redis_circuit_breaker(tmp_path):
    """A dead Redis is tried once: the failure opens the online store's breaker (lookups then skip
    Redis too) and the local buckets answer until it closes, so no request waits on Redis."""
    import asyncio

    from churn.serving.features import FeatureSource
    from churn.serving.security import SharedRateLimiter
    from churn.serving.service import async_redis_client, redis_client
    from churn.store.warehouse import Warehouse

    url = f"unix://{tmp_path}/dead.sock"
    features = FeatureSource(redis_client(url, 0.2), Warehouse(tmp_path / "unused.duckdb"), retry_seconds=60,
                             aclient=async_redis_client(url, 0.2))
    calls = []
    real = features.aclient.evalsha

    async def counted(*args, **kwargs):
        calls.append(args)
        return await real(*args, **kwargs)

    features.aclient.evalsha = counted  # a spy: the real client still answers (here: cannot connect)
    limiter = SharedRateLimiter(2)

    async def run() -> list[float]:
        return [await limiter.aacquire("ip:198.51.100.7", features) for _ in range(3)]

    waits = asyncio.run(run())
    assert waits[:2] == [0.0, 0.0] and waits[2] > 0  # the local bucket: 2 per minute
    assert len(calls) == 1 and not features.redis_usable()
