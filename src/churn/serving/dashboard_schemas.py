"""Response bodies of the ``/dashboard`` endpoints (registry and monitoring views)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from churn.serving.schemas import _examples

Row = dict[str, Any]
MODEL_EXAMPLE: dict[str, Any] = {"model_name": "churn_model", "version": 3, "stage": "production", "metrics": {"auc": 0.86},
                 "params": {"C": 1.0, "feature_set": "v1"}, "features": ["events_30d", "tenure_days"],
                 "training_data_fingerprint": "6903:123", "code_version": "abc1234",
                 "artifact_path": "churn_model/v3.joblib", "artifact_sha256": "9f2c...",
                 "model_card_path": "churn_model/v3.card.html", "model_card_url": "/dashboard/models/3/card",
                 "created_at": "2026-01-02T08:00:00+00:00", "updated_at": "2026-01-02T08:00:00+00:00"}


class ModelOut(BaseModel):
    model_config = ConfigDict(protected_namespaces=(), json_schema_extra={"examples": [MODEL_EXAMPLE]})
    model_name: str
    version: int
    stage: Literal["none", "staging", "production", "archived"]
    metrics: dict[str, Any]
    params: dict[str, Any]
    features: list[str]
    training_data_fingerprint: str | None
    code_version: str | None
    artifact_path: str = Field(description="relative to the models folder")
    artifact_sha256: str
    model_card_path: str | None = Field(None, description="the model card, relative to the models folder; "
                                        "null when the version has none (registered without a training result)")
    model_card_url: str | None = Field(None, description="where this API serves the model card (HTML)")
    created_at: datetime
    updated_at: datetime


class SummaryOut(BaseModel):
    model_config = ConfigDict(protected_namespaces=(), json_schema_extra={"examples": [
        {"model_name": "churn_model", "production": MODEL_EXAMPLE, "staging": [], "open_alerts": []}]})
    model_name: str
    production: ModelOut | None
    staging: list[ModelOut]
    open_alerts: list[Row]


class RetrainingStatusOut(BaseModel):
    model_config = _examples({"drift_detected": False, "performance_degraded": False, "new_data_volume": False,
                              "retrain_recommended": False, "decided_at": None, "evidence": []})
    drift_detected: bool
    performance_degraded: bool
    new_data_volume: bool
    retrain_recommended: bool
    decided_at: str | None = Field(description="ISO time of the latest decision run; null before any")
    evidence: list[Any] = Field(description="what each trigger saw (empty before any run)")


class ABTestOut(BaseModel):
    model_config = _examples({"test_name": "candidate_v4", "status": "completed",
                              "control": {"version": 3, "users": 500, "churn_rate": 0.09},
                              "variant": {"version": 4, "users": 500, "churn_rate": 0.07},
                              "p_value": 0.21, "probability_variant_better": 0.89, "winner": "variant",
                              "decision": "promote", "test": {}, "statistics": {}})
    test_name: str
    status: str | None
    control: Any
    variant: Any
    p_value: float | None
    probability_variant_better: float | None
    winner: str | None
    decision: str | None
    test: Row | None = Field(description="the ml_pipeline.ab_tests row")
    statistics: Row = Field(description="ABTestManager.get_test_results: CI, sequential p, SRM, power, log loss")


class MonitoringHealthOut(BaseModel):
    model_config = ConfigDict(protected_namespaces=(), json_schema_extra={"examples": [
        {"production_version": 3, "open_alerts": 0, "drift_report_at": None, "drift_detected": False,
         "features_drifted": [], "latest_metrics": None,
         "retraining": {"drift_detected": False, "performance_degraded": False, "new_data_volume": False,
                        "retrain_recommended": False, "decided_at": None, "evidence": []}}]})
    production_version: int | None
    open_alerts: int
    drift_report_at: str | None
    drift_detected: bool
    features_drifted: list[str]
    latest_metrics: Row | None
    retraining: RetrainingStatusOut
