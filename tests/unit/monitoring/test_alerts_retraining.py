"""Alerts raised once; retraining triggers fire on their evidence only."""

from __future__ import annotations

from datetime import date

import pandas as pd

from churn.monitoring.alerts import AlertRule, current_observations, evaluate_alerts
from churn.monitoring.retraining import retraining_triggers
from churn.store import monitoring

THRESHOLDS = {"min_drifted": 2, "max_auc_drop": 0.05, "min_new_labels": 1500}


def _observations(value: float) -> pd.DataFrame:
    return pd.DataFrame([{"metric": "psi", "subject": "events_30d", "value": value, "period": "2026-01-01"}])


def test_alert_fires_only_past_its_threshold():
    rules = [AlertRule("psi", 0.2, "above", "warning")]
    assert evaluate_alerts(_observations(0.1), rules).empty
    alerts = evaluate_alerts(_observations(0.35), rules)
    assert alerts.alert_key.tolist() == ["psi:events_30d:2026-01-01"] and "0.35" in alerts.message[0]


def _breaches(values: dict[str, float], period: str) -> pd.DataFrame:
    observations = pd.DataFrame([{"metric": "psi", "subject": subject, "value": value, "period": period}
                                 for subject, value in values.items()])  # fmt: skip
    return evaluate_alerts(observations, [AlertRule("psi", 0.2)])


def test_an_alert_is_raised_once_stays_open_and_is_resolved_with_its_date(warehouse):
    """Day 1 opens an alert per breached condition; day 2 with the same breach opens nothing new
    (the alert stays open, last seen day 2); day 3 without it resolves it on day 3; day 4 breached
    again opens a second alert for the condition. A re-run of a day changes nothing."""
    none = pd.DataFrame()
    day = [date(2026, 1, d) for d in range(1, 5)]
    first = monitoring.write_monitoring_run(warehouse, "r1", none, none, _breaches({"a": 0.35, "b": 0.3}, "p1"), day[0])
    assert first == {"new": 2, "still_open": 0, "resolved": 0}
    again = monitoring.write_monitoring_run(warehouse, "r1", none, none, _breaches({"a": 0.35, "b": 0.3}, "p1"), day[0])
    assert again == {"new": 0, "still_open": 2, "resolved": 0}
    second = monitoring.write_monitoring_run(warehouse, "r2", none, none, _breaches({"a": 0.4, "b": 0.1}, "p2"), day[1])
    assert second == {"new": 0, "still_open": 1, "resolved": 1}
    third = monitoring.write_monitoring_run(warehouse, "r3", none, none, _breaches({"a": 0.1}, "p3"), day[2])
    assert third == {"new": 0, "still_open": 0, "resolved": 1}
    fourth = monitoring.write_monitoring_run(warehouse, "r4", none, none, _breaches({"a": 0.5}, "p4"), day[3])
    assert fourth == {"new": 1, "still_open": 0, "resolved": 0}
    rows = monitoring.read_table(warehouse, monitoring.ALERTS, "ORDER BY raised_on, subject")
    by_key = rows.set_index("alert_key")
    assert list(rows.alert_key) == ["psi:a:p1", "psi:b:p1", "psi:a:p4"]
    assert by_key.loc["psi:a:p1", "status"] == "resolved" and by_key.loc["psi:a:p1", "resolved_on"].date() == day[2]
    assert by_key.loc["psi:a:p1", "last_seen_on"].date() == day[1] and by_key.loc["psi:a:p1", "value"] == 0.4
    assert by_key.loc["psi:b:p1", "resolved_on"].date() == day[1]
    assert by_key.loc["psi:a:p4", "status"] == "open" and pd.isna(by_key.loc["psi:a:p4", "resolved_on"])


def test_an_old_alerts_table_gains_the_new_columns(warehouse):
    """A warehouse written before alerts had a life (no condition, no dates) is migrated in place:
    its open alert keeps its row and is resolved when the condition clears."""
    with warehouse.writer() as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS monitoring")
        con.execute("""CREATE TABLE monitoring.alerts (alert_key VARCHAR PRIMARY KEY, severity VARCHAR NOT NULL,
            metric VARCHAR NOT NULL, subject VARCHAR, value DOUBLE, threshold DOUBLE, period VARCHAR,
            message VARCHAR NOT NULL, status VARCHAR NOT NULL, raised_at TIMESTAMP NOT NULL)""")
        con.execute(
            "INSERT INTO monitoring.alerts VALUES ('psi:a:p0', 'warning', 'psi', 'a', 0.3, 0.2, 'p0', "
            "'old', 'open', now())"
        )
    none = pd.DataFrame()
    counts = monitoring.write_monitoring_run(warehouse, "r1", none, none, _breaches({"a": 0.1}, "p1"), date(2026, 1, 1))
    assert counts == {"new": 0, "still_open": 0, "resolved": 1}
    row = monitoring.read_table(warehouse, monitoring.ALERTS).iloc[0]
    assert row.condition == "psi:a" and row.status == "resolved" and row.resolved_on.date() == date(2026, 1, 1)


def test_alerts_judge_the_latest_evidence_of_each_condition():
    """An old breach no longer holds once a newer period of the same condition has a value; a
    newer period without a value (too few churners) neither clears nor raises."""
    observations = pd.DataFrame({
        "metric": ["auc"] * 3 + ["rate"] * 2, "subject": ["m"] * 3 + ["all"] * 2,
        "value": [0.5, 0.8, float("nan"), 0.9, 0.1], "period": ["p1", "p2", "p3", "p1", "p2"]})  # fmt: skip
    latest = current_observations(observations)
    assert sorted(zip(latest.metric, latest.period, strict=True)) == [("auc", "p2"), ("rate", "p2")]


def _timeline(aucs: list[float], in_training: list[bool]) -> pd.DataFrame:
    return pd.DataFrame({"auc": aucs, "in_training": in_training})


def test_triggers_carry_their_evidence():
    drift = pd.DataFrame({"feature": ["a", "b", "c"], "drifted": [True, True, False]})
    triggers = retraining_triggers(
        drift, _timeline([0.8, 0.7], [True, False]), reference_auc=0.8, new_labelled=100, **THRESHOLDS
    )
    fired = dict(zip(triggers.trigger, triggers.fired, strict=True))
    assert fired == {"drift": True, "performance_degradation": True, "new_data_volume": False}
    assert "a, b" in triggers.set_index("trigger").loc["drift", "evidence"]


def test_quiet_monitoring_fires_nothing():
    drift = pd.DataFrame({"feature": ["a"], "drifted": [False]})
    triggers = retraining_triggers(drift, _timeline([0.8], [True]), reference_auc=0.8, new_labelled=0, **THRESHOLDS)
    assert not triggers.fired.any()
