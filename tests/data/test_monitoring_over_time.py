"""Monitoring and retraining over daily cycles, on the ``cycle_platform`` of tests/conftest.py: a
build followed by one unlabelled snapshot per later day (what a cycle for that day adds)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from churn.monitoring.phase import decide_retraining, detection_sentence, drift_detection, run_monitor
from churn.store import monitoring

# the cycle world and its trained platform are session fixtures: one worker makes them for both
# modules (test_ab_cycles.py, test_monitoring_over_time.py)
pytestmark = pytest.mark.xdist_group("cycle_world")

MONITOR = {"alpha": 0.05, "expected_drift": ["tenure_days"], "alert_auc_min": 0.65, "alert_churn_rate_max": 0.03}
RETRAIN = {"horizon_days": 30, "n_valid_snapshots": 2, "min_drifted": 2, "max_auc_drop": 0.05,
           "min_new_labels": 1500, "code_version": "abc1234"}  # fmt: skip
DAYS = [date(2026, 1, d) for d in range(2, 8)]  # the cycles after the build (conftest.CYCLE_DAYS)


def test_each_cycle_appends_its_run_and_an_alert_stays_one_row(cycle_platform):
    """One drift run and one timeline per as_of, the newest snapshot (the as_of's) against the
    production model's last training snapshot; a drift alarm raised on day 1 and present every
    day after is still one open alert; performance rows are 'newly matured' only on the first run."""
    wh, registry, params = cycle_platform
    runs = [run_monitor(wh, registry, "churn_model", **MONITOR, as_of=str(d)) for d in DAYS[:3]]
    production = registry.get_production("churn_model")
    for run, day in zip(runs, DAYS[:3], strict=True):
        assert run.current_at == pd.Timestamp(day) and run.as_of == day
        assert run.reference.snapshot_at.max() == pd.to_datetime(production.params["train_snapshots"]).max()
    drift = monitoring.runs_by_as_of(wh, monitoring.DRIFT)
    assert [d.date() for d in pd.to_datetime(drift.as_of.unique())] == DAYS[:3]
    assert runs[0].new_alerts > 0 and runs[0].alarms
    persistent = set(runs[0].alarms) & set(runs[1].alarms) & set(runs[2].alarms)
    assert persistent, "the drift scenario's alarms persist from day to day"
    alerts = monitoring.read_table(wh, monitoring.ALERTS)
    for feature in persistent:
        rows = alerts[alerts.condition == f"feature_drift:{feature}"]
        assert len(rows) == 1 and rows.status.iloc[0] == "open"
        assert rows.raised_on.iloc[0].date() == DAYS[0] and rows.last_seen_on.iloc[0].date() == DAYS[2]
    timeline = monitoring.read_table(wh, monitoring.TIMELINE)
    assert timeline[timeline.as_of == pd.Timestamp(DAYS[0])].newly_matured.all()
    assert not timeline[timeline.as_of == pd.Timestamp(DAYS[1])].newly_matured.any()


def test_drift_detection_reports_its_delay_after_the_known_onset(cycle_platform):
    """Detected on the first day a run alarms; the delay is counted from the simulator's onset,
    which the runs store (without one, e.g. own data, nothing is claimed)."""
    wh, registry, params = cycle_platform
    run_monitor(wh, registry, "churn_model", **MONITOR, as_of=str(DAYS[0]))
    assert drift_detection(wh) is None and "not measured" in detection_sentence(drift_detection(wh))
    for day in DAYS[:2]:
        run_monitor(wh, registry, "churn_model", **MONITOR, as_of=str(day), onset=params.drift_date)
    found = drift_detection(wh)
    assert found["onset"] == params.drift_date == date(2025, 10, 18)
    assert found["detected_on"] == DAYS[0] and found["delay_days"] == (DAYS[0] - date(2025, 10, 18)).days
    assert f"drift detected on {DAYS[0]}, {found['delay_days']} days after onset" in detection_sentence(found)


def test_retraining_respects_the_cooldown_for_the_same_drift(cycle_platform):
    """With a 3-day cool-down the drift that fires every day trains a candidate on day 1, holds
    on days 2 and 3 (the reason names the cool-down), and after it trains again only once new
    labels matured (the build's last snapshot matures 30 days after it, on 2026-01-31); a re-run
    of a day registers no new version. Every decision is stored with its as_of and reasons."""
    wh, registry, _ = cycle_platform
    days = [*DAYS[:4], date(2026, 1, 30), date(2026, 1, 31)]
    expected = ["candidate_registered", "cooldown", "cooldown", "no_new_labels", "no_new_labels",
                "candidate_registered"]  # fmt: skip
    actions = []
    for day in days:
        run_monitor(wh, registry, "churn_model", **MONITOR, as_of=str(day))
        decision = decide_retraining(wh, registry, "churn_model", **RETRAIN, as_of=str(day), cooldown_days=3,
                                     min_fresh_labels=500)  # fmt: skip
        assert "drift" in decision.fired
        actions.append(decision)
    assert [a.action for a in actions] == expected
    assert any(f"cool-down until {DAYS[0] + pd.Timedelta(days=3)}" in r for r in actions[1].reasons)
    assert actions[1].candidate is None and actions[3].candidate is None
    first, second = actions[0].candidate, actions[-1].candidate
    assert second.version != first.version  # trained on the labels matured since
    again = decide_retraining(wh, registry, "churn_model", **RETRAIN, as_of=str(days[-1]), cooldown_days=3,
                              min_fresh_labels=500)  # fmt: skip
    assert again.action == "candidate_registered" and again.candidate.version == second.version
    stored = monitoring.read_table(wh, monitoring.DECISIONS, "ORDER BY decided_at")
    assert [d.date() for d in stored.as_of] == [*days, days[-1]] and list(stored.action) == [*expected, expected[-1]]
    assert [m.version for m in registry.list_models("churn_model", stage="staging")] == [second.version]
    assert not registry.list_models("churn_model", stage="none")


def test_no_candidate_without_enough_new_matured_labels(cycle_platform):
    """A fired trigger without enough labels new to production's training trains nothing."""
    wh, registry, _ = cycle_platform
    run_monitor(wh, registry, "churn_model", **MONITOR, as_of=str(DAYS[0]))
    decision = decide_retraining(wh, registry, "churn_model", **RETRAIN, as_of=str(DAYS[0]),
                                 cooldown_days=0, min_fresh_labels=10**6)  # fmt: skip
    assert decision.fired and decision.action == "too_few_new_labels" and decision.candidate is None
    assert not registry.list_models("churn_model", stage="staging")
