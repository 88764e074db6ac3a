"""Alerts raised once; retraining triggers fire on their evidence only."""

from __future__ import annotations

import pandas as pd

from churn.monitoring.alerts import AlertRule, evaluate_alerts
from churn.monitoring.retraining import retraining_triggers
from churn.store import monitoring


def _observations(value: float) -> pd.DataFrame:
    return pd.DataFrame([{"metric": "psi", "subject": "events_30d", "value": value, "period": "2026-01-01"}])


def test_alert_fires_only_past_its_threshold():
    rules = [AlertRule("psi", 0.2, "above", "warning")]
    assert evaluate_alerts(_observations(0.1), rules).empty
    alerts = evaluate_alerts(_observations(0.35), rules)
    assert alerts.alert_key.tolist() == ["psi:events_30d:2026-01-01"] and "0.35" in alerts.message[0]


def test_an_alert_is_raised_once_not_once_per_run(warehouse):
    """Storing the same evidence twice keeps one alert row."""
    alerts = evaluate_alerts(_observations(0.35), [AlertRule("psi", 0.2)])
    drift = pd.DataFrame({"feature": ["events_30d"], "test": ["psi"]})
    timeline = pd.DataFrame({"snapshot_at": [pd.Timestamp("2026-01-01")]})
    assert monitoring.write_monitoring_run(warehouse, "r1", drift, timeline, alerts) == 1
    assert monitoring.write_monitoring_run(warehouse, "r2", drift, timeline, alerts) == 0
    assert len(monitoring.read_table(warehouse, monitoring.ALERTS)) == 1
    assert len(monitoring.read_table(warehouse, monitoring.DRIFT)) == 2


def _timeline(aucs: list[float], in_training: list[bool]) -> pd.DataFrame:
    return pd.DataFrame({"auc": aucs, "in_training": in_training})


def test_triggers_carry_their_evidence():
    drift = pd.DataFrame({"feature": ["a", "b", "c"], "drifted": [True, True, False]})
    triggers = retraining_triggers(drift, _timeline([0.8, 0.7], [True, False]), reference_auc=0.8, new_labelled=100)
    fired = dict(zip(triggers.trigger, triggers.fired, strict=True))
    assert fired == {"drift": True, "performance_degradation": True, "new_data_volume": False}
    assert "a, b" in triggers.set_index("trigger").loc["drift", "evidence"]


def test_quiet_monitoring_fires_nothing():
    drift = pd.DataFrame({"feature": ["a"], "drifted": [False]})
    triggers = retraining_triggers(drift, _timeline([0.8], [True]), reference_auc=0.8, new_labelled=0)
    assert not triggers.fired.any()
