"""The monitor and decide-retraining phases as library functions.

The phase notebooks (08, 09), a daily cycle, the tests and the dashboards call these: each reads
the warehouse and registry, runs the pure statistics (``drift``, ``timeline``, ``alerts``,
``retraining``) and stores its results in one transaction per table family.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from churn.modeling.lifecycle import check_dataset, dataset_params, load_predictor, register_result, training_options
from churn.modeling.predict import ChurnPredictor
from churn.modeling.train import TrainingResult, train_model
from churn.monitoring.alerts import AlertRule, evaluate_alerts
from churn.monitoring.drift import drift_report, feature_drift_summary
from churn.monitoring.retraining import retraining_triggers
from churn.monitoring.timeline import performance_timeline
from churn.registry import ModelRegistry, ModelVersion
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
    alerts: pd.DataFrame  # the alerts this evidence raises
    new_alerts: int  # of which not raised before
    frame: pd.DataFrame  # every snapshot of the offline store (what reference and current were cut from)

    @property
    def current_at(self) -> pd.Timestamp:
        return pd.Timestamp(self.current.snapshot_at.max())

    @property
    def drifted(self) -> list[str]:
        return list(self.summary[self.summary.drifted].feature)

    @property
    def alarms(self) -> list[str]:
        return list(self.summary[self.summary.alarm].feature)


def alert_rules(auc_min: float, churn_rate_max: float) -> list[AlertRule]:
    """A drift alarm (warning), AUC below ``auc_min`` (critical), churn rate above ``churn_rate_max``."""
    return [
        AlertRule("feature_drift", 0.5, "above", "warning"),
        AlertRule("auc", float(auc_min), "below", "critical"),
        AlertRule("churn_rate", float(churn_rate_max), "above", "warning"),
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
    auc_min: float,
    churn_rate_max: float,
) -> MonitorResult:
    """Drift of the latest snapshot against the production model's last training snapshot,
    performance on every matured snapshot, and alerts (raised once); stored in ``monitoring.*``.

    Features in ``expected_drift`` (drift by construction, e.g. tenure) are tested and reported
    but never alarm.
    """
    predictor, model = load_predictor(registry, model_name)
    check_dataset(model, raw.dataset_info(warehouse))  # monitored only on the data set it was trained on
    frame = offline.read_features(warehouse)
    train_snapshots = pd.to_datetime(model.params["train_snapshots"])
    reference = frame[frame.snapshot_at == train_snapshots.max()]
    current = frame[frame.snapshot_at == frame.snapshot_at.max()]
    report = drift_report(reference, current, predictor.features, alpha=float(alpha))
    report["expected_drift"] = report.feature.isin(list(expected_drift))
    summary = feature_drift_summary(report)
    summary["alarm"] = summary.drifted & ~summary.feature.isin(list(expected_drift))
    timeline = performance_timeline(frame, predictor, model.params["threshold"], list(train_snapshots))
    current_at = pd.Timestamp(current.snapshot_at.max())
    observations = alert_observations(summary, timeline, f"{model_name} v{model.version}", current_at)
    alerts = evaluate_alerts(observations, alert_rules(auc_min, churn_rate_max))
    run_id = f"{model_name}-v{model.version}-{current_at.date()}"
    new_alerts = monitoring.write_monitoring_run(
        warehouse, run_id, report, timeline.assign(model_version=model.version), alerts
    )
    return MonitorResult(
        run_id, model, predictor, reference, current, report, summary, timeline, alerts, new_alerts, frame
    )


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
    import redis

    from churn.serving.ops import read_ops
    from churn.store import materialize
    from churn.store.redis_server import resolve_redis_url

    client = redis.Redis.from_url(resolve_redis_url(redis_url or None, data_dir))
    api = {**read_ops(client), "cache_hit_rate": materialize.online_store(warehouse, client).stats()["hit_rate"]}
    monitoring.write_api_metrics(warehouse, run_id, api)
    return api


@dataclass
class RetrainingResult:
    """The triggers with their evidence, and the candidate they led to (if any)."""

    production: ModelVersion
    triggers: pd.DataFrame
    candidate: ModelVersion | None
    training: TrainingResult | None

    @property
    def action(self) -> str:
        return "candidate_registered" if self.candidate is not None else "no_action"

    @property
    def fired(self) -> list[str]:
        return list(self.triggers[self.triggers.fired].trigger)


def decide_retraining(
    warehouse: Warehouse,
    registry: ModelRegistry,
    model_name: str,
    *,
    horizon_days: int,
    n_valid_snapshots: int,
    min_drifted: int,
    max_auc_drop: float,
    min_new_labels: int,
    code_version: str,
) -> RetrainingResult:
    """Evaluate the drift, degradation and volume triggers on the latest monitoring run; when
    one fires, train a candidate on the recent window (validated on the latest matured snapshot
    only), register it as the one staging candidate (older ones archived), and record the
    decision in ``monitoring.retraining_decisions``."""
    production = registry.get_production(model_name)
    if production is None:
        raise ValueError(f"model {model_name!r} has no production version: run train-model first")
    frame = offline.read_features(warehouse)
    summary = monitoring.latest_run(warehouse, monitoring.DRIFT)
    alarming = summary.assign(drifted=summary.drifted & ~summary.expected_drift)
    drift_summary = alarming.groupby("feature", as_index=False).agg(drifted=("drifted", "any"))
    timeline = monitoring.latest_run(warehouse, monitoring.TIMELINE)
    trained_until = pd.to_datetime(production.params["valid_snapshots"]).max()
    new_labelled = int((frame.label_mature & (frame.snapshot_at > trained_until)).sum())
    triggers = retraining_triggers(
        drift_summary,
        timeline,
        reference_auc=production.metrics["auc"],
        new_labelled=new_labelled,
        min_drifted_features=int(min_drifted),
        max_auc_drop=float(max_auc_drop),
        min_new_labelled=int(min_new_labels),
    )
    candidate, result = None, None
    if triggers.fired.any():
        feature_set, features = offline.feature_set(warehouse)
        result = train_model(
            frame,
            features,
            horizon_days=int(horizon_days),
            n_valid=max(1, int(n_valid_snapshots) - 1),
            **training_options(production),  # the same model kind, transforms and baseline
        )
        fired = ", ".join(triggers[triggers.fired].trigger)
        candidate = register_result(
            registry, result, frame, model_name=model_name, feature_set=feature_set,
            horizon_days=int(horizon_days), fingerprint=offline.features_fingerprint(warehouse),
            code_version=code_version, reason=f"candidate: retraining triggered by {fired}",
            extra_params={"trigger": fired, **dataset_params(raw.dataset_info(warehouse))}, stage="staging",
        )  # fmt: skip
        for older in registry.list_models(model_name, stage="staging"):
            if older.version != candidate.version:  # one candidate at a time: the newest one
                registry.archive_model(model_name, older.version, f"superseded by candidate v{candidate.version}")
    decision = RetrainingResult(production, triggers, candidate, result)
    monitoring.write_retraining_decision(
        warehouse, model_name, production.version, triggers, decision.action,
        candidate.version if candidate is not None else None,
    )  # fmt: skip
    return decision
