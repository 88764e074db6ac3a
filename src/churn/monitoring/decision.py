"""The decide-retraining phase: the triggers on the latest monitoring run, what holds a fired
trigger back (too few new labels, a running A/B test, the cool-down), and the candidate trained
and registered as staging when nothing does. The pure triggers are in ``retraining``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pandas as pd

from churn.modeling.lifecycle import dataset_params, register_result, training_options
from churn.modeling.train import TrainingResult, train_model
from churn.monitoring.monitor import visible_at
from churn.monitoring.retraining import retraining_triggers
from churn.registry import ModelRegistry, ModelVersion
from churn.runs import as_of_date
from churn.store import abtests, monitoring, offline, raw
from churn.store.warehouse import Warehouse


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
