"""Metrics against their references; the shared predictor against scikit-learn itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from churn.modeling.evaluate import evaluate, max_f1_threshold, top_decile_lift
from churn.modeling.predict import ChurnPredictor, risk_band, risk_bands
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
    return ChurnPredictor(make_pipeline(1.0).fit(x, y), ["a", "b", "c", "d"], model_name="m", version=3), x


def test_predictor_equals_sklearn_predict_proba(predictor):
    """The fast dot-product path gives scikit-learn's probabilities."""
    model, x = predictor
    np.testing.assert_allclose(model.predict_proba(x), model.pipeline.predict_proba(x)[:, 1], rtol=1e-12)


def test_one_vector_in_plain_python_equals_sklearn_with_log1p_inputs():
    """``proba_one`` (the API's single prediction, no numpy) gives the pipeline's probability on
    log1p inputs, negative values included, also for an artifact pickled before it existed."""
    import pickle

    from churn.modeling.predict import log1p_columns

    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 4)) * [1, 10, 100, 0.1] + [0, 5, 50, 1]
    y = (x[:, 0] + x[:, 1] / 10 + rng.normal(size=400) > 0.5).astype(int)
    pipeline = make_pipeline(1.0).fit(log1p_columns(x, [1, 2]), y)
    model = ChurnPredictor(pipeline, ["a", "b", "c", "d"], model_name="m", log_features=("b", "c"))
    expected = pipeline.predict_proba(log1p_columns(x, [1, 2]))[:, 1]
    old = pickle.loads(pickle.dumps(model))
    del old.__dict__["_terms"]  # as an older artifact: the terms are rebuilt on unpickling
    old = pickle.loads(pickle.dumps(old))
    for m in (model, old):
        np.testing.assert_allclose([m.proba_one(row) for row in x.tolist()], expected, rtol=1e-12)
    assert model.coefficient_form_matches()


def test_explanation_sums_to_the_logit(predictor):
    """Contributions plus the intercept reproduce the model's logit to 1e-9, largest first."""
    model, x = predictor
    for row in x[:20]:
        table = model.explain(row)
        assert table["contribution"].sum() + model.intercept == pytest.approx(model.logits(row[None])[0], abs=1e-9)
        assert list(table["contribution"].abs()) == sorted(table["contribution"].abs(), reverse=True)


def test_risk_bands_follow_the_bounds():
    assert risk_bands(np.array([0.01, 0.05, 0.3]), (0.02, 0.2)).tolist() == ["low", "medium", "high"]
    for p in (0.0, 0.0199, 0.02, 0.1, 0.2, 0.9):
        assert risk_band(p, (0.02, 0.2)) == risk_bands(np.array([p]), (0.02, 0.2))[0]


def test_predict_frame_keeps_user_ids(predictor):
    model, x = predictor
    frame = pd.DataFrame(x[:3], columns=model.features).assign(user_id=[7, 8, 9])
    out = model.predict_frame(frame)
    assert out["user_id"].tolist() == [7, 8, 9] and out["probability"].between(0, 1).all()


def test_decile_table_counts_rates_gains_and_lift_by_hand():
    """20 users, 4 churners: ranked by score the first decile (2 users) holds 2 churners, so its
    rate is 1.0 and its lift 1.0 / 0.2 = 5; the gains reach 100% where the last churner sits."""
    from churn.modeling.evaluate import decile_table

    scores = np.linspace(1, 0, 20)
    y = np.zeros(20, dtype=int)
    y[[0, 1, 5, 13]] = 1
    table = decile_table(y, scores)
    assert table["users"].tolist() == [2] * 10
    assert table["churners"].tolist() == [2, 0, 1, 0, 0, 0, 1, 0, 0, 0]
    assert table.loc[1, "lift"] == pytest.approx(5.0)
    assert table["gain"].tolist() == pytest.approx([0.5, 0.5, 0.75, 0.75, 0.75, 0.75, 1, 1, 1, 1])
    assert table.loc[10, "cum_lift"] == pytest.approx(1.0)
    assert table.loc[3, "cum_lift"] == pytest.approx(0.75 / 0.3)


def test_decile_table_agrees_with_top_decile_lift_and_statsmodels_wilson():
    """Decile 1's lift is the evaluation's top-decile lift (also when 10 does not divide n); each
    rate's interval is statsmodels' Wilson interval."""
    from statsmodels.stats.proportion import proportion_confint

    from churn.modeling.evaluate import decile_table

    rng = np.random.default_rng(3)
    y = rng.binomial(1, 0.1, 1003)
    s = y * 0.8 + rng.normal(size=1003)
    table = decile_table(y, s)
    assert table["users"].sum() == 1003 and table["churners"].sum() == y.sum()
    assert table.loc[1, "lift"] == pytest.approx(top_decile_lift(y, s))
    low, high = proportion_confint(table["churners"], table["users"], alpha=0.05, method="wilson")
    np.testing.assert_allclose(table["rate_low"], low, rtol=1e-10)
    np.testing.assert_allclose(table["rate_high"], high, rtol=1e-10)
    assert table["churn_rate"].iloc[0] > table["churn_rate"].iloc[-1]


def test_decile_table_refuses_fewer_rows_than_groups():
    from churn.modeling.evaluate import decile_table

    with pytest.raises(ValueError, match="at least 10 rows, got 3"):
        decile_table(np.array([0, 1, 0]), np.array([0.1, 0.9, 0.2]))


def test_lift_gains_figure_draws_deciles_without_churners():
    """Deciles with no churner (rate 0, interval starting at 0) are drawn, not refused."""
    from churn.modeling.plots import lift_gains_figure

    y = np.r_[np.ones(3), np.zeros(297)].astype(int)
    frame = pd.DataFrame({"label": y, "model": np.linspace(1, 0, 300), "baseline": np.linspace(0, 1, 300)})
    fig = lift_gains_figure(frame, {"model": "model", "baseline": "baseline"})
    assert [ax.get_xlabel() for ax in fig.axes] == [
        "users contacted, highest scores first (%)",
        "score decile (1 = riskiest 10%)",
    ]
