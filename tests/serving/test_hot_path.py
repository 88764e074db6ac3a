"""The single prediction's hot path: ``GET /predict/{id}`` answered in front of FastAPI's router
(the same answers as the documented route), and concurrent Redis reads sharing one ``MGET``."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import numpy as np
import pytest
import redis.asyncio

from churn.serving.routes import predict
from churn.store.online import OnlineStore, OnlineStoreError, async_client_from_url

ADMIN = {"X-API-Key": "admin-secret"}
NAMESPACE, FEATURES = "hot:v1", ["a", "b", "c"]


@pytest.fixture()
def route_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths that reached the FastAPI route ``GET /predict/{user_id}`` (its ``handle`` wrapped)."""
    route = next(r for r in predict.router.routes if getattr(r, "path", "") == "/predict/{user_id}")
    inner, calls = route.handle, []

    async def counted(scope, receive, send) -> None:
        calls.append(scope["path"])
        await inner(scope, receive, send)

    monkeypatch.setattr(route, "handle", counted)
    return calls


@pytest.fixture()
def via_router(monkeypatch: pytest.MonkeyPatch):
    """``via_router()`` makes every later request take FastAPI's route instead of the fast path."""
    return lambda: monkeypatch.setattr(predict.SinglePredictionPath, "_user_id", staticmethod(lambda scope: None))


def _answer(response) -> tuple[int, str, bytes]:
    return response.status_code, response.headers["content-type"], response.content


def test_a_single_prediction_does_not_go_through_the_router(client, route_calls, user_ids):
    """A valid id is answered by the fast path; what FastAPI must judge (a non-canonical id, a
    HEAD) still reaches FastAPI, which refuses it as before."""
    assert client.get(f"/predict/{user_ids[0]}").status_code == 200
    assert client.get(f"/predict/{user_ids[0]}").json()["cached"] is True
    assert route_calls == []
    assert client.get("/predict/0005").status_code == 422
    assert client.get(f"/predict/{2**63}").status_code == 422
    assert client.head(f"/predict/{user_ids[0]}").status_code == 405
    assert route_calls == ["/predict/0005", f"/predict/{2**63}", f"/predict/{user_ids[0]}"]


def test_the_fast_path_answers_exactly_as_the_route(client, redis_client, via_router, user_ids, unknown_id):
    """Miss (offline store, refill), hit and unknown user: the same status, type and bytes."""
    user, key = user_ids[2], f"churn:fs:churn_features:v1:u:{user_ids[2]}"
    fast = [client.get(f"/predict/{user}"), client.get(f"/predict/{user}"), client.get(f"/predict/{unknown_id}")]
    redis_client.delete(key)
    via_router()
    slow = [client.get(f"/predict/{user}"), client.get(f"/predict/{user}"), client.get(f"/predict/{unknown_id}")]
    assert [r.json().get("cached") for r in fast] == [False, True, None]
    assert [r.status_code for r in fast] == [200, 200, 404]
    assert [_answer(r) for r in fast] == [_answer(r) for r in slow]


def test_errors_on_the_fast_path_use_the_apps_handlers(make_client, monkeypatch, via_router, user_ids, caplog):
    """No model is a 503 and a bug a logged 500 without a trace, as from the route."""

    def answers(client) -> list[tuple[int, str, bytes]]:
        return [_answer(client.get(f"/predict/{user_ids[0]}"))]

    no_model = make_client(model_name="no_such_model")
    broken = make_client(raise_server_exceptions=False)

    async def bug(user_id: int) -> None:
        raise RuntimeError("a bug at /secret/path/module.py")

    monkeypatch.setattr(broken.app.state.serving, "predict_one", bug)
    fast = answers(no_model) + answers(broken)
    via_router()
    slow = answers(no_model) + answers(broken)
    assert [status for status, _, _ in fast] == [503, 500]
    assert b"secret" not in fast[1][2] and b"internal server error" in fast[1][2]
    assert fast == slow
    assert sum("unhandled error on GET /predict/" in r.getMessage() for r in caplog.records) == 2


def test_the_guard_still_applies_to_the_fast_path(make_client, route_calls, user_ids):
    """API key and rate limit come before the prediction (the fast path sits inside the guard)."""
    keyed = make_client(api_key="k1")
    assert keyed.get(f"/predict/{user_ids[0]}").status_code == 401
    assert keyed.get(f"/predict/{user_ids[0]}", headers={"X-API-Key": "k1"}).status_code == 200
    limited = make_client(rate_limit_per_minute=2)
    assert [limited.get(f"/predict/{user_ids[0]}").status_code for _ in range(3)] == [200, 200, 429]
    assert route_calls == []


# -- one MGET for concurrent single reads ------------------------------------------------------------
@pytest.fixture()
def store(embedded_redis, redis_client) -> OnlineStore:
    """A store with ten vectors (users 0-9) written through the sync client."""
    import pandas as pd

    store = OnlineStore(redis.Redis.from_url(embedded_redis.url), NAMESPACE, FEATURES)
    frame = pd.DataFrame(
        {
            "user_id": range(10),
            "snapshot_at": pd.Timestamp("2026-01-01"),
            **{f: np.arange(10) * (i + 1) + 0.5 for i, f in enumerate(FEATURES)},
        }
    )
    store.online_write_batch(frame)
    return store


def _reader(store: OnlineStore, url: str) -> tuple[OnlineStore, Callable[[], int]]:
    """A reader on its own asyncio client, and the number of MGETs the server has run since
    (Redis's own command statistics: whichever way the client sends them)."""

    def mgets() -> int:
        return int(store.client.info("commandstats").get("cmdstat_mget", {}).get("calls", 0))

    before = mgets()
    return OnlineStore(store.client, NAMESPACE, FEATURES, aclient=async_client_from_url(url)), lambda: mgets() - before


def test_concurrent_single_reads_share_one_mget(store, embedded_redis):
    """Reads started together go out as one MGET; each caller gets its own user's value (a
    missing user: None), equal to a plain GET; reads one after another are one MGET each."""

    async def run() -> None:
        reader, mgets = _reader(store, embedded_redis.url)
        ids = [3, 0, 9, 42, 3, 7]
        values = await asyncio.gather(*(reader.aonline_get(u) for u in ids))
        assert mgets() == 1
        assert list(values) == [store.client.get(store.key(u)) for u in ids]
        assert values[3] is None and reader.decode_one(values[0])[1] == (3.5, 6.5, 9.5)
        for u in (1, 2):
            assert await reader.aonline_get(u) == store.client.get(store.key(u))
        assert mgets() == 3
        await reader.aclient.aclose()

    asyncio.run(run())


def test_a_cancelled_reader_does_not_disturb_the_others(store, embedded_redis):
    async def run() -> None:
        reader, mgets = _reader(store, embedded_redis.url)
        tasks = [asyncio.create_task(reader.aonline_get(u)) for u in (1, 2, 3)]
        await asyncio.sleep(0)  # all three have queued their key
        tasks[1].cancel()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        assert isinstance(done[1], asyncio.CancelledError)
        assert [done[0], done[2]] == [store.client.get(store.key(u)) for u in (1, 3)]
        assert mgets() == 1
        await reader.aclient.aclose()

    asyncio.run(run())


def test_every_waiting_reader_gets_its_own_error_when_redis_is_unreachable(store):
    """Each request sees ``OnlineStoreError`` (its own instance) and takes the fallback."""
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def run() -> None:
        aclient = async_client_from_url(f"redis://127.0.0.1:{port}", socket_connect_timeout=1)
        reader = OnlineStore(store.client, NAMESPACE, FEATURES, aclient=aclient)
        errors = await asyncio.gather(*(reader.aonline_get(u) for u in (1, 2, 3)), return_exceptions=True)
        assert all(isinstance(e, OnlineStoreError) for e in errors)
        assert len({id(e) for e in errors}) == 3
        await aclient.aclose()

    asyncio.run(run())


def test_commands_are_packed_exactly_as_redis_py_packs_them():
    """The request path's packer hands plain commands to hiredis directly: the same bytes as
    redis-py's own packer for every kind of argument (a bytearray or memoryview takes its path)."""
    from redis.connection import HiredisRespSerializer

    from churn.store.online import _TcpConnection

    connection = _TcpConnection()
    commands = [
        ("MGET", b"churn:fs:x:u:1", b"churn:fs:x:u:2"),
        ("GET", "é-key"),
        ("SET", b"k", 5, 1.5),
        ("CLIENT SETNAME", "api"),
        ("SET", bytearray(b"k"), memoryview(b"v")),
    ]
    for args in commands:
        assert connection.pack_command(*args) == HiredisRespSerializer().pack(*args)


def test_the_heap_alive_after_start_up_is_out_of_the_collectors_reach_while_serving(make_client, user_ids):
    """Start-up freezes what is alive (libraries, model, index) so a full collection does not walk
    it while requests wait; shutting down gives it back to the collector."""
    import gc

    from fastapi.testclient import TestClient

    from churn.serving import create_app

    client = make_client()
    assert gc.get_freeze_count() > 10_000
    assert client.get(f"/predict/{user_ids[0]}").status_code == 200
    with TestClient(create_app(client.app.state.settings)) as other:  # a second app's start and stop
        assert other.get("/health").status_code == 200
    assert gc.get_freeze_count() == 0
