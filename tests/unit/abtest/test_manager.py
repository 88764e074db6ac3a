"""ABTestManager against a real warehouse and registry: validation, storage, decision recording."""

from __future__ import annotations

import numpy as np
import pytest

from churn.abtest.manager import ABTestError, ABTestManager
from churn.abtest.simulate import simulate_outcomes
from churn.modeling.predict import ChurnPredictor
from churn.modeling.train import make_pipeline
from churn.registry import ModelRegistry
from churn.store import abtests


@pytest.fixture()
def setup(warehouse, tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 2)), rng.integers(0, 2, 200)
    registry = ModelRegistry(warehouse, tmp_path / "models")
    for _ in range(2):
        registry.register_model(model_name="churn_model", model=ChurnPredictor(make_pipeline(1.0).fit(x, y), ["a", "b"],
                                                                              model_name="churn_model"))
    registry.promote_model("churn_model", 1, "production", "first")
    registry.promote_model("churn_model", 2, "staging", "candidate")
    return ABTestManager(warehouse, registry, "churn_model"), registry


USERS = np.arange(1, 2001)


def test_start_test_assigns_every_user_sticky_and_near_the_split(setup):
    manager, _ = setup
    manager.start_test(test_name="t1", control_version=1, variant_version=2, traffic_split=0.3, user_ids=USERS)
    arms = manager.assignments("t1")
    assert len(arms) == len(USERS) and abs((arms.arm == "variant").mean() - 0.3) < 0.04


@pytest.mark.parametrize("kwargs, message", [
    ({"control_version": 1, "variant_version": 9}, "v9 does not exist"),
    ({"control_version": 2, "variant_version": 1}, "control must be the production model"),
    ({"control_version": 1, "variant_version": 2, "traffic_split": 1.0}, "strictly between 0 and 1"),
    ({"control_version": 1, "variant_version": 2, "user_ids": [5]}, "arm would have no users"),
])
def test_bad_requests_fail_clearly_and_create_nothing(setup, kwargs, message):
    manager, _ = setup
    with pytest.raises(ABTestError, match=message):
        manager.start_test(test_name="bad", **{"user_ids": USERS, "traffic_split": 0.5, **kwargs})
    assert abtests.get_test(manager.warehouse, "bad") is None


def test_duplicate_test_name_is_refused(setup):
    manager, _ = setup
    manager.start_test(test_name="t1", control_version=1, variant_version=2, traffic_split=0.5, user_ids=USERS)
    with pytest.raises(ABTestError, match="already exists"):
        manager.start_test(test_name="t1", control_version=1, variant_version=2, traffic_split=0.5, user_ids=USERS)


def test_unknown_test_is_an_error(setup):
    with pytest.raises(ABTestError, match="no A/B test named 'nope'"):
        setup[0].get_test_results("nope")


def _run(manager, variant_targets_better: bool, n: int = 20000, name: str = "t") -> None:
    ids = np.arange(1, n + 1)
    manager.start_test(test_name=name, control_version=1, variant_version=2, traffic_split=0.5, user_ids=ids, mde=0.015)
    rng = np.random.default_rng(1)
    hazard = rng.beta(0.5, 20, n)
    frame = manager.assignments(name).assign(weekly_hazard=hazard)
    noise = rng.random(n)
    better = frame.arm.eq("variant") & variant_targets_better
    frame["score"] = np.where(better, hazard, noise)
    manager.record_outcomes(name, simulate_outcomes(frame, 0.2, 0.5, 30, seed=2))


def test_better_targeting_variant_wins_and_is_promoted(setup):
    """Variant that offers retention to truly risky users lowers churn; promote is recorded."""
    manager, registry = setup
    _run(manager, variant_targets_better=True)
    results = manager.get_test_results("t")
    assert results["variant"]["churn_rate"] < results["control"]["churn_rate"]
    assert results["probability_test"]["winner"] == "variant" and not results["srm"]["mismatch"]
    assert results["p_value_test"] == "z-test"  # thousands of churners: no exact test needed
    decision = manager.conclude("t")
    assert decision.action == "promote"
    assert registry.get_production("churn_model").version == 2
    assert abtests.get_test(manager.warehouse, "t")["decision"] == "promote"


def test_equal_models_keep_control_and_the_registry_says_why(setup):
    manager, registry = setup
    _run(manager, variant_targets_better=False)
    decision = manager.conclude("t")
    assert decision.action in ("keep_control", "inconclusive")
    assert registry.get_production("churn_model").version == 1
    events = registry.list_events("churn_model")
    assert events.iloc[-1]["event"].startswith("ab_") and "A/B test t" in events.iloc[-1]["reason"]


def test_conclusion_and_promotion_commit_together(setup, monkeypatch):
    """If recording the conclusion fails after the promotion statement ran, neither stays: the
    control is still production and the test still running, so the next build can conclude it."""
    manager, registry = setup
    _run(manager, variant_targets_better=True)

    def crash(*args, **kwargs):
        raise RuntimeError("killed before the conclusion was written")

    monkeypatch.setattr(abtests, "conclude_test", crash)
    with pytest.raises(RuntimeError, match="killed"):
        manager.conclude("t")
    assert registry.get_production("churn_model").version == 1
    assert abtests.get_test(manager.warehouse, "t")["status"] == "running"
    monkeypatch.undo()
    assert manager.conclude("t").action == "promote"
    assert registry.get_production("churn_model").version == 2
    with pytest.raises(ValueError, match="not running"):
        abtests.conclude_test(manager.warehouse, "t", "promote", ["again"])
