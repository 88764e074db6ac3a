"""The monitoring phase's drift verdict on the platform's own features, against known truth:
quiet under `stable`, the shifted features flagged under `drift`."""

from __future__ import annotations

import pandas as pd
import pytest

from churn.data.synthetic import DRIFT_TRUTH, SimulationParams
from churn.features import default_feature_spec, snapshot_plan
from churn.monitoring.drift import drift_report, feature_drift_summary
from churn.store import offline, raw
from churn.store.raw import write_raw_tables
from churn.store.warehouse import Warehouse

FEATURES = default_feature_spec().feature_names
EXPECTED = ["tenure_days"]  # grows with calendar time: env.yaml's drift_expected


def _verdict(frame: pd.DataFrame) -> set[str]:
    """Drift alarms as 08_monitor raises them: last training snapshot vs the current one."""
    labelled = sorted(frame[frame.label_mature].snapshot_at.unique())
    reference = frame[frame.snapshot_at == labelled[-3]]  # last training snapshot (2 validation ones)
    current = frame[frame.snapshot_at == frame.snapshot_at.max()]
    summary = feature_drift_summary(drift_report(reference, current, FEATURES))
    return set(summary[summary.drifted].feature) - set(EXPECTED)


@pytest.fixture(scope="module")
def drift_features(tmp_path_factory, simulated) -> pd.DataFrame:
    warehouse = Warehouse(tmp_path_factory.mktemp("drift") / "churn.duckdb")
    write_raw_tables(warehouse, [simulated(SimulationParams(scenario="drift"))])
    snapshots, end = snapshot_plan(*raw.data_range(warehouse))
    return offline.compute_features(warehouse, default_feature_spec(), snapshots, 30, end)


def test_stable_world_raises_no_drift_alarm(default_features):
    assert _verdict(default_features) == set()


def test_drift_scenario_flags_shifted_features_only(drift_features):
    """Every alarm is a truly shifted feature, and the strongly shifted ones are caught."""
    alarms = _verdict(drift_features)
    assert alarms <= set(DRIFT_TRUTH["shifted"])
    strong = set(DRIFT_TRUTH["shifted"]) - set(DRIFT_TRUTH["weakly_shifted"])
    assert len(alarms & strong) >= len(strong) - 1, alarms
