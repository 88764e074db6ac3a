"""The monitor, decide-retraining and ab-test phases as library calls, on the default data."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from churn.abtest.manager import ABTestManager
from churn.abtest.phase import TrafficPlan, ab_test_name, run_ab_test, start_with_outcomes
from churn.modeling.lifecycle import load_predictor, register_result
from churn.modeling.train import train_model
from churn.monitoring.phase import decide_retraining, drift_over_time, run_monitor
from churn.registry import ModelRegistry
from churn.store import abtests, monitoring, offline
from churn.store.warehouse import Warehouse

MONITOR = {"alpha": 0.05, "expected_drift": ["tenure_days"], "alert_auc_min": 0.65, "alert_churn_rate_max": 0.03}
RETRAIN = {"horizon_days": 30, "n_valid_snapshots": 2, "min_drifted": 2, "max_auc_drop": 0.05,
           "min_new_labels": 1500, "code_version": "abc1234", "cooldown_days": 0, "min_fresh_labels": 0}  # fmt: skip
# env.yaml's ab_* values, spelt out: the library has no defaults for them
TRAFFIC = {"traffic_split": 0.5, "offer_share": 0.2, "offer_effect": 0.4, "window_days": 30, "mde_relative": 0.3,
           "seed": 42}  # fmt: skip


@pytest.fixture(scope="module")
def drift_warehouse(tmp_path_factory) -> Warehouse:
    """The default build's data and features (1,000 users, seed 42, scenario drift)."""
    from churn.data.synthetic import SimulationParams, iter_chunks
    from churn.features import default_feature_spec, snapshot_plan
    from churn.store import raw

    wh = Warehouse(tmp_path_factory.mktemp("drift") / "churn.duckdb")
    raw.write_raw_tables(wh, iter_chunks(SimulationParams(scenario="drift"), progress=False))
    spec = default_feature_spec()
    snapshots, end = snapshot_plan(*raw.data_range(wh))
    frame = offline.compute_features(wh, spec, snapshots, 30, end)
    offline.write_features(wh, frame, spec.version, spec.feature_names, spec.to_dict())
    return wh


@pytest.fixture()
def platform(drift_warehouse, tmp_path):
    """A private copy of the drift warehouse with a production model trained on it."""
    wh = Warehouse(tmp_path / "churn.duckdb")
    shutil.copyfile(drift_warehouse.path, wh.path)
    registry = ModelRegistry(wh, tmp_path / "models")
    feature_set, features = offline.feature_set(wh)
    frame = offline.read_features(wh)
    result = train_model(frame, features, horizon_days=30, n_valid=2)
    register_result(registry, result, frame, model_name="churn_model", feature_set=feature_set, horizon_days=30,
                    fingerprint=offline.features_fingerprint(wh), code_version="abc1234", reason="first",
                    stage="production")  # fmt: skip
    return wh, registry


def test_monitor_stores_drift_and_raises_each_alert_once(platform):
    """The drift scenario's shifted features alarm (tenure, drifting by construction, never does);
    a second monitoring run on the same evidence stores the same run and raises no new alert."""
    wh, registry = platform
    first = run_monitor(wh, registry, "churn_model", **MONITOR)
    assert {"monthly_price", "activity_trend"} & set(first.alarms)
    assert "tenure_days" not in first.alarms
    assert first.new_alerts == len(first.alerts) > 0
    again = run_monitor(wh, registry, "churn_model", **MONITOR)
    assert again.new_alerts == 0 and again.run_id == first.run_id
    stored = monitoring.read_table(wh, monitoring.DRIFT)
    assert set(stored.run_id) == {first.run_id} and len(stored) == len(first.report)
    flags = drift_over_time(first, alpha=0.05)
    assert sorted(flags.index) == sorted(first.predictor.features) and flags.isin([0, 1]).all().all()


def test_retraining_registers_one_candidate_and_a_rerun_reuses_it(platform):
    """Drift fires the trigger, a candidate is registered straight into staging; deciding again on
    the same data reuses that version (no duplicate) and records a second decision."""
    wh, registry = platform
    run_monitor(wh, registry, "churn_model", **MONITOR)
    first = decide_retraining(wh, registry, "churn_model", **RETRAIN)
    assert "drift" in first.fired and first.candidate is not None and first.candidate.stage == "staging"
    again = decide_retraining(wh, registry, "churn_model", **RETRAIN)
    assert again.candidate.version == first.candidate.version
    assert [m.version for m in registry.list_models("churn_model", stage="staging")] == [first.candidate.version]
    assert not registry.list_models("churn_model", stage="none")
    assert len(monitoring.read_table(wh, monitoring.DECISIONS)) == 2


def test_a_test_left_without_outcomes_is_resumed_and_concluded_once(platform):
    """A test row whose run died before its outcomes were recorded no longer blocks the phase:
    the next run records the outcomes (same arms) and concludes it; a third run changes nothing."""
    wh, registry = platform
    run_monitor(wh, registry, "churn_model", **MONITOR)
    candidate = decide_retraining(wh, registry, "churn_model", **RETRAIN).candidate
    production = registry.get_production("churn_model")
    name = ab_test_name("churn_model", production.version, candidate.version)
    manager = ABTestManager(wh, registry, "churn_model")
    models = {arm: load_predictor(registry, "churn_model", m.version)[0]
              for arm, m in (("control", production), ("variant", candidate))}  # fmt: skip
    plan = TrafficPlan(**TRAFFIC, max_days=14)
    with pytest.MonkeyPatch.context() as patch:  # the run dies right after the test row is written
        patch.setattr(manager, "record_outcomes", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
        with pytest.raises(KeyboardInterrupt):
            start_with_outcomes(wh, manager, name, models, production, candidate, plan)
    assert abtests.read_results(wh, name).empty
    arms_before = abtests.read_assignments(wh, name)

    ab = run_ab_test(wh, registry, "churn_model", plan)
    assert ab.test_name == name and ab.decision is not None
    assert ab.final["status"] == "concluded" and ab.outcome == ab.decision.action
    pd.testing.assert_frame_equal(abtests.read_results(wh, name)[["user_id", "arm"]], arms_before)
    events = registry.list_events("churn_model")
    assert events.reason.str.contains(f"A/B test {name}").sum() >= 1

    again = run_ab_test(wh, registry, "churn_model", plan)
    assert again.decision is None and again.final["concluded_at"] == ab.final["concluded_at"]
