"""Scores and explanations from looked-up vectors (vectorised: one dot product per batch)."""

from __future__ import annotations

from datetime import UTC
from functools import lru_cache
from typing import Any

import numpy as np
from fastapi import HTTPException

from churn.modeling.predict import risk_band, risk_bands
from churn.serving.features import Hit, Vectors
from churn.serving.model import LoadedModel


def score(model: LoadedModel, vectors: Vectors) -> tuple[list[dict[str, Any]], list[int]]:
    """Predictions for the found users (request order) and the ids found in neither store."""
    rows = np.flatnonzero(vectors.found)
    p = model.proba(vectors.values[rows]) if len(rows) else np.empty(0)
    bands = risk_bands(p, model.predictor.bands)
    snapshot_at = utc_strings(vectors.snapshot_at[rows])
    ids, cached = vectors.user_ids[rows].tolist(), vectors.cached[rows].tolist()
    version = model.version  # once, not a property call per row
    predictions = [
        {"user_id": uid, "probability": prob, "risk_band": band, "model_version": version,
         "features_as_of": when, "cached": hit}
        for uid, prob, band, when, hit in zip(ids, p.tolist(), bands.tolist(), snapshot_at, cached, strict=True)
    ]
    return predictions, vectors.user_ids[~vectors.found].tolist()


def score_one(model: LoadedModel, hit: Hit) -> dict[str, Any]:
    """``score`` for one Redis hit, in plain Python (the same fields, the same values)."""
    probability = model.proba_one(hit.values)
    return {"user_id": hit.user_id, "probability": probability,
            "risk_band": risk_band(probability, model.predictor.bands), "model_version": model.version,
            "features_as_of": utc_string(hit.snapshot_at_us), "cached": True}


@lru_cache(maxsize=1024)  # a few distinct snapshot times in practice
def utc_string(microseconds: int) -> str:
    """One as-of time (microseconds since the epoch, UTC) as RFC 3339 with the offset."""
    text = str(np.datetime_as_string(np.datetime64(microseconds, "us"), unit="us"))
    return text[:-7] + "Z" if text.endswith(".000000") else text + "Z"


def utc_strings(stamps: np.ndarray) -> list[str]:
    """datetime64[us] (naive UTC) -> RFC 3339 strings with the UTC offset, as pydantic writes them
    (the prediction routes build their JSON directly: no model validation per request). A batch
    holds a few distinct times: each is formatted once (``utc_string``'s cache)."""
    return [utc_string(t) for t in stamps.astype("datetime64[us]").astype(np.int64).tolist()]


def explain(model: LoadedModel, vectors: Vectors) -> dict[str, Any]:
    """The first user's exact logit decomposition: contributions (largest first) + intercept."""
    if not model.exact_form:
        raise HTTPException(501, f"model v{model.version} is not a plain scaling + logistic regression: "
                                 "its score has no exact per-feature decomposition")
    predictor, vector = model.predictor, vectors.values[0]
    table = predictor.explain(vector)
    logit = float(predictor.logits(vector[None, :])[0])
    probability = float(predictor.predict_proba(vector)[0])
    return {
        "user_id": int(vectors.user_ids[0]), "model_version": model.version,
        "features_as_of": vectors.snapshot_at[0].tolist().replace(tzinfo=UTC), "cached": bool(vectors.cached[0]),
        "probability": probability, "risk_band": str(risk_bands(np.array([probability]), predictor.bands)[0]),
        "logit": logit, "intercept": predictor.intercept, "band_cutoffs": band_cutoffs(model),
        "contributions": [{**row, **model.docs.get(row["feature"], {})} for row in table.to_dict(orient="records")],
    }


def band_cutoffs(model: LoadedModel) -> dict[str, float]:
    """The probabilities at or above which a score is ``medium`` and ``high`` risk."""
    medium, high = model.predictor.bands
    return {"medium": float(medium), "high": float(high)}
