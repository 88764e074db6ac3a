"""The online store's pipelined request-path reads against real redis-servers: the same values as
redis-py's MGET, one shared connection, AUTH and SELECT, a hung server's timeout, reconnection,
and the URLs that keep redis-py's path."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import redis
import redis.asyncio

from churn.store.cluster import local_redis
from churn.store.online import OnlineStore, OnlineStoreError, PipelinedRedis, async_client_from_url
from churn.store.pipelined import PipelinedReads

FEATURES = ["a", "b"]


@pytest.fixture()
def server(tmp_path) -> Iterator[tuple[int, redis.Redis]]:
    """A private redis-server (TCP) that a test may stop, lock with a password or fill."""
    with local_redis(tmp_path, masters=1, cluster=False) as ports:
        client = redis.Redis(port=ports[0])
        yield ports[0], client
        client.close()


def _values() -> dict[bytes, bytes]:
    """Binary values (a RESP delimiter inside, an empty one, a large one)."""
    return {b"k:%d" % i: b"\r\n$-1\r\n" * i + bytes([i % 256]) * (i * 97) for i in range(200)}


def test_reads_equal_redis_pys_and_share_one_connection(server):
    port, client = server
    values = _values()
    client.mset(values)
    keys = [*values, b"absent", b"k:7", b"k:0"]

    async def run() -> None:
        aclient = async_client_from_url(f"redis://127.0.0.1:{port}", socket_timeout=5)
        assert isinstance(aclient, PipelinedRedis)
        assert await aclient.read_values(keys) == client.mget(keys)
        assert isinstance(aclient._reads, PipelinedReads)  # the pipelined path answered, not redis-py's
        # many reads in flight at once: each gets its own reply
        got = await asyncio.gather(*(aclient.read_values([k, b"absent"]) for k in keys))
        assert got == [[values.get(k), None] for k in keys]
        # one connection for all of them (the sync client's is the other one)
        assert len(client.client_list()) == 2
        await aclient.aclose()

    asyncio.run(run())


def test_password_and_database_are_sent_on_connect(server):
    port, client = server
    client.config_set("requirepass", "s3cret")
    locked = redis.Redis(port=port, password="s3cret", db=3)
    locked.set(b"k", b"in db 3")

    async def run() -> None:
        good = async_client_from_url(f"redis://:s3cret@127.0.0.1:{port}/3", socket_timeout=5)
        assert await good.read_values([b"k", b"x"]) == [b"in db 3", None]
        await good.aclose()
        store = OnlineStore(
            locked, "t:v1", FEATURES, aclient=async_client_from_url(f"redis://:wrong@127.0.0.1:{port}/3")
        )
        with pytest.raises(OnlineStoreError, match="AUTH"):
            await store.aonline_read([1])
        await store.aclient.aclose()

    asyncio.run(run())
    locked.close()


def test_a_hung_server_fails_every_read_in_flight_and_the_next_read_reconnects(server):
    """A stopped (SIGSTOP) server never answers: each waiting read fails with its own timeout
    error (the connection is dropped, its late replies could not be matched any more); once the
    server runs again the next read reconnects."""
    port, client = server
    client.set(b"k", b"v")
    pid = int(client.info("server")["process_id"])

    async def run() -> None:
        aclient = async_client_from_url(f"redis://127.0.0.1:{port}", socket_timeout=0.3)
        assert await aclient.read_values([b"k"]) == [b"v"]
        os.kill(pid, signal.SIGSTOP)
        try:
            errors = await asyncio.gather(*(aclient.read_values([b"k"]) for _ in range(3)), return_exceptions=True)
        finally:
            os.kill(pid, signal.SIGCONT)
        assert all(isinstance(e, redis.TimeoutError) for e in errors), errors
        assert len({id(e) for e in errors}) == 3
        assert await aclient.read_values([b"k"]) == [b"v"]
        await aclient.aclose()

    asyncio.run(run())


def test_a_connection_closed_by_the_server_is_replaced(server):
    port, client = server
    client.set(b"k", b"v")

    async def run() -> None:
        aclient = async_client_from_url(f"redis://127.0.0.1:{port}", socket_timeout=5)
        assert await aclient.read_values([b"k"]) == [b"v"]
        client.client_kill_filter(_type="normal", skipme=True)
        outcomes = []
        for _ in range(2):  # the loop may learn of the close only on the next read: at most one fails
            try:
                outcomes.append(await aclient.read_values([b"k"]))
            except redis.ConnectionError as exc:
                outcomes.append(exc)
        assert outcomes[-1] == [b"v"] and all(o == [b"v"] or isinstance(o, redis.ConnectionError) for o in outcomes)
        await aclient.aclose()

    asyncio.run(run())


def test_an_unreachable_server_is_a_connection_error():
    async def run() -> None:
        aclient = async_client_from_url("redis://127.0.0.1:1", socket_connect_timeout=1)
        with pytest.raises(redis.ConnectionError, match="127.0.0.1:1"):
            await aclient.read_values([b"k"])
        await aclient.aclose()

    asyncio.run(run())


@pytest.mark.parametrize(
    ("url", "options", "pipelined"),
    [
        ("redis://127.0.0.1:6390/2", {}, True),
        ("unix:///tmp/redis.sock?db=1", {}, True),
        ("rediss://127.0.0.1:6390", {}, False),  # TLS: redis-py's connection
        ("redis://127.0.0.1:6390", {"decode_responses": True}, False),  # another reply type
        ("redis://127.0.0.1:6390", {"protocol": 3}, False),
    ],
)
def test_urls_this_path_does_not_implement_keep_redis_pys(url, options, pipelined):
    client = PipelinedRedis.from_url(url, **options)
    assert (PipelinedReads.for_client(client) is not None) is pipelined


def test_the_store_reads_the_same_vectors_either_way(server):
    """``aonline_read`` through the pipelined path equals the sync client's ``online_read``."""
    port, client = server
    store = OnlineStore(client, "t:v1", FEATURES)
    frame = pd.DataFrame(
        {
            "user_id": range(50),
            "snapshot_at": pd.Timestamp("2026-01-01"),
            "a": np.arange(50) * 1.5,
            "b": -np.arange(50.0),
        }
    )
    store.online_write_batch(frame)
    ids = np.array([3, 49, 1000, 3, 0])

    async def run() -> None:
        reader = OnlineStore(client, "t:v1", FEATURES, aclient=async_client_from_url(f"redis://127.0.0.1:{port}"))
        plain = OnlineStore(client, "t:v1", FEATURES, aclient=redis.asyncio.Redis(port=port))  # redis-py's MGET
        got, want = await reader.aonline_read(ids), store.online_read(ids, count=False)
        assert got.found.tolist() == want.found.tolist() == [True, True, False, True, True]
        assert got.values.tobytes() == want.values.tobytes() == (await plain.aonline_read(ids)).values.tobytes()
        assert await reader.aonline_get(49) == await plain.aonline_get(49) == client.get(store.key(49))
        await reader.aclient.aclose()
        await plain.aclient.aclose()

    asyncio.run(run())


def test_reads_waiting_for_one_failed_connect_each_get_their_own_error():
    async def run() -> None:
        aclient = async_client_from_url("redis://127.0.0.1:1", socket_connect_timeout=1)
        errors = await asyncio.gather(*(aclient.read_values([b"k"]) for _ in range(3)), return_exceptions=True)
        assert all(isinstance(e, redis.ConnectionError) for e in errors) and len({id(e) for e in errors}) == 3
        await aclient.aclose()

    asyncio.run(run())
