"""Request and response bodies of the prediction, explanation, health and cache endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

MAX_USER_ID = 2**63 - 1  # user ids are BIGINT in the warehouse


def _integral_number(value: Any) -> Any:
    """JSON Schema counts 376.0 as an integer, so it is one; 1.5, "376" and true are not, nor a
    float too large to hold every integer exactly (above 2**53)."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return int(value)
    return value


def _integral_numbers(values: Any) -> Any:
    """``_integral_number`` for every id of a list, in one pass: a batch of plain ints (the usual
    case) is passed on untouched, without a Python call per item."""
    if isinstance(values, list) and not set(map(type, values)) <= {int}:
        return [_integral_number(v) for v in values]
    return values


BodyUserId = Annotated[int, Field(ge=0, le=MAX_USER_ID, strict=True)]
RiskBand = Literal["low", "medium", "high"]


def _examples(*examples: dict) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


class ErrorOut(BaseModel):
    """Every error: one clear sentence (422 adds the structured ``errors`` list)."""

    model_config = _examples({"detail": "invalid API key"})
    detail: str


class PredictionOut(BaseModel):
    model_config = _examples({"user_id": 42, "probability": 0.0731, "risk_band": "medium", "model_version": 3,
                              "features_as_of": "2026-01-01T00:00:00Z", "cached": True})
    user_id: int
    probability: float = Field(description="churn probability within the label horizon (30 days)")
    risk_band: RiskBand
    model_version: int
    features_as_of: datetime = Field(description="snapshot time of the feature vector used (UTC)")
    cached: bool = Field(description="true when the vector came from the online store (Redis)")


class BandCutoffs(BaseModel):
    medium: float = Field(description="probability at or above which the band is medium")
    high: float = Field(description="probability at or above which the band is high")


class PredictionDetailOut(PredictionOut):
    """One user's prediction, with where the risk bands are cut."""

    model_config = _examples({"user_id": 42, "probability": 0.0731, "risk_band": "medium", "model_version": 3,
                              "features_as_of": "2026-01-01T00:00:00Z", "cached": True,
                              "band_cutoffs": {"medium": 0.011, "high": 0.094}})
    band_cutoffs: BandCutoffs


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"user_ids": [1, 2, 42], "use_cache": True}]})
    user_ids: Annotated[list[BodyUserId], BeforeValidator(_integral_numbers)] = Field(
        min_length=1, description="integers; at most CHURN_BATCH_LIMIT (10,000)")
    use_cache: bool = Field(True, description="false: read the offline store only, bypassing Redis")


class BatchOut(BaseModel):
    model_config = _examples({"model_version": 3, "requested": 3, "not_found": [999999],
                              "band_cutoffs": {"medium": 0.011, "high": 0.094}, "predictions": [
        {"user_id": 1, "probability": 0.0123, "risk_band": "medium", "model_version": 3,
         "features_as_of": "2026-01-01T00:00:00Z", "cached": True}]})
    model_version: int
    requested: int
    band_cutoffs: BandCutoffs
    predictions: list[PredictionOut]
    not_found: list[int] = Field(description="ids found in neither the online nor the offline store")


class Contribution(BaseModel):
    feature: str
    value: float = Field(description="the raw feature value")
    contribution: float = Field(description="coefficient x standardised value, in log-odds")
    description: str | None = Field(None, description="what the feature measures (from the feature spec)")
    unit: str | None = Field(None, description="the value's unit, e.g. days, count, USD")


class ExplanationOut(BaseModel):
    model_config = _examples({
        "user_id": 42, "model_version": 3, "features_as_of": "2026-01-01T00:00:00Z", "cached": True,
        "probability": 0.0731, "risk_band": "medium", "logit": -2.54, "intercept": -4.1,
        "band_cutoffs": {"medium": 0.011, "high": 0.094},
        "contributions": [{"feature": "days_since_last_event", "value": 19.0, "contribution": 1.2,
                           "description": "days since the latest event; tenure when the user never acted",
                           "unit": "days"},
                          {"feature": "events_30d", "value": 40.0, "contribution": 0.36,
                           "description": "events in the last 30 days", "unit": "count"}]})
    user_id: int
    model_version: int
    features_as_of: datetime
    cached: bool
    probability: float
    risk_band: RiskBand
    logit: float = Field(description="intercept + sum of contributions")
    intercept: float
    band_cutoffs: BandCutoffs
    contributions: list[Contribution] = Field(description="largest absolute contribution first")


class Component(BaseModel):
    ok: bool
    detail: str | None = None


class ModelStatus(BaseModel):
    loaded: bool
    name: str
    version: int | None = None
    feature_set: str | None = None
    dataset: str | None = Field(None, description="the data set the model was trained on (and is served for)")
    loaded_at: datetime | None = None
    serving_form: Literal["coefficients", "pipeline"] | None = Field(
        None, description="coefficients: a dot product checked equal to the sklearn pipeline on load")
    error: str | None = None


class CacheStats(BaseModel):
    hits: int | None = None
    misses: int | None = None
    hit_rate: float | None = Field(None, description="hits / lookups since the last sync; null before any")
    bad_values: int | None = Field(None, description="values in Redis that were not valid vectors (served "
                                                     "from the offline store and rewritten) since the last sync")


class HealthOut(BaseModel):
    model_config = _examples({
        "status": "ok", "redis": {"ok": True, "detail": None}, "warehouse": {"ok": True, "detail": None},
        "model": {"loaded": True, "name": "churn_model", "version": 3, "feature_set": "v1",
                  "loaded_at": "2026-01-02T08:00:00Z", "serving_form": "coefficients",
                  "error": None},
        "cache": {"hits": 990, "misses": 10, "hit_rate": 0.99, "bad_values": 0}, "uptime_seconds": 3600.0})
    status: Literal["ok", "degraded"] = Field(description="degraded: Redis, warehouse or model missing")
    redis: Component
    warehouse: Component
    model: ModelStatus
    cache: CacheStats
    uptime_seconds: float


class CacheSyncOut(BaseModel):
    model_config = _examples({"feature_set": "v1", "removed": 904, "written": 904, "seconds": 0.08})
    feature_set: str
    removed: int = Field(description="vectors deleted before writing")
    written: int
    seconds: float


class CacheClearOut(BaseModel):
    model_config = _examples({"feature_set": "v1", "removed": 904})
    feature_set: str
    removed: int
