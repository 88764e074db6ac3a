"""Online store against the real embedded Redis: exact round trips, one round trip per batch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from churn.store.online import OnlineStore, OnlineStoreError

FEATURES = ["a", "b", "c"]


def _vectors(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 3)) * 1e3, columns=FEATURES)
    frame.insert(0, "snapshot_at", pd.Timestamp("2026-01-01 00:00:00.123456"))
    frame.insert(0, "user_id", np.arange(1, n + 1))
    return frame


def test_round_trip_is_exact_to_the_last_bit(redis_client):
    """What is written is what is read: identical float64 bits and the same as-of time."""
    store = OnlineStore(redis_client, "test", FEATURES)
    frame = _vectors(2500)
    stats = store.online_write_batch(frame, batch_size=1000)
    assert stats.users == 2500 and stats.batches == 3
    read = store.online_read(frame["user_id"])
    assert read.found.all()
    assert read.values.tobytes() == frame[FEATURES].to_numpy(np.float64).tobytes()
    assert (read.snapshot_at == frame["snapshot_at"].to_numpy("datetime64[us]")).all()


def test_missing_users_are_misses_and_counted(redis_client):
    store = OnlineStore(redis_client, "test", FEATURES)
    store.online_write_batch(_vectors(10))
    read = store.online_read([1, 2, 999])
    assert read.found.tolist() == [True, True, False]
    assert np.isnan(read.values[2]).all()
    stats = store.stats()
    assert (stats["hits"], stats["misses"]) == (2, 1) and stats["hit_rate"] == pytest.approx(2 / 3)


def test_keys_are_namespaced_by_feature_set_version(redis_client):
    """Two feature-set versions never read each other's vectors."""
    OnlineStore(redis_client, "v1", FEATURES).online_write_batch(_vectors(5))
    assert not OnlineStore(redis_client, "v2", FEATURES).online_read([1]).found.any()


def test_batch_keys_are_the_single_keys_as_bytes(redis_client):
    """``keys`` (a batch read's command) names exactly what ``key`` names, id 0 and large ids too."""
    store = OnlineStore(redis_client, "v1", FEATURES)
    ids = np.array([0, 7, 10, 123456789012])
    assert store.keys(ids) == [store.key(u).encode() for u in ids.tolist()]


def test_one_value_decodes_as_the_batch_decoder_does(redis_client):
    """``decode_one`` (the single prediction's path) accepts exactly what ``decode`` accepts."""
    store = OnlineStore(redis_client, "t1", FEATURES)
    store.online_write_batch(_vectors(3))
    good = redis_client.get(store.key(1))
    nan = np.zeros(1, dtype=store._dtype)
    nan["snapshot_at"], nan["values"] = 1_700_000_000_000_000, [np.nan, 1.0, 2.0]
    for value in (good, None, b"short", good + b"x", nan.tobytes()):
        batch = store.decode(np.array([1]), [value])
        one = store.decode_one(value)
        assert (one is not None) == bool(batch.found[0])
        if one is not None:
            assert one[0] == batch.snapshot_at[0].astype(np.int64) and np.array(one[1]).tobytes() == batch.values[0].tobytes()


def test_reader_with_another_feature_order_is_refused(redis_client):
    """A reader whose feature order differs from the writer's would mis-score: refused."""
    OnlineStore(redis_client, "v1", FEATURES).online_write_batch(_vectors(5))
    with pytest.raises(OnlineStoreError, match="was written with features"):
        OnlineStore(redis_client, "v1", ["b", "a", "c"]).check_feature_order()


def test_ttl_expires_vectors(redis_client):
    store = OnlineStore(redis_client, "v1", FEATURES, ttl_seconds=100)
    store.online_write_batch(_vectors(3))
    assert 0 < redis_client.ttl(store.key(1)) <= 100


def test_clear_removes_vectors_and_counters(redis_client):
    store = OnlineStore(redis_client, "v1", FEATURES)
    store.online_write_batch(_vectors(7))
    store.online_read([1])
    assert store.count() == 7
    assert store.clear() == 7
    assert store.count() == 0 and store.stats()["hits"] == 0


def test_unreachable_redis_is_a_clear_error():
    # no retries: redis-py's default (10, with backoff) only delays the same error by seconds
    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    with pytest.raises(OnlineStoreError, match="unreachable"):
        OnlineStore(client, "v1", FEATURES).online_read([1])


@pytest.mark.parametrize("value", [b"garbage", b"\x00" * 33, np.int64(0).tobytes() + np.array([np.nan, 1, 2]).tobytes(),
                                   np.int64(2**62).tobytes() + np.array([0.0, 1, 2]).tobytes()],
                         ids=["garbage", "length", "nan", "as_of"])
def test_a_bad_value_is_a_bad_miss_for_its_key_only(redis_client, value):
    """One bad value never fails the read: that key is a miss marked bad, the others are served."""
    store = OnlineStore(redis_client, "v1", FEATURES)
    store.online_write_batch(_vectors(3))
    redis_client.set(store.key(2), value)
    read = store.online_read([1, 2, 3, 4])
    assert read.found.tolist() == [True, False, True, False]
    assert read.bad.tolist() == [False, True, False, False] and read.bad_ids == [2]
    assert np.isnan(read.values[1]).all() and np.isnat(read.snapshot_at[1])
    assert store.stats()["bad_values"] == 1 and store.stats()["misses"] == 2


def test_the_asyncio_client_packs_commands_in_c_exactly_as_redis_py_does(tmp_path):
    """The API's asyncio connections pack with hiredis (redis-py's own serializer for its sync
    client): the same bytes as redis-py's Python packing for every kind of argument we send."""
    import redis.asyncio

    from churn.store.online import async_client_from_url

    commands = [("GET", "churn:fs:v1:u:7"), ("MGET", b"churn:fs:v1:u:1", b"churn:fs:v1:u:123456789012"),
                ("EVALSHA", "abc", 1, "churn:ratelimit:ip:1", 6000.0, 100 / 60), ("CONFIG GET", "maxmemory"),
                ("SET", "k", b"\x00\xff" * 50, "EX", 30)]
    for url, base in ((f"unix://{tmp_path}/r.sock", redis.asyncio.UnixDomainSocketConnection),
                      ("redis://127.0.0.1:1", redis.asyncio.Connection)):
        pool = async_client_from_url(url).connection_pool
        assert issubclass(pool.connection_class, base) and pool.connection_class is not base
        ours, theirs = pool.make_connection(), base(**pool.connection_kwargs)
        for command in commands:
            assert b"".join(ours.pack_command(*command)) == b"".join(theirs.pack_command(*command))
