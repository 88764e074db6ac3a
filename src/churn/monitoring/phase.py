"""The monitor and decide-retraining phases as library functions.

The phase notebooks (08, 09), a daily cycle, the tests and the dashboards call these: each reads
the warehouse and registry, runs the pure statistics (``drift``, ``timeline``, ``alerts``,
``retraining``) and stores its results in one transaction per table family.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pandas as pd

from churn.modeling.lifecycle import check_dataset, dataset_params, load_predictor, register_result, training_options
from churn.modeling.predict import ChurnPredictor
from churn.modeling.train import TrainingResult, train_model
from churn.monitoring.alerts import AlertRule, current_observations, evaluate_alerts
from churn.monitoring.drift import drift_report, feature_drift_summary
from churn.monitoring.retraining import retraining_triggers
from churn.monitoring.timeline import performance_timeline
from churn.registry import ModelRegistry, ModelVersion
from churn.runs import as_of_date
from churn.store import abtests, monitoring, offline, raw
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
    alerts = evaluate_alerts(current_observations(observations), alert_rules(auc_min, churn_rate_max))
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


def drift_onset(warehouse: Warehouse, scenario: str, start: Any, end: Any) -> date | None:
    """The day the simulator's drift scenario begins (None for own data or the stable world).

    Whether the data is simulated is read from the data set's record (``raw_data.dataset``), not
    from the simulator's truth table: monitoring code never touches the truth (tests/unit/test_truth_guard.py).
    """
    from churn.data.synthetic import SimulationParams

    info = raw.dataset_info(warehouse) or {}
    if scenario != "drift" or info.get("source") != "synthetic":
        return None
    return SimulationParams(start=date.fromisoformat(str(start)), end=date.fromisoformat(str(end)),
                            scenario="drift").drift_date  # fmt: skip


def drift_detection(warehouse: Warehouse, onset: date | None = None) -> dict[str, Any] | None:
    """The first monitoring run on or after ``onset`` (default: the one the newest run stored)
    with a drift alarm: its date, the delay in days after the onset and the features that
    alarmed (None: no onset known; ``detected_on`` None: not detected yet)."""
    return drift_detection_in(monitoring.runs_by_as_of(warehouse, monitoring.DRIFT), onset)


def drift_detection_in(drift: pd.DataFrame, onset: date | None = None) -> dict[str, Any] | None:
    """:func:`drift_detection` on drift rows already read (one run per as_of)."""
    if onset is None and len(drift) and "drift_onset" in drift and drift.drift_onset.notna().any():
        onset = pd.Timestamp(drift.drift_onset.dropna().iloc[-1]).date()
    if onset is None or drift.empty:
        return None
    alarms = drift[drift.drifted.astype(bool) & ~drift.expected_drift.astype(bool)]
    alarms = alarms[pd.to_datetime(alarms.as_of) >= pd.Timestamp(onset)]
    if alarms.empty:
        return {"onset": onset, "detected_on": None, "delay_days": None, "features": []}
    first = pd.Timestamp(alarms.as_of.min()).date()
    features = sorted(set(alarms[pd.to_datetime(alarms.as_of) == pd.Timestamp(first)].feature))
    return {"onset": onset, "detected_on": first, "delay_days": (first - onset).days, "features": features}


def detection_sentence(detection: dict[str, Any] | None) -> str:
    """ "drift detected on D, N days after onset" (or why there is nothing to say)."""
    if detection is None:
        return "no known drift onset (own data, or the stable scenario): detection delay not measured"
    if detection["detected_on"] is None:
        return f"drift began on {detection['onset']}; not detected yet"
    return (
        f"drift detected on {detection['detected_on']}, {detection['delay_days']} days after onset "
        f"({detection['onset']}); alarmed: {', '.join(detection['features'])}"
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
    """The triggers with their evidence, what was done about them and why, and the candidate."""

    production: ModelVersion
    triggers: pd.DataFrame
    candidate: ModelVersion | None
    training: TrainingResult | None
    # candidate_registered | no_action | cooldown | ab_test_running | too_few_new_labels | no_new_labels
    action: str = "no_action"
    reasons: list[str] = field(default_factory=list)

    @property
    def fired(self) -> list[str]:
        return list(self.triggers[self.triggers.fired].trigger)


def hold_reason(
    warehouse: Warehouse,
    production: ModelVersion,
    day: date,
    fresh_labels: int,
    matured_labels: int,
    *,
    min_fresh_labels: int,
    cooldown_days: int,
) -> tuple[str, str] | None:
    """(action, reason) that holds a fired trigger back from training a candidate, or None.

    A candidate needs ``min_fresh_labels`` matured labels its production model never trained on
    (else it would learn nothing new); none is trained while an A/B test runs (its variant must
    stay staging); the same drift (the same production model) gets one candidate per
    ``cooldown_days`` (a candidate registered on D holds later days until D + cooldown_days), and
    after that only when labels matured since that candidate (else it would be the same model).
    """  # fmt: skip
    if fresh_labels < int(min_fresh_labels):
        return "too_few_new_labels", (
            f"only {fresh_labels:,} matured labels newer than production "
            f"v{production.version}'s training data (< {int(min_fresh_labels):,})"
        )
    tests = abtests.list_tests(warehouse)
    running = tests[tests.status == "running"] if len(tests) else tests
    if len(running):
        return "ab_test_running", f"A/B test {running.test_name.iloc[0]} is still running: its variant stays"
    past = monitoring.read_table(warehouse, monitoring.DECISIONS)
    if past.empty or "as_of" not in past:
        return None
    days = pd.to_datetime(past.as_of)
    same = past[(past.action == "candidate_registered") & (past.model_version == production.version)
                & (days < pd.Timestamp(day))].sort_values("as_of")  # fmt: skip
    if same.empty:
        return None
    last, version = pd.Timestamp(same.as_of.iloc[-1]).date(), int(same.candidate_version.iloc[-1])
    until = last + timedelta(days=int(cooldown_days))
    if day < until:
        return "cooldown", (
            f"candidate v{version} was trained on {last} for the same drift of production "
            f"v{production.version}; cool-down until {until}"
        )
    if pd.notna(same.matured_labels.iloc[-1]) and int(same.matured_labels.iloc[-1]) >= matured_labels:
        return "no_new_labels", (
            f"no label matured since candidate v{version} was trained on {last} "
            f"({matured_labels:,} matured labels then and now): it would be the same model"
        )
    return None


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
    cooldown_days: int,
    min_fresh_labels: int,
    as_of: Any = None,
) -> RetrainingResult:
    """Evaluate the drift, degradation and volume triggers on the latest monitoring run; when
    one fires and nothing holds it back (:func:`hold_reason`), train a candidate on the recent
    window (validated on the latest matured snapshot only), register it as the one staging
    candidate (older ones archived), and record the decision with its reasons in
    ``monitoring.retraining_decisions``."""
    production = registry.get_production(model_name)
    if production is None:
        raise ValueError(f"model {model_name!r} has no production version: run train-model first")
    day = as_of_date(as_of)
    frame = visible_at(offline.read_features(warehouse), day, int(horizon_days))
    day = day or pd.Timestamp(frame.snapshot_at.max()).date()
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
        min_drifted=int(min_drifted),
        max_auc_drop=float(max_auc_drop),
        min_new_labels=int(min_new_labels),
    )
    fresh = int(
        (frame.label_mature & (frame.snapshot_at > pd.to_datetime(production.params["train_snapshots"]).max())).sum()
    )
    decision = RetrainingResult(production, triggers, None, None, reasons=list(triggers[triggers.fired].evidence))
    matured = int(frame.label_mature.sum())
    hold = hold_reason(warehouse, production, day, fresh, matured, min_fresh_labels=min_fresh_labels,
                       cooldown_days=cooldown_days) if triggers.fired.any() else None  # fmt: skip
    if not triggers.fired.any():
        decision.reasons = ["no trigger fired"]
    elif hold is not None:
        decision.action = hold[0]
        decision.reasons.insert(0, hold[1])  # what was done first, then the evidence
    else:
        decision.candidate, decision.training = _train_candidate(
            warehouse, registry, model_name, frame, production, triggers,
            horizon_days=int(horizon_days), n_valid_snapshots=int(n_valid_snapshots), code_version=code_version,
        )  # fmt: skip
        decision.action = "candidate_registered"
        decision.reasons.insert(
            0,
            f"candidate v{decision.candidate.version} trained with {fresh:,} matured labels "
            f"newer than production v{production.version}'s training data",
        )
    monitoring.write_retraining_decision(
        warehouse, model_name, production.version, triggers, decision.action,
        decision.candidate.version if decision.candidate is not None else None, as_of=day, reasons=decision.reasons,
        matured_labels=matured,
    )  # fmt: skip
    return decision


def _train_candidate(
    warehouse: Warehouse,
    registry: ModelRegistry,
    model_name: str,
    frame: pd.DataFrame,
    production: ModelVersion,
    triggers: pd.DataFrame,
    *,
    horizon_days: int,
    n_valid_snapshots: int,
    code_version: str,
) -> tuple[ModelVersion, TrainingResult]:
    """Train on ``frame`` with production's options, register as the one staging candidate."""
    feature_set, features = offline.feature_set(warehouse)
    result = train_model(
        frame, features, horizon_days=horizon_days, n_valid=max(1, n_valid_snapshots - 1),
        **training_options(production),  # the same model kind, transforms and baseline
    )  # fmt: skip
    fired = ", ".join(triggers[triggers.fired].trigger)
    candidate = register_result(
        registry, result, frame, model_name=model_name, feature_set=feature_set,
        horizon_days=horizon_days, fingerprint=offline.features_fingerprint(warehouse),
        code_version=code_version, reason=f"candidate: retraining triggered by {fired}",
        extra_params={"trigger": fired, **dataset_params(raw.dataset_info(warehouse))}, stage="staging",
    )  # fmt: skip
    for older in registry.list_models(model_name, stage="staging"):
        if older.version != candidate.version:  # one candidate at a time: the newest one
            registry.archive_model(model_name, older.version, f"superseded by candidate v{candidate.version}")
    return candidate, result
