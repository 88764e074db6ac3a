"""Alert rules over monitoring observations; each alert has a stable key so it is raised once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class AlertRule:
    """Raise ``severity`` when ``metric`` is above (or below) ``threshold``."""

    metric: str
    threshold: float
    direction: str = "above"  # "above" | "below"
    severity: str = "warning"  # "info" | "warning" | "critical"

    def breached(self, value: float) -> bool:
        if pd.isna(value):
            return False
        return value > self.threshold if self.direction == "above" else value < self.threshold


def evaluate_alerts(observations: pd.DataFrame, rules: list[AlertRule]) -> pd.DataFrame:
    """Alerts for ``observations`` (metric, subject, value, period).

    ``alert_key`` = metric:subject:period, so re-running on the same evidence yields the same
    keys and the store can skip alerts it already holds.
    """
    by_metric = {r.metric: r for r in rules}
    rows = []
    obs: Any  # a row of (metric, subject, value, period)
    for obs in observations.itertuples(index=False):
        rule = by_metric.get(obs.metric)
        if rule is not None and rule.breached(obs.value):
            rows.append({
                "alert_key": f"{obs.metric}:{obs.subject}:{obs.period}", "severity": rule.severity,
                "metric": obs.metric, "subject": obs.subject, "value": float(obs.value),
                "threshold": rule.threshold, "period": str(obs.period),
                "message": f"{obs.metric} of {obs.subject} is {obs.value:.4g}, {rule.direction} the "
                           f"threshold {rule.threshold:g} ({obs.period})",
            })  # fmt: skip
    columns = ["alert_key", "severity", "metric", "subject", "value", "threshold", "period", "message"]
    return pd.DataFrame(rows, columns=columns)


def current_observations(observations: pd.DataFrame) -> pd.DataFrame:
    """The newest observation with a value of each condition (metric, subject).

    An alert's condition is judged on its latest evidence: a churn rate that exceeded the
    threshold months ago but not on the newest matured snapshot is no longer a breach. A period
    without a value (e.g. too few churners for an AUC) does not clear or raise anything.
    """
    known = observations.dropna(subset=["value"])
    return known.sort_values("period", kind="stable").groupby(["metric", "subject"], sort=False).tail(1)
