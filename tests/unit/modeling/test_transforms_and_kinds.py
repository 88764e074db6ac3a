"""log1p inputs and the gradient-boosting option: the predictor scores raw feature values
exactly as the fitted pipeline scores the transformed ones, and explanations stay exact."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.modeling.lifecycle import predictor_from
from churn.modeling.train import model_inputs, train_model


def _frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for k, snap in enumerate(pd.date_range("2024-01-01", periods=8, freq="30D")):
        n = 400
        visits = rng.poisson(rng.gamma(1.0, 8.0, n))
        recency = rng.exponential(20, n)
        p = 1 / (1 + np.exp(-(-1.0 - 0.8 * np.log1p(visits) + 0.03 * recency)))
        rows.append(
            pd.DataFrame(
                {
                    "user_id": np.arange(n) + 1000 * k,
                    "snapshot_at": snap,
                    "visits": visits,
                    "recency": recency,
                    "trend": rng.normal(1, 0.2, n),
                    "label": (rng.uniform(size=n) < p).astype(int),
                    "label_mature": True,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_log_features_enter_as_log1p_and_the_predictor_applies_it() -> None:
    frame = _frame()
    result = train_model(
        frame, ["visits", "recency", "trend"], 30, log_features=["visits", "recency"], baseline_feature="recency"
    )
    predictor = predictor_from(result, frame, "m")
    x = frame[["visits", "recency", "trend"]].to_numpy(float)[:50]
    expected = result.pipeline.predict_proba(
        model_inputs(frame.iloc[:50], ["visits", "recency", "trend"], ["visits", "recency"])
    )[:, 1]
    np.testing.assert_allclose(predictor.predict_proba(x), expected, rtol=1e-10)
    np.testing.assert_allclose(model_inputs(frame.iloc[:3], ["visits"], ["visits"])[:, 0], np.log1p(frame.visits[:3]))
    table = predictor.explain(x[0])
    assert table.contribution.sum() + predictor.intercept == pytest.approx(float(predictor.logits(x[:1])[0]))
    assert set(table.value) == set(x[0])  # explanations show the raw values


def test_gradient_boosting_is_one_parameter_away() -> None:
    frame = _frame(1)
    result = train_model(
        frame,
        ["visits", "recency", "trend"],
        30,
        kind="hist_gradient_boosting",
        log_features=["visits"],
        baseline_feature="recency",
    )
    assert result.kind == "hist_gradient_boosting" and 0.5 < result.validation.auc <= 1.0
    assert result.baseline is not None and set(result.cv_scores.C) == {0.0, 1.0, 10.0}
    predictor = predictor_from(result, frame, "m")
    p = predictor.predict_proba(frame[["visits", "recency", "trend"]].to_numpy(float)[:20])
    assert ((p > 0) & (p < 1)).all()
    with pytest.raises(NotImplementedError, match="logistic regression"):
        predictor.explain(frame[["visits", "recency", "trend"]].to_numpy(float)[0])


def test_without_a_recency_feature_the_baseline_is_skipped() -> None:
    result = train_model(_frame(2), ["visits", "trend"], 30, baseline_feature=None)
    assert result.baseline is None and "baseline" not in result.predictions
