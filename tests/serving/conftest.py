"""Serving fixtures: a slim warehouse (offline store + registry) built once, the real embedded
Redis, and TestClients whose settings are passed explicitly (never read from the environment)."""

from __future__ import annotations

import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():  # starlette 1.10 asks for httpx2, which the project does not pin
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

from churn.features import default_feature_spec
from churn.modeling.predict import ChurnPredictor
from churn.modeling.train import labelled, make_pipeline
from churn.registry import ModelRegistry
from churn.serving import Settings, create_app
from churn.store import offline
from churn.store.warehouse import Warehouse

MODEL = "churn_model"
ADMIN = "admin-secret"
FEATURES = default_feature_spec().feature_names


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read CHURN_* and REDIS_URL: none may leak in from the shell running the tests."""
    for name in list(os.environ):
        if name.startswith("CHURN_") or name == "REDIS_URL":
            monkeypatch.delenv(name)


def fit_predictor(frame: pd.DataFrame, c: float) -> ChurnPredictor:
    """A quick scaling + logistic-regression predictor on the labelled rows."""
    rows = labelled(frame)
    pipeline = make_pipeline(c).fit(rows[FEATURES].to_numpy(float), rows["label"].to_numpy(int))
    return ChurnPredictor(pipeline, FEATURES, model_name=MODEL, bands=(0.02, 0.1))


@pytest.fixture(scope="session")
def serving_base(default_features: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Data dir with the default offline store and two versions: v1 production, v2 registered."""
    root = tmp_path_factory.mktemp("serving")
    warehouse = Warehouse(root / "churn.duckdb")
    spec = default_feature_spec()
    offline.write_features(warehouse, default_features, spec.version, spec.feature_names, spec.to_dict())
    registry = ModelRegistry(warehouse, root / "models")
    for c, stage in ((1.0, "production"), (0.01, "none")):
        registry.register_model(MODEL, model=fit_predictor(default_features, c), features=FEATURES,
                                params={"C": c, "feature_set": spec.version}, stage=stage, reason="test fixture")
    return root


@pytest.fixture()
def data_dir(serving_base: Path, tmp_path: Path) -> Path:
    """A private copy of the base data dir, for tests that change the registry or warehouse."""
    target = tmp_path / "data"
    shutil.copytree(serving_base, target)
    return target


@pytest.fixture(scope="session")
def latest(serving_base: Path) -> pd.DataFrame:
    """The offline store's latest vectors (what the API must serve)."""
    return offline.latest_vectors(Warehouse(serving_base / "churn.duckdb"))


@pytest.fixture()
def make_client(serving_base: Path, embedded_redis, redis_client) -> Iterator[Callable[..., TestClient]]:
    """``make_client(**settings)`` -> a started TestClient on an empty Redis; closed afterwards."""
    opened: list[TestClient] = []

    def make(raise_server_exceptions: bool = True, **overrides) -> TestClient:
        values = {"data_dir": serving_base, "redis_url": embedded_redis.url, "admin_key": ADMIN,
                  "rate_limit_per_minute": 0, "model_poll_seconds": 0.2, **overrides}
        client = TestClient(create_app(Settings(**values)), raise_server_exceptions=raise_server_exceptions)
        opened.append(client.__enter__())
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture()
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


@pytest.fixture(scope="session")
def user_ids(latest: pd.DataFrame) -> list[int]:
    """Twenty known users, in a fixed random order."""
    return [int(u) for u in np.random.default_rng(0).choice(latest["user_id"].to_numpy(), 20, replace=False)]


@pytest.fixture(scope="session")
def unknown_id(latest: pd.DataFrame) -> int:
    """An id in neither store."""
    return int(latest["user_id"].max()) + 1_000_000


@pytest.fixture(scope="session")
def wait_for() -> Callable[..., bool]:
    """``wait_for(condition, timeout)``: poll until true or the timeout passes."""

    def wait(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.05)
        return condition()

    return wait


@pytest.fixture(scope="module")
def launch(serving_base: Path, embedded_redis) -> Iterator[Callable[..., int]]:
    """``launch(**env)`` -> port of ``python -m churn.serving`` (what ``make serve`` runs) on the
    base data dir and the test Redis, with only the given CHURN_* variables; stopped afterwards."""
    from churn.serving import process

    procs = []

    def start(**env: str) -> int:
        port = process.free_port()
        values = {"CHURN_DATA_DIR": str(serving_base), "REDIS_URL": embedded_redis.url, **env}
        saved = dict(os.environ)
        for name in [n for n in os.environ if n.startswith("CHURN_") or n == "REDIS_URL"]:
            del os.environ[name]
        try:
            procs.append(process.start_server(values, workers=1, port=port))
        finally:
            os.environ.clear()
            os.environ.update(saved)
        return port

    yield start
    for proc in procs:
        process.stop_server(proc)
