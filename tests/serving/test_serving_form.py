"""The API scores with the model's coefficients (a dot product) only after checking, on every
load (``ChurnPredictor.coefficient_form_matches``), that they give the sklearn pipeline's
probabilities; otherwise it scores with the pipeline."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from churn.modeling.predict import ChurnPredictor
from churn.modeling.train import labelled
from churn.registry import ModelRegistry
from churn.store.warehouse import Warehouse

from .conftest import FEATURES, MODEL, fit_predictor


def test_the_trained_form_matches_and_a_tampered_one_does_not(default_features):
    predictor = fit_predictor(default_features, 1.0)
    assert predictor.coefficient_form_matches()
    predictor._coef = predictor._coef * (1 + 1e-6)  # a derived form that drifted from the pipeline
    assert not predictor.coefficient_form_matches()


def test_health_reports_the_coefficient_form(client):
    assert client.get("/health").json()["model"]["serving_form"] == "coefficients"


def test_a_model_the_coefficients_cannot_express_is_scored_by_its_pipeline(make_client, data_dir, default_features,
                                                                            latest, user_ids, wait_for):
    """A log-transform before scaling: the coefficient form would be wrong, so the API uses the
    pipeline, and its probabilities are the pipeline's to 1e-12; /explain says it cannot decompose."""
    rows = labelled(default_features)
    pipeline = Pipeline([("log", FunctionTransformer(np.log1p)), ("scale", StandardScaler()),
                         ("model", LogisticRegression(C=1.0, max_iter=1000))])
    pipeline.fit(rows[FEATURES].to_numpy(float), rows["label"].to_numpy(int))
    predictor = ChurnPredictor(pipeline, FEATURES, model_name=MODEL, bands=(0.02, 0.1))
    assert not predictor.coefficient_form_matches()
    registry = ModelRegistry(Warehouse(data_dir / "churn.duckdb"), data_dir / "models")
    record = registry.register_model(MODEL, model=predictor, features=FEATURES, params={"feature_set": "v1"},
                                     reason="test: non-linear pipeline")
    registry.promote_model(MODEL, record.version, "production", "test")
    client = make_client(data_dir=data_dir)
    assert wait_for(lambda: client.get("/health").json()["model"]["version"] == record.version)
    assert client.get("/health").json()["model"]["serving_form"] == "pipeline"
    body = client.post("/predict/batch", json={"user_ids": user_ids[:5]}).json()
    vectors = latest.set_index("user_id").loc[user_ids[:5], FEATURES].to_numpy(float)
    expected = pipeline.predict_proba(vectors)[:, 1]
    assert np.allclose([p["probability"] for p in body["predictions"]], expected, rtol=0, atol=1e-12)
    assert client.get(f"/explain/{user_ids[0]}").status_code == 501


def test_a_model_with_log1p_inputs_is_served_by_its_coefficients_with_the_pipelines_probabilities(default_features):
    """log_features are transformed by the predictor before the pipeline: the check must compare
    like with like (it once fed raw values to the pipeline, judged the form unequal and then scored
    the pipeline on untransformed inputs), and either form gives the trained model's probabilities."""
    from churn.modeling.predict import log1p_columns
    from churn.serving.model import LoadedModel

    rows = labelled(default_features)
    logged = [FEATURES.index(f) for f in FEATURES[:3]]
    pipeline = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(C=1.0, max_iter=1000))])
    pipeline.fit(log1p_columns(rows[FEATURES].to_numpy(float), logged), rows["label"].to_numpy(int))
    predictor = ChurnPredictor(pipeline, FEATURES, model_name=MODEL, bands=(0.02, 0.1),
                               log_features=tuple(FEATURES[:3]))
    assert predictor.coefficient_form_matches()
    raw = rows[FEATURES].to_numpy(float)[:200]
    expected = pipeline.predict_proba(log1p_columns(raw, logged))[:, 1]  # the trained model, by hand
    for exact in (True, False):
        served = LoadedModel(predictor, record=None, feature_set="v1", namespace="churn_features:v1", exact_form=exact).proba(raw)  # type: ignore[arg-type]
        assert np.allclose(served, expected, rtol=0, atol=1e-12)


def test_a_gradient_boosting_model_is_scored_by_its_pipeline_and_not_explained(default_features):
    """No coefficient form: probabilities come from the pipeline (with the log1p inputs) and
    /explain's decomposition is refused as 501 instead of an error inside the predictor."""
    import pytest
    from fastapi import HTTPException

    from churn.modeling.predict import log1p_columns
    from churn.modeling.train import make_pipeline
    from churn.serving import scoring
    from churn.serving.model import LoadedModel

    rows = labelled(default_features)
    logged = [FEATURES.index(f) for f in FEATURES[:3]]
    pipeline = make_pipeline(1.0, kind="hist_gradient_boosting")
    pipeline.fit(log1p_columns(rows[FEATURES].to_numpy(float), logged), rows["label"].to_numpy(int))
    predictor = ChurnPredictor(pipeline, FEATURES, model_name=MODEL, bands=(0.02, 0.1),
                               log_features=tuple(FEATURES[:3]))
    assert not predictor.coefficient_form_matches()
    from types import SimpleNamespace

    record = SimpleNamespace(version=7)  # the registry record: only its version is read here
    model = LoadedModel(predictor, record=record, feature_set="v1", namespace="churn_features:v1", exact_form=False)  # type: ignore[arg-type]
    raw = rows[FEATURES].to_numpy(float)[:100]
    assert np.allclose(model.proba(raw), pipeline.predict_proba(log1p_columns(raw, logged))[:, 1], rtol=0, atol=1e-12)
    with pytest.raises(HTTPException) as refused:
        scoring.explain(model, None)  # type: ignore[arg-type]
    assert refused.value.status_code == 501 and "v7" in str(refused.value.detail)
