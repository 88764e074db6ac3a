"""Every registered model gets a model card next to its artifact: data, features, metrics with
intervals, baseline, canary and limits; the report index links it."""

from __future__ import annotations

import re

import pytest
from statsmodels.stats.proportion import proportion_confint

from churn.features import default_feature_spec
from churn.modeling.evaluate import bootstrap_auc_ci
from churn.modeling.lifecycle import register_result
from churn.modeling.train import train_model
from churn.registry import ModelRegistry
from churn.reports.model_card import card_path, metric_intervals

FEATURES = default_feature_spec().feature_names


@pytest.fixture(scope="module")
def trained(default_features):
    return train_model(default_features, FEATURES, horizon_days=30, n_valid=2)


def test_registering_a_result_writes_its_card_next_to_the_artifact(trained, default_features, warehouse, tmp_path):
    registry = ModelRegistry(warehouse, tmp_path / "models")
    record = register_result(registry, trained, default_features, model_name="churn_model", feature_set="v1",
                             horizon_days=30, fingerprint="fp-123", code_version="abc", reason="test",
                             extra_metrics={"canary_auc": 0.51})  # fmt: skip
    card = card_path(record)
    assert card == tmp_path / "models" / "churn_model" / "v1.card.html"
    page = card.read_text()
    low, high = bootstrap_auc_ci(trained.predictions["label"], trained.predictions["model"])
    assert f"[{low:.3f}, {high:.3f}]" in page  # the AUC's bootstrap interval
    for expected in (
        "Data",
        "Features",
        "Validation metrics (95% intervals)",
        "Against the baseline and the canary",
        "Lift by score decile",
        "Limits",
        "fp-123",
        "0.510: ok (about 0.5)",
        f"{trained.baseline.auc:.3f}",
        "log-odds per standard deviation",
        *FEATURES,
    ):
        assert expected in page, expected
    assert len(re.findall(r"<tr><td>\d+</td>", page)) == 10  # ten deciles
    assert "http" not in page  # offline, self-contained


def test_precision_and_recall_intervals_are_wilson_intervals_of_the_implied_counts():
    """recall 0.6 of 25 churners = 15 found; precision 15/378 flagged: statsmodels' Wilson."""
    table = metric_intervals({"auc": 0.75, "positives": 25, "recall": 0.6, "precision": 15 / 378}).set_index("metric")
    low, high = proportion_confint(15, 25, method="wilson")
    assert (table.loc["recall", "low"], table.loc["recall", "high"]) == pytest.approx((low, high))
    low, high = proportion_confint(15, 378, method="wilson")
    assert (table.loc["precision", "low"], table.loc["precision", "high"]) == pytest.approx((low, high))
    assert "15 of 25 churners" in table.loc["recall", "interval"]
