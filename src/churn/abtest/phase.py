"""The ab-test phase as a library function: production (control) vs the staging candidate.

Called by the phase notebook (10), and usable by a daily cycle, the tests and the dashboards.
Every step is safe to repeat: a test that exists is not started again, a test whose outcomes
were never recorded (its run died in between) gets them now instead of blocking later builds,
and a running test is concluded once, its decision and registry change in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from churn.abtest.decision import Decision, Guardrail, model_guardrails
from churn.abtest.manager import ABTestManager
from churn.abtest.simulate import churn_probability, simulate_outcomes
from churn.modeling.lifecycle import load_predictor
from churn.modeling.predict import ChurnPredictor
from churn.registry import ModelRegistry, ModelVersion
from churn.store import abtests, offline, raw
from churn.store.warehouse import Warehouse


@dataclass(frozen=True)
class TrafficPlan:
    """How the simulated live traffic is run (``env.yaml``'s ``ab_*`` parameters)."""

    traffic_split: float = 0.5  # share of users in the variant arm
    offer_share: float = 0.2  # each arm offers retention to its model's riskiest share
    offer_effect: float = 0.4  # relative cut of a user's churn probability by the offer
    window_days: int = 30
    mde_relative: float = 0.3  # planned minimum detectable effect, relative to the baseline
    seed: int = 42


@dataclass
class ABPhaseResult:
    """The test of this phase (None without a staging candidate) and where it stands."""

    production: ModelVersion
    candidate: ModelVersion | None
    test_name: str | None
    analysis: tuple[Any, ...] | None  # ABTestManager.analysis(): (test, results, welch, daily)
    results: dict[str, Any] | None  # ABTestManager.get_test_results()
    decision: Decision | None  # taken in this run (None if none was due)
    final: dict[str, Any] | None  # the stored test row after this run

    @property
    def outcome(self) -> str | None:
        return self.final["decision"] if self.final else None


def ab_test_name(model_name: str, control: int, variant: int) -> str:
    return f"{model_name}-v{control}-vs-v{variant}"


def start_with_outcomes(
    warehouse: Warehouse,
    manager: ABTestManager,
    test_name: str,
    models: dict[str, ChurnPredictor],
    control: ModelVersion,
    variant: ModelVersion,
    plan: TrafficPlan,
) -> None:
    """Start the test unless it exists, then simulate and record its outcomes unless recorded.

    Each arm's model scores its own users; the simulator draws churn from its hidden truth and
    the offer's known effect. Assignment is a hash of (user, test name), so a resumed test gets
    exactly the arms it was started with.
    """
    latest = offline.latest_vectors(warehouse).merge(raw.truth_hazard(warehouse), on="user_id")
    if abtests.get_test(warehouse, test_name) is None:
        # planned baseline: the expected churn rate without offers, known to the simulator
        baseline = float(churn_probability(latest.weekly_hazard.to_numpy(), int(plan.window_days)).mean())
        manager.start_test(
            test_name=test_name, control_version=control.version, variant_version=variant.version,
            traffic_split=float(plan.traffic_split), user_ids=latest.user_id.to_numpy(),
            mde=float(plan.mde_relative) * baseline, baseline=baseline, window_days=int(plan.window_days),
            offer_share=float(plan.offer_share), offer_effect=float(plan.offer_effect),
        )  # fmt: skip
    if not abtests.read_results(warehouse, test_name).empty:
        return
    arms = manager.assignments(test_name).merge(latest, on="user_id")
    arms["score"] = 0.0
    for arm, model in models.items():
        rows = arms.arm == arm
        arms.loc[rows, "score"] = model.predict_proba(arms.loc[rows, model.features].to_numpy(float))
    outcomes = simulate_outcomes(arms, plan.offer_share, plan.offer_effect, int(plan.window_days), int(plan.seed))
    manager.record_outcomes(test_name, outcomes)


def guardrails_on_matured_labels(warehouse: Warehouse, models: dict[str, ChurnPredictor]) -> list[Guardrail]:
    """AUC and Brier score of both models on the latest snapshot with matured labels (the same
    users for both)."""
    frame = offline.read_features(warehouse)
    matured = frame[frame.label_mature & (frame.snapshot_at == frame[frame.label_mature].snapshot_at.max())]
    y = matured.label.to_numpy(int)
    control, variant = (models[arm].predict_proba(matured[models[arm].features].to_numpy(float))
                        for arm in ("control", "variant"))  # fmt: skip
    return model_guardrails(y, control, y, variant)


def run_ab_test(warehouse: Warehouse, registry: ModelRegistry, model_name: str, plan: TrafficPlan) -> ABPhaseResult:
    """Test the newest staging candidate against production: start (or resume) the test, analyse
    it, and conclude it if it is still running (promote with guardrails, or keep control)."""
    manager = ABTestManager(warehouse, registry, model_name)
    production = registry.get_production(model_name)
    if production is None:
        raise ValueError(f"model {model_name!r} has no production version: run train-model first")
    staging = registry.list_models(model_name, stage="staging")
    candidate = max(staging, key=lambda m: m.version) if staging else None
    if candidate is None:
        return ABPhaseResult(production, None, None, None, None, None, None)
    test_name = ab_test_name(model_name, production.version, candidate.version)
    models = {"control": load_predictor(registry, model_name, production.version)[0],
              "variant": load_predictor(registry, model_name, candidate.version)[0]}  # fmt: skip
    start_with_outcomes(warehouse, manager, test_name, models, production, candidate, plan)
    analysis = manager.analysis(test_name)
    results = manager.get_test_results(test_name, analysis)
    decision = None
    if results["status"] == "running":
        decision = manager.conclude(test_name, guardrails_on_matured_labels(warehouse, models), analysis)
    final = abtests.get_test(warehouse, test_name)
    return ABPhaseResult(production, candidate, test_name, analysis, results, decision, final)
