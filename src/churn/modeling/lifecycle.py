"""Register a training result: the predictor artifact plus the evidence the registry keeps."""

from __future__ import annotations

from typing import Any

import pandas as pd

from churn.modeling.predict import ChurnPredictor
from churn.modeling.train import TrainingResult
from churn.registry import ModelRegistry, ModelVersion


def predictor_from(result: TrainingResult, frame: pd.DataFrame, model_name: str) -> ChurnPredictor:
    """The servable predictor: risk bands medium = training churn rate, high = the threshold."""
    train = frame[frame["label_mature"].astype(bool) & (frame["snapshot_at"] <= result.train_snapshots[-1])]
    rate = float(train["label"].astype(float).mean())
    return ChurnPredictor(result.pipeline, result.features, model_name=model_name, bands=(rate, result.threshold))


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
        metrics={**result.validation.as_dict(), "baseline_auc": result.baseline.auc, **(extra_metrics or {})},
        params={"C": result.best_c, "threshold": result.threshold, "horizon_days": int(horizon_days),
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
