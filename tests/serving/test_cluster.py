"""The online store on a real Redis Cluster: three masters started from the bundled redis-server
in cluster mode; the API serves, syncs, clears and counts across shards with
``REDIS_URL=redis+cluster://...``, and its predictions equal the batch predictor's."""

from __future__ import annotations

import numpy as np
import pytest
import redis

from churn.registry import ModelRegistry
from churn.store.cluster import local_redis
from churn.store.warehouse import Warehouse

ADMIN = {"X-API-Key": "admin-secret"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Three cluster-mode masters on free local ports, slots assigned by redis-cli."""
    with local_redis(tmp_path_factory.mktemp("cluster"), masters=3) as ports:
        yield ports


def test_the_api_serves_syncs_and_counts_across_a_cluster(cluster, make_client, serving_base, latest, user_ids):
    client = make_client(redis_url=f"redis+cluster://127.0.0.1:{cluster[0]}")
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["redis"]["ok"]
    synced = client.post("/cache/sync", headers=ADMIN).json()
    assert synced["written"] == len(latest)
    nodes = [redis.Redis(port=p) for p in cluster]
    per_node = [sum(1 for _ in n.scan_iter("churn:fs:churn_features:v1:*:u:*")) for n in nodes]
    assert sum(per_node) == len(latest) and min(per_node) > 0  # the vectors are spread over every shard
    body = client.post("/predict/batch", json={"user_ids": user_ids}).json()
    assert all(p["cached"] for p in body["predictions"])
    predictor, _ = ModelRegistry(Warehouse(serving_base / "churn.duckdb"), serving_base / "models").load_model("churn_model")
    expected = predictor.predict_frame(latest).set_index("user_id").loc[user_ids, "probability"].to_numpy()
    assert np.allclose([p["probability"] for p in body["predictions"]], expected, rtol=0, atol=1e-12)
    assert client.get(f"/predict/{user_ids[0]}").json()["cached"] is True
    cache = client.get("/health").json()["cache"]
    assert cache["hits"] == len(user_ids) + 1 and cache["hit_rate"] == 1.0
    cleared = client.post("/cache/clear", headers=ADMIN).json()
    assert cleared["removed"] == len(latest)
    assert sum(sum(1 for _ in n.scan_iter("churn:fs:churn_features:v1:*:u:*")) for n in nodes) == 0
    miss = client.get(f"/predict/{user_ids[0]}").json()
    assert miss["cached"] is False and client.get(f"/predict/{user_ids[0]}").json()["cached"] is True
    from churn.store.api_state import read_ops

    cluster_client = client.app.state.serving.features.client
    client.app.state.ops.flush(cluster_client)
    assert read_ops(cluster_client)["requests"] >= 8  # the API's counters, on whichever shard holds them


def test_cluster_reads_go_to_each_node_and_follow_a_redirection(cluster, serving_base, latest):
    """The request path reads each node's buckets over its pipelined connection; with a stale
    slot map (a resharding the client has not seen) the node answers MOVED and the read goes
    through the cluster client, which follows it and refreshes the map."""
    import asyncio

    from redis.crc import key_slot

    from churn.store import offline
    from churn.store.online import OnlineStore, async_client_from_url, client_from_url
    from churn.store.pipelined import ClusterReads

    url = f"redis+cluster://127.0.0.1:{cluster[0]}"
    feature_set, features = offline.feature_set(Warehouse(serving_base / "churn.duckdb"))
    writer = OnlineStore(client_from_url(url), feature_set, features)
    writer.online_write_batch(latest[["user_id", "snapshot_at", *features]])
    ids = latest["user_id"].to_numpy()[:300]
    want = writer.online_read(ids, count=False)

    async def run() -> None:
        aclient = async_client_from_url(url, socket_timeout=5)
        reader = OnlineStore(writer.client, feature_set, features, aclient=aclient)
        fallbacks = []  # reads that went through redis-py's cluster client
        mget_nonatomic = aclient.mget_nonatomic

        async def spied(keys):
            fallbacks.append(len(keys))
            return await mget_nonatomic(keys)

        aclient.mget_nonatomic = spied
        got = await reader.aonline_read(ids)
        assert fallbacks == []  # every bucket's slot was right: the nodes answered directly
        assert isinstance(aclient._reads, ClusterReads) and len(aclient._reads._connections) == len(cluster)
        assert got.found.all() and got.values.tobytes() == want.values.tobytes()
        manager = aclient.nodes_manager
        slot = key_slot(reader.key(int(ids[0])).encode())
        owner = manager.slots_cache[slot][0]
        manager.slots_cache[slot] = [next(n for n in manager.nodes_cache.values() if n.name != owner.name)]
        got = await reader.aonline_read(ids)
        assert got.found.all() and got.values.tobytes() == want.values.tobytes()
        assert fallbacks == [len(ids)] and manager.slots_cache[slot][0].name == owner.name  # followed, map refreshed
        assert (await reader.aonline_read(ids)).values.tobytes() == want.values.tobytes() and fallbacks == [len(ids)]
        await aclient.aclose()

    asyncio.run(run())
    writer.clear()
    writer.client.close()
