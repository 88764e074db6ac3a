"""Fixtures shared by unit tests of the daily cycle's decisions (monitoring, retraining, A/B)."""

from __future__ import annotations

import shutil
from datetime import date, timedelta

import pandas as pd
import pytest

from churn.modeling.lifecycle import register_result
from churn.modeling.train import train_model
from churn.registry import ModelRegistry
from churn.store import offline
from churn.store.warehouse import Warehouse

BUILD_END = date(2026, 1, 1)
CYCLE_DAYS = [BUILD_END + timedelta(days=d) for d in range(1, 7)]


@pytest.fixture(scope="session")
def cycle_world(tmp_path_factory):
    """(warehouse, simulation parameters): a drift world simulated a month past the build's end,
    the build's snapshots (labels mature by the build's end) and one unlabelled snapshot per
    cycle day after it (what a cycle for that day adds)."""
    from churn.data.synthetic import SimulationParams, iter_chunks
    from churn.features import default_feature_spec, snapshot_plan
    from churn.store import raw

    params = SimulationParams(scenario="drift", end=date(2026, 2, 1), drift_start=date(2025, 10, 18))
    wh = Warehouse(tmp_path_factory.mktemp("cycles") / "churn.duckdb")
    raw.write_raw_tables(wh, iter_chunks(params, progress=False))
    spec = default_feature_spec()
    start, _ = raw.data_range(wh)
    snapshots, build_end = snapshot_plan(start, pd.Timestamp(BUILD_END) - pd.Timedelta(seconds=1))
    build = offline.compute_features(wh, spec, snapshots, 30, build_end)
    daily = offline.compute_features(wh, spec, [pd.Timestamp(d).to_pydatetime() for d in CYCLE_DAYS], 30,
                                     pd.Timestamp(params.end))  # fmt: skip
    frame = pd.concat([build, daily.assign(label_mature=False)], ignore_index=True)
    offline.write_features(wh, frame, spec.version, spec.feature_names, spec.to_dict())
    return wh, params


@pytest.fixture()
def platform(cycle_world, tmp_path):
    """(warehouse, registry, simulation parameters): a private copy of the cycle world with a
    production model trained on the build's snapshots."""
    source, params = cycle_world
    wh = Warehouse(tmp_path / "churn.duckdb")
    shutil.copyfile(source.path, wh.path)
    registry = ModelRegistry(wh, tmp_path / "models")
    feature_set, features = offline.feature_set(wh)
    frame = offline.read_features(wh)
    frame = frame[frame.snapshot_at <= pd.Timestamp(BUILD_END)]
    result = train_model(frame, features, horizon_days=30, n_valid=2)
    register_result(registry, result, frame, model_name="churn_model", feature_set=feature_set, horizon_days=30,
                    fingerprint=offline.features_fingerprint(wh), code_version="abc1234", reason="first",
                    stage="production")  # fmt: skip
    return wh, registry, params
