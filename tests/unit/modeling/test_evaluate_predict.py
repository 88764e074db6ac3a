"""Metrics against their references; the shared predictor against scikit-learn itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from churn.modeling.evaluate import evaluate, max_f1_threshold, top_decile_lift
from churn.modeling.predict import ChurnPredictor, risk_bands
from churn.modeling.train import make_pipeline


def test_textbook_auc_and_lift():
    """AUC = P(score of a positive > score of a negative): 0.75 on this hand-checked example;
    lift of a perfect top decile is 1 / base rate."""
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8])
    assert evaluate(y, s, threshold=0.5).auc == pytest.approx(0.75)
    y = np.r_[np.ones(10), np.zeros(90)]
    assert top_decile_lift(y, -np.arange(100)) == pytest.approx(10.0)


def test_max_f1_threshold_is_the_best_threshold():
    """No other cut of the scores gives a higher F1 than the chosen threshold."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    s = y * 0.5 + rng.normal(size=400)
    best = f1_score(y, s >= max_f1_threshold(y, s))
    assert all(f1_score(y, s >= t) <= best + 1e-12 for t in np.unique(s))


def test_evaluate_refuses_a_single_class():
    with pytest.raises(ValueError, match="both churners and non-churners"):
        evaluate(np.zeros(10), np.linspace(0, 1, 10), 0.5)


@pytest.fixture(scope="module")
def predictor() -> tuple[ChurnPredictor, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 4)) * [1, 10, 100, 0.1] + [0, 5, 50, 1]
    y = (x[:, 0] + x[:, 1] / 10 + rng.normal(size=500) > 0.5).astype(int)
    return ChurnPredictor(make_pipeline(1.0).fit(x, y), ["a", "b", "c", "d"], version=3), x


def test_predictor_equals_sklearn_predict_proba(predictor):
    """The fast dot-product path gives scikit-learn's probabilities."""
    model, x = predictor
    np.testing.assert_allclose(model.predict_proba(x), model.pipeline.predict_proba(x)[:, 1], rtol=1e-12)


def test_explanation_sums_to_the_logit(predictor):
    """Contributions plus the intercept reproduce the model's logit to 1e-9, largest first."""
    model, x = predictor
    for row in x[:20]:
        table = model.explain(row)
        assert table["contribution"].sum() + model.intercept == pytest.approx(model.logits(row[None])[0], abs=1e-9)
        assert list(table["contribution"].abs()) == sorted(table["contribution"].abs(), reverse=True)


def test_risk_bands_follow_the_bounds():
    assert risk_bands(np.array([0.01, 0.05, 0.3]), (0.02, 0.2)).tolist() == ["low", "medium", "high"]


def test_predict_frame_keeps_user_ids(predictor):
    model, x = predictor
    frame = pd.DataFrame(x[:3], columns=model.features).assign(user_id=[7, 8, 9])
    out = model.predict_frame(frame)
    assert out["user_id"].tolist() == [7, 8, 9] and out["probability"].between(0, 1).all()
