"""The monitor phase: drift of the newest snapshot against the production model's training data,
performance on matured labels, the alerts' life, and the serving API's figures.

Notebook 08, a daily cycle and the dashboards call these; each reads the warehouse and registry,
runs the pure statistics (``drift``, ``timeline``, ``alerts``) and stores its results in one
transaction per table family (``churn.store.monitoring``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd

from churn.modeling.lifecycle import check_dataset, load_predictor
from churn.modeling.predict import ChurnPredictor
from churn.monitoring.alerts import AlertRule, current_observations, evaluate_alerts
from churn.monitoring.drift import drift_report, feature_drift_summary
from churn.monitoring.timeline import performance_timeline
from churn.registry import ModelRegistry, ModelVersion
from churn.runs import as_of_date
from churn.store import monitoring, offline, raw
from churn.store.warehouse import Warehouse


@dataclass
class MonitorResult:
    """What one monitoring run found and stored."""

    run_id: str
    model: ModelVersion
    predictor: ChurnPredictor
    reference: pd.DataFrame  # the last snapshot the production model was trained on
    current: pd.DataFrame  # the latest snapshot
    report: pd.DataFrame  # one row per (feature, test)
    summary: pd.DataFrame  # one row per feature: drifted, alarm, evidence
    timeline: pd.DataFrame  # performance per snapshot with matured labels
    alerts: pd.DataFrame  # the conditions breached on the latest evidence
    new_alerts: int  # alerts opened by this run (a condition already open stays one alert)
    frame: pd.DataFrame  # every snapshot visible at the run's date (what reference and current were cut from)
    as_of: date  # the run's date (a full build: the newest snapshot's date)
    resolved_alerts: int = 0  # open alerts whose condition cleared in this run

    @property
    def current_at(self) -> pd.Timestamp:
        return pd.Timestamp(self.current.snapshot_at.max())

    @property
    def drifted(self) -> list[str]:
        return list(self.summary[self.summary.drifted].feature)

    @property
    def alarms(self) -> list[str]:
        return list(self.summary[self.summary.alarm].feature)


def alert_rules(alert_auc_min: float, alert_churn_rate_max: float) -> list[AlertRule]:
    """A drift alarm (warning), AUC below ``alert_auc_min`` (critical), churn rate above
    ``alert_churn_rate_max`` (env.yaml's names: ``churn_rate_max`` is the raw-data check's bound)."""
    return [
        AlertRule("feature_drift", 0.5, "above", "warning"),
        AlertRule("auc", float(alert_auc_min), "below", "critical"),
        AlertRule("churn_rate", float(alert_churn_rate_max), "above", "warning"),
    ]


def alert_observations(
    summary: pd.DataFrame, timeline: pd.DataFrame, subject: str, current_at: pd.Timestamp
) -> pd.DataFrame:
    """(metric, subject, value, period) rows the alert rules judge: drift alarms of the current
    snapshot, out-of-training AUC and the churn rate of every matured snapshot."""
    out_of_training = timeline.loc[~timeline.in_training]
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "metric": "feature_drift",
                    "subject": summary.feature,
                    "value": summary.alarm.astype(float),
                    "period": str(current_at.date()),
                }
            ),
            pd.DataFrame(
                {
                    "metric": "auc",
                    "subject": subject,
                    "value": out_of_training["auc"],
                    "period": out_of_training["snapshot_at"].dt.date.astype(str),
                }
            ),
            pd.DataFrame(
                {
                    "metric": "churn_rate",
                    "subject": "all users",
                    "value": timeline.churn_rate,
                    "period": timeline.snapshot_at.dt.date.astype(str),
                }
            ),
        ]
    )


def run_monitor(
    warehouse: Warehouse,
    registry: ModelRegistry,
    model_name: str,
    *,
    alpha: float,
    expected_drift: list[str],
    alert_auc_min: float,
    alert_churn_rate_max: float,
    as_of: Any = None,
    onset: date | None = None,
) -> MonitorResult:
    """Drift of the newest snapshot (at ``as_of``) against the production model's training data,
    performance on every snapshot matured by then, and the alerts' life; appended to
    ``monitoring.*`` under the run's date.

    The reference window is the production model's last training snapshot (from its registry
    record): one cross-section, one vector per user, so the tests' independence holds. Features
    in ``expected_drift`` (drift by construction, e.g. tenure) are tested and reported but never
    alarm. ``as_of`` '' or None: a full build, up to the newest snapshot. ``onset``: the known
    start of the simulator's drift, stored with the run (:func:`drift_detection` reads it).
    """
    predictor, model = load_predictor(registry, model_name)
    check_dataset(model, raw.dataset_info(warehouse))  # monitored only on the data set it was trained on
    day = as_of_date(as_of)
    frame = visible_at(offline.read_features(warehouse), day, int(model.params.get("horizon_days", 0)))
    if frame.empty:
        raise ValueError(f"no feature snapshot on or before as_of {day}: build features for that date first")
    train_snapshots = pd.to_datetime(model.params["train_snapshots"])
    reference = frame[frame.snapshot_at == train_snapshots.max()]
    current = frame[frame.snapshot_at == frame.snapshot_at.max()]
    report = drift_report(reference, current, predictor.features, alpha=float(alpha))
    report["expected_drift"] = report.feature.isin(list(expected_drift))
    summary = feature_drift_summary(report)
    summary["alarm"] = summary.drifted & ~summary.feature.isin(list(expected_drift))
    timeline = performance_timeline(frame, predictor, model.params["threshold"], list(train_snapshots))
    current_at = pd.Timestamp(current.snapshot_at.max())
    run_day = day or current_at.date()
    run_id = f"{model_name}-v{model.version}-{run_day}"
    if len(timeline):  # matured since the last run of this model: first seen now
        seen = monitoring.matured_snapshots(warehouse, model.version, run_id)
        timeline["newly_matured"] = ~timeline.snapshot_at.isin(seen)
    observations = alert_observations(summary, timeline, f"{model_name} v{model.version}", current_at)
    alerts = evaluate_alerts(current_observations(observations), alert_rules(alert_auc_min, alert_churn_rate_max))
    counts = monitoring.write_monitoring_run(
        warehouse, run_id, report.assign(model_version=model.version, drift_onset=onset),
        timeline.assign(model_version=model.version), alerts, as_of=run_day,
    )  # fmt: skip
    return MonitorResult(
        run_id, model, predictor, reference, current, report, summary, timeline, alerts, counts["new"], frame,
        run_day, counts["resolved"],
    )  # fmt: skip


def visible_at(frame: pd.DataFrame, day: date | None, horizon_days: int) -> pd.DataFrame:
    """The offline store as a run of ``day`` sees it: snapshots up to that day, and a label
    mature only when its horizon ended by then (a backfill of an old day sees no later label)."""
    if day is None:
        return frame
    at = pd.Timestamp(day)
    seen = frame[frame.snapshot_at <= at].copy()
    seen["label_mature"] = seen.label_mature & (seen.snapshot_at + pd.Timedelta(days=horizon_days) <= at)
    return seen


def drift_over_time(result: MonitorResult, alpha: float) -> pd.DataFrame:
    """Drifted (1) or not (0) per feature (rows) for every snapshot after the reference, each
    against the same reference: when did each feature start to move?"""
    frame = result.frame
    reference_at = result.reference.snapshot_at.max()
    later = sorted(s for s in frame.snapshot_at.unique() if s > reference_at)
    flags = {
        pd.Timestamp(s).date(): feature_drift_summary(
            drift_report(result.reference, frame[frame.snapshot_at == s], result.predictor.features, alpha=alpha)
        )
        .set_index("feature")
        .drifted
        for s in later
    }
    return pd.DataFrame(flags).astype(int)


def record_api_metrics(warehouse: Warehouse, run_id: str, redis_url: str | None, data_dir: str) -> dict[str, Any]:
    """The serving API's request counts and latency (from Redis) with the online store's hit
    rate, appended to ``monitoring.api_metrics`` under this monitoring run."""
    from churn.store import materialize
    from churn.store.api_state import read_ops
    from churn.store.online import client_from_url
    from churn.store.redis_server import resolve_redis_url

    client = client_from_url(resolve_redis_url(redis_url or None, data_dir))  # one Redis or a cluster
    api = {**read_ops(client), "cache_hit_rate": materialize.online_store(warehouse, client).stats()["hit_rate"]}
    monitoring.write_api_metrics(warehouse, run_id, api)
    return api
