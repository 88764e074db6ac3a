"""The API keeps answering when Redis is down or the warehouse is write-locked, and follows
production changes in the registry without a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import redis

from churn.registry import ModelRegistry
from churn.store import offline
from churn.store.redis_server import EmbeddedRedis
from churn.store.warehouse import Warehouse

ADMIN = {"X-API-Key": "admin-secret"}
HOLD_WRITE_LOCK = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])  # a writer, like a running `ploomber build`
print("locked", flush=True)
sys.stdin.read()
"""


@pytest.fixture()
def write_locked():
    """``write_locked(path)`` holds a DuckDB write connection on ``path`` in another process."""
    procs: list[subprocess.Popen] = []

    def lock(path) -> None:
        proc = subprocess.Popen([sys.executable, "-c", HOLD_WRITE_LOCK, str(path)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "locked"

    yield lock
    for proc in procs:
        proc.stdin.close()
        proc.wait(timeout=10)


def test_predictions_are_served_from_the_offline_store_when_redis_is_unreachable(make_client, tmp_path, user_ids):
    client = make_client(redis_url=f"unix://{tmp_path}/dead.sock")
    single = client.get(f"/predict/{user_ids[0]}")
    assert single.status_code == 200 and single.json()["cached"] is False
    batch = client.post("/predict/batch", json={"user_ids": user_ids[:5]})
    assert batch.status_code == 200 and len(batch.json()["predictions"]) == 5
    assert client.get(f"/explain/{user_ids[0]}").status_code == 200
    health = client.get("/health").json()
    assert health["status"] == "degraded" and health["redis"]["ok"] is False
    assert str(tmp_path) not in str(health)
    assert client.post("/cache/sync", headers=ADMIN).status_code == 503


def _crash(server: EmbeddedRedis) -> None:
    """SIGKILL the server (no goodbye, no save) and wait until it is gone."""
    pid = server.pid()
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
        while server.pid() is not None:
            time.sleep(0.01)


def test_redis_crashing_while_serving_degrades_and_recovers(make_client, tmp_path, user_ids):
    """A dedicated redis-server killed mid-run: offline fallback, then cached again once it is back."""
    server = EmbeddedRedis(tmp_path / "r")
    server.start()
    try:
        client = make_client(redis_url=server.url, redis_retry_seconds=0.1)
        assert client.post("/cache/sync", headers=ADMIN).status_code == 200
        assert client.get(f"/predict/{user_ids[0]}").json()["cached"] is True
        _crash(server)
        down = client.get(f"/predict/{user_ids[0]}")
        assert down.status_code == 200 and down.json()["cached"] is False
        assert client.get("/health").json()["status"] == "degraded"
        server.start()  # its append-only file kept the synced vectors through the SIGKILL
        assert client.get("/health").json()["status"] == "ok"
        assert client.get(f"/predict/{user_ids[1]}").json()["cached"] is True
        with redis.Redis.from_url(server.url) as direct:
            direct.flushdb()  # an emptied store: the next lookup misses, is served offline, refills
        assert client.get(f"/predict/{user_ids[1]}").json()["cached"] is False
        assert client.get(f"/predict/{user_ids[1]}").json()["cached"] is True
    finally:
        _crash(server)
        server.stop()  # only clears the pidfile and socket now


def test_predictions_are_answered_while_a_writer_holds_the_warehouse(make_client, data_dir, write_locked, user_ids):
    """Readers use the published snapshot, so a build holding the write lock blocks nobody."""
    client = make_client(data_dir=data_dir)
    client.get(f"/predict/{user_ids[0]}")  # cached from now on
    write_locked(data_dir / "churn.duckdb")
    assert client.get(f"/predict/{user_ids[0]}").json()["cached"] is True
    uncached = client.get(f"/predict/{user_ids[1]}")
    assert uncached.status_code == 200 and uncached.json()["cached"] is False
    assert client.get("/health").json()["status"] == "ok"
    assert client.get("/dashboard/summary").status_code == 200


def test_without_a_snapshot_a_locked_warehouse_is_503_only_for_data_redis_lacks(make_client, data_dir, write_locked, user_ids):
    client = make_client(data_dir=data_dir)
    client.get(f"/predict/{user_ids[0]}")
    write_locked(data_dir / "churn.duckdb")
    (data_dir / "churn.snapshot.duckdb").unlink()  # readers now need the locked file itself
    assert client.get(f"/predict/{user_ids[0]}").status_code == 200  # Redis + in-memory model
    missing = client.get(f"/predict/{user_ids[1]}")
    assert missing.status_code == 503 and "locked" in missing.json()["detail"]
    assert str(data_dir) not in missing.text
    health = client.get("/health").json()
    assert health["status"] == "degraded" and health["warehouse"]["ok"] is False and health["model"]["loaded"]


def test_running_app_follows_a_production_change(make_client, data_dir, latest, user_ids, wait_for):
    """Promoting another version is picked up within a few poll intervals, without restart."""
    client = make_client(data_dir=data_dir)
    assert client.get(f"/predict/{user_ids[0]}").json()["model_version"] == 1
    registry = ModelRegistry(Warehouse(data_dir / "churn.duckdb"), data_dir / "models")
    registry.promote_model("churn_model", 2, "production", "test: new production")
    assert wait_for(lambda: client.get("/health").json()["model"]["version"] == 2)
    body = client.get(f"/predict/{user_ids[0]}").json()
    predictor, _ = registry.load_model("churn_model", version=2)
    expected = predictor.predict_frame(latest).set_index("user_id").loc[user_ids[0], "probability"]
    assert body["model_version"] == 2 and abs(body["probability"] - expected) <= 1e-12


def test_service_starts_without_a_production_model_and_answers_503_until_one_appears(
        make_client, serving_base, default_features, tmp_path, user_ids, wait_for):
    warehouse = Warehouse(tmp_path / "fresh" / "churn.duckdb")
    feature_set, features = offline.feature_set(Warehouse(serving_base / "churn.duckdb"))
    offline.write_features(warehouse, default_features, feature_set, features, {})
    predictor, _ = ModelRegistry(Warehouse(serving_base / "churn.duckdb"), serving_base / "models").load_model(
        "churn_model", version=2)
    registry = ModelRegistry(warehouse, tmp_path / "fresh" / "models")
    registry.register_model("churn_model", model=predictor, params={"feature_set": feature_set}, reason="test")
    client = make_client(data_dir=tmp_path / "fresh")
    response = client.get(f"/predict/{user_ids[0]}")
    assert response.status_code == 503 and "no production model" in response.json()["detail"]
    assert client.get("/health").json()["model"]["loaded"] is False
    assert client.get("/dashboard/models/production").status_code == 404
    registry.promote_model("churn_model", 1, "production", "test: first production")
    assert wait_for(lambda: client.get(f"/predict/{user_ids[0]}").status_code == 200)


def test_a_hung_redis_holds_only_the_requests_waiting_for_it(launch, tmp_path, user_ids):
    """A stopped (SIGSTOP) redis-server accepts connections but never answers. A prediction
    waits for it; meanwhile a request that needs no Redis is answered while Redis is still
    stopped: the event loop is never blocked by a Redis call (with a blocking client the second
    request would wait for the first one's Redis timeout)."""
    import concurrent.futures
    import http.client

    server = EmbeddedRedis(tmp_path / "r")
    server.start()
    port = launch(REDIS_URL=server.url, CHURN_REDIS_TIMEOUT_SECONDS="60", CHURN_RATE_LIMIT_PER_MINUTE="0")

    def get(path: str) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.request("GET", path)
        status = conn.getresponse().status
        conn.close()
        return status

    stopped = False
    try:
        assert get(f"/predict/{user_ids[0]}") == 200  # warm: connections open, vector cached
        os.kill(server.pid(), signal.SIGSTOP)
        stopped = True
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            slow = pool.submit(get, f"/predict/{user_ids[0]}")
            time.sleep(0.5)  # the prediction is now waiting on the stopped Redis
            assert pool.submit(get, "/dashboard/models/production").result(timeout=30) == 200
            assert not slow.done()  # still waiting for Redis
            os.kill(server.pid(), signal.SIGCONT)
            stopped = False
            assert slow.result(timeout=60) == 200
    finally:
        if stopped:
            os.kill(server.pid(), signal.SIGCONT)
        server.stop()
