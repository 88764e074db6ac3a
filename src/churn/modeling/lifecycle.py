"""Register a training result: the predictor artifact plus the evidence the registry keeps."""

from __future__ import annotations

from typing import Any

import pandas as pd

from churn.abtest.offline import OfflineComparison
from churn.modeling.predict import ChurnPredictor
from churn.modeling.train import TrainingResult
from churn.registry import ModelRegistry, ModelVersion


def predictor_from(result: TrainingResult, frame: pd.DataFrame, model_name: str) -> ChurnPredictor:
    """The servable predictor: risk bands medium = training churn rate, high = the threshold."""
    train = frame[frame["label_mature"].astype(bool) & (frame["snapshot_at"] <= result.train_snapshots[-1])]
    rate = float(train["label"].astype(float).mean())
    return ChurnPredictor(result.pipeline, result.features, model_name=model_name, bands=(rate, result.threshold),
                          log_features=tuple(result.log_features))


def register_result(registry: ModelRegistry, result: TrainingResult, frame: pd.DataFrame, *, model_name: str,
                    feature_set: str, horizon_days: int, fingerprint: str, code_version: str, reason: str,
                    extra_metrics: dict[str, Any] | None = None, extra_params: dict[str, Any] | None = None,
                    stage: str = "none") -> ModelVersion:
    """Register ``result`` with metrics, parameters, snapshots and provenance, put it in
    ``stage`` in the same transaction (a crash never leaves it in ``none``), and write its model
    card next to the artifact. Idempotent: the same training data and code (or the same
    artifact) reuse the existing version."""
    from churn.reports.model_card import write_model_card

    predictor = predictor_from(result, frame, model_name)
    record = registry.register_model(
        model_name=model_name, model=predictor,
        metrics={**result.validation.as_dict(),
                 "baseline_auc": result.baseline.auc if result.baseline is not None else None, **(extra_metrics or {})},
        params={"C": result.best_c, "threshold": result.threshold, "horizon_days": int(horizon_days),
                "model_kind": result.kind, "log_features": list(result.log_features),
                "baseline_feature": result.baseline_feature,
                "feature_set": feature_set, "bands": list(predictor.bands),
                "train_snapshots": [str(s) for s in result.train_snapshots],
                "valid_snapshots": [str(s) for s in result.valid_snapshots], **(extra_params or {})},
        features=result.features, training_data_fingerprint=fingerprint, code_version=code_version,
        reason=reason, stage=stage, idempotent=True,
    )  # fmt: skip
    write_model_card(record, result)
    return record


def load_predictor(registry: ModelRegistry, model_name: str, version: int | None = None,
                   stage: str = "production") -> tuple[ChurnPredictor, ModelVersion]:
    """A registered predictor (sha256 checked by the registry) carrying its registry version."""
    predictor, record = registry.load_model(model_name, version=version, stage=stage)
    if not isinstance(predictor, ChurnPredictor):
        raise TypeError(f"{model_name} v{record.version} is a {type(predictor).__name__}, not a ChurnPredictor")
    predictor.version = record.version
    return predictor, record


class DatasetMismatchError(RuntimeError):
    """A model used on a data set other than the one it was trained on."""


def dataset_params(info: dict[str, Any] | None) -> dict[str, Any]:
    """Registry parameters naming the data set a model is trained on (name and identity)."""
    return {"dataset": info["name"], "dataset_fingerprint": info["fingerprint"]} if info else {}


def production_stage_for(production: ModelVersion | None, info: dict[str, Any] | None) -> tuple[str, str]:
    """(stage, reason) for a newly trained model: production when there is none, or when the
    production model belongs to another data set (or the same name with other generation
    parameters); else staging, a candidate for the A/B phase."""
    if production is None:
        return "production", "first model of its name"
    theirs = production.params.get("dataset_fingerprint")
    if info is not None and theirs != info["fingerprint"]:
        return "production", (f"production v{production.version} was trained on data set {theirs or 'unknown'}, "
                              f"not {info['fingerprint']}: it cannot serve this one")
    return "staging", "candidate from train-model"


def check_dataset(record: ModelVersion, info: dict[str, Any] | None) -> None:
    """Refuse to score, monitor or test ``record`` on a data set it was not trained on."""
    theirs = record.params.get("dataset_fingerprint")
    if info is not None and theirs is not None and theirs != info["fingerprint"]:
        raise DatasetMismatchError(
            f"{record.model_name} v{record.version} was trained on data set {theirs}, but the warehouse holds "
            f"{info['fingerprint']}: run train-model on this data set first (a model is only used on its own data)")


def archive_other_datasets(registry: ModelRegistry, model_name: str, info: dict[str, Any] | None) -> list[int]:
    """Archive staging candidates trained on another data set (they can never be A/B-tested here)."""
    archived = []
    for record in registry.list_models(model_name, stage="staging"):
        theirs = record.params.get("dataset_fingerprint")
        if info is not None and theirs != info["fingerprint"]:
            registry.archive_model(model_name, record.version, f"trained on data set {theirs or 'unknown'}, "
                                                               f"not {info['fingerprint']}")
            archived.append(record.version)
    return archived


def champion_challenger(registry: ModelRegistry, frame: pd.DataFrame, model_name: str, alpha: float = 0.05,
                        n_eval_snapshots: int = 2) -> OfflineComparison | None:
    """Offline champion/challenger: production vs the newest staging candidate on the newest
    matured snapshots neither trained on, at least a label horizon after the latest training
    snapshot (:func:`churn.abtest.offline.evaluation_snapshots`); promotes or records ``offline_keep_control`` with the
    evidence in the registry. None when there is no candidate or no such snapshot."""
    from churn.abtest.offline import compare_offline, evaluation_snapshots

    staging = registry.list_models(model_name, stage="staging")
    if not staging:
        return None
    candidate = max(staging, key=lambda m: m.version)
    control, production = load_predictor(registry, model_name)
    variant, _ = load_predictor(registry, model_name, candidate.version, stage="staging")
    trained = [*production.params.get("train_snapshots", []), *candidate.params.get("train_snapshots", [])]
    # purge by the longer horizon: no evaluation outcome may fall in a training label's window
    horizon = max(int(m.params.get("horizon_days") or 0) for m in (production, candidate))
    snapshots = evaluation_snapshots(frame, trained, n_eval_snapshots, purge_days=horizon)
    rows = frame[frame["snapshot_at"].isin(snapshots) & frame["label_mature"].astype(bool)]
    if rows.empty or rows["label"].astype(int).nunique() < 2:
        registry.record_event(model_name, candidate.version, "offline_no_evidence",
                              "offline champion/challenger: no matured snapshot a horizon after both models' training data "
                              "with both classes; control stays")
        return None
    y = rows["label"].to_numpy(int)
    result = compare_offline(y, control.predict_proba(rows[control.features].to_numpy(float)),
                             variant.predict_proba(rows[variant.features].to_numpy(float)), snapshots, alpha)
    reason = (f"offline champion/challenger v{production.version} vs v{candidate.version} on "
              f"{result.rows} rows ({result.positives} churners) at {', '.join(result.snapshots)}: " + "; ".join(result.reasons))
    if result.decision == "promote":
        registry.promote_model(model_name, candidate.version, "production", reason)
    else:
        registry.record_event(model_name, candidate.version, "offline_keep_control", reason)
    return result


def training_options(record: ModelVersion) -> dict[str, Any]:
    """How ``record`` was trained (model kind, log1p features, baseline feature), so a retrained
    candidate is trained the same way. Models registered before these existed used none."""
    params = record.params
    return {"kind": params.get("model_kind", "logistic"), "log_features": tuple(params.get("log_features", ())),
            "baseline_feature": params.get("baseline_feature", "days_since_last_event")}
