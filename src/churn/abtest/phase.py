"""The ab-test phase as a library function: production (control) vs the staging candidate.

Called by the phase notebook (10), and usable by a daily cycle, the tests and the dashboards.
Every step is safe to repeat: a test that exists is not started again, a test whose outcomes
were never recorded (its run died in between) gets them now instead of blocking later builds,
and a running test is concluded once, its decision and registry change in one transaction.

A full build (``as_of`` empty) analyses the whole test at once, as the original platform did. A
daily cycle (``as_of`` a date) takes one sequential look per day (:mod:`churn.abtest.looks`),
stored in ``ml_pipeline.ab_looks``; the test stops when the mSPRT decides or at its planned
maximum duration. Every cycle also re-checks the guardrails of a promoted variant on the newest
matured labels and rolls it back when one fails.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import pandas as pd

from churn.abtest.decision import Decision, Guardrail, analyse, decide, model_guardrails
from churn.abtest.looks import Look, day_of_test, next_look
from churn.abtest.manager import ABTestManager
from churn.abtest.simulate import churn_probability, simulate_outcomes
from churn.modeling.lifecycle import load_predictor
from churn.modeling.predict import ChurnPredictor
from churn.monitoring.monitor import visible_at
from churn.registry import ModelRegistry, ModelVersion
from churn.runs import as_of_date
from churn.store import abtests, offline, raw
from churn.store.warehouse import Warehouse


@dataclass(frozen=True)
class TrafficPlan:
    """How the simulated live traffic is run: ``env.yaml``'s ``ab_*`` parameters, every one required
    (a default here could only disagree with env.yaml)."""

    traffic_split: float  # share of users in the variant arm
    offer_share: float  # each arm offers retention to its model's riskiest share
    offer_effect: float  # relative cut of a user's churn probability by the offer
    window_days: int
    mde_relative: float  # planned minimum detectable effect, relative to the baseline
    seed: int
    max_days: int  # a test spanning cycles: users arrive over, and the test ends by, this many days


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
    look: Look | None = None  # this cycle's sequential look (daily cycles only)
    rollback: str | None = None  # why a promoted variant was rolled back in this run

    @property
    def outcome(self) -> str | None:
        return self.final["decision"] if self.final else None


LIVE_SUFFIX = "-live"  # a pair a full build decided at once, tested again over daily cycles


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
    started_on: date | None = None,
) -> None:
    """Start the test unless it exists, then simulate and record its outcomes unless recorded.

    Each arm's model scores its own users; the simulator draws churn from its hidden truth and
    the offer's known effect. Assignment is a hash of (user, test name), so a resumed test gets
    exactly the arms it was started with. A test started by a daily cycle (``started_on``) has
    its users arrive over ``plan.max_days`` days (a full build: over the window).
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
            **({"started_on": str(started_on), "max_days": int(plan.max_days)} if started_on else {}),
        )  # fmt: skip
    if not abtests.read_results(warehouse, test_name).empty:
        return
    arms = manager.assignments(test_name).merge(latest, on="user_id")
    arms["score"] = 0.0
    for arm, model in models.items():
        rows = arms.arm == arm
        arms.loc[rows, "score"] = model.predict_proba(arms.loc[rows, model.features].to_numpy(float))
    arrival = abtests.get_test(warehouse, test_name)["params"].get("max_days")  # type: ignore[index]
    outcomes = simulate_outcomes(arms, plan.offer_share, plan.offer_effect, int(plan.window_days), int(plan.seed),
                                 arrival_days=int(arrival) if arrival else None)  # fmt: skip
    manager.record_outcomes(test_name, outcomes)


def guardrails_on_matured_labels(
    warehouse: Warehouse, models: dict[str, ChurnPredictor], day: date | None, horizon_days: int
) -> list[Guardrail]:
    """AUC and Brier score of both models on the latest snapshot with matured labels (the same
    users for both; matured by ``day``, a label ``horizon_days`` after its snapshot; ``day`` None:
    every label the offline store holds as mature)."""
    frame = visible_at(offline.read_features(warehouse), day, horizon_days)
    matured = frame[frame.label_mature & (frame.snapshot_at == frame[frame.label_mature].snapshot_at.max())]
    y = matured.label.to_numpy(int)
    control, variant = (models[arm].predict_proba(matured[models[arm].features].to_numpy(float))
                        for arm in ("control", "variant"))  # fmt: skip
    return model_guardrails(y, control, y, variant)


def run_ab_test(
    warehouse: Warehouse, registry: ModelRegistry, model_name: str, plan: TrafficPlan, as_of: Any = None
) -> ABPhaseResult:
    """Test the newest staging candidate against production: start (or resume) the test, analyse
    it, and conclude it when due: at once in a full build, at the look that decides or at the
    planned maximum duration in a daily cycle (``as_of``), after re-checking promotions.

    A pair that a full build already decided at once (simulated traffic in one go) is tested
    once more over the cycles, under the name ``...-live``: the live test is the one that looks
    day by day; a pair tested over cycles is never tested again.
    """
    manager = ABTestManager(warehouse, registry, model_name)
    day = as_of_date(as_of)
    rollback = watch_promotion(warehouse, registry, model_name, day) if day is not None else None
    production = registry.get_production(model_name)
    if production is None:
        raise ValueError(f"model {model_name!r} has no production version: run train-model first")
    staging = registry.list_models(model_name, stage="staging")
    candidate = max(staging, key=lambda m: m.version) if staging else None
    if candidate is None:
        return ABPhaseResult(production, None, None, None, None, None, None, rollback=rollback)
    test_name = ab_test_name(model_name, production.version, candidate.version)
    earlier = abtests.get_test(warehouse, test_name) if day is not None else None
    if earlier is not None and "started_on" not in earlier["params"]:
        # a full build decided this pair at once on simulated traffic; the cycles test it live, once
        test_name = f"{test_name}{LIVE_SUFFIX}"
    models = {"control": load_predictor(registry, model_name, production.version)[0],
              "variant": load_predictor(registry, model_name, candidate.version)[0]}  # fmt: skip
    start_with_outcomes(warehouse, manager, test_name, models, production, candidate, plan, started_on=day)
    analysis = manager.analysis(test_name)
    decision, look = None, None
    if analysis[0]["status"] == "running":
        if day is None or "started_on" not in analysis[0]["params"]:
            # decided at once, as a full build does: on every label the offline store holds as mature
            guardrails = guardrails_on_matured_labels(
                warehouse, models, None, int(candidate.params.get("horizon_days", 0))
            )
            decision = manager.conclude(test_name, guardrails, analysis)
        else:
            look, decision = take_look(warehouse, manager, test_name, day, models, candidate)
            analysis = manager.analysis(test_name)  # as of this look
    results = manager.get_test_results(test_name, analysis)
    final = abtests.get_test(warehouse, test_name)
    return ABPhaseResult(production, candidate, test_name, analysis, results, decision, final, look, rollback)


def take_look(
    warehouse: Warehouse,
    manager: ABTestManager,
    test_name: str,
    day: date,
    models: dict[str, ChurnPredictor],
    candidate: ModelVersion,
) -> tuple[Look | None, Decision | None]:
    """This cycle's look (one per as_of: a re-run of the day finds it stored), and the decision
    when the look stops the test; the look, the conclusion and its registry change commit together."""
    test = abtests.get_test(warehouse, test_name)
    assert test is not None  # started by the caller
    looks = abtests.read_looks(warehouse, test_name)
    if len(looks) and (pd.to_datetime(looks.as_of).dt.date == day).any():
        return None, None
    p = test["params"]
    outcomes = abtests.read_results(warehouse, test_name)
    look = next_look(looks, outcomes, day_of_test(date.fromisoformat(p["started_on"]), day), int(p["max_days"]),
                     tau=float(p["mde"]), alpha=float(p["alpha"]))  # fmt: skip
    alpha = float(p["alpha"])
    if not look.stops:
        with manager.registry.transaction() as con:
            abtests.write_look(con, look.row(test_name, day, alpha, "continue"))
        return look, None
    c = look.counts
    results = analyse(c["conv_control"], c["n_control"], c["conv_variant"], c["n_variant"],
                      expected_split=test["traffic_split"], mde=float(p["mde"]), alpha=alpha,
                      baseline=p.get("baseline"), sequential=look.sequential)  # fmt: skip
    guardrails = guardrails_on_matured_labels(warehouse, models, day, int(candidate.params.get("horizon_days", 0)))
    if look.significant:  # always valid: stopping at the first rejection needs no power requirement
        decision = decide(results, guardrails, min_power=0.0)
        when = f"Stopped at look {look.number} (test day {look.day}): the mSPRT reached alpha."
    else:
        decision = decide(results, guardrails)
        when = (
            f"Stopped at the planned maximum duration ({look.max_days} days, look {look.number}) without an "
            "mSPRT decision: futility."
            if decision.action != "promote"
            else ""
        )
    decision = replace(decision, reasons=[decision.reasons[0], *([when] if when else []), *decision.reasons[1:]])
    decision = manager.conclude(test_name, decision=decision, look=look.row(test_name, day, alpha, decision.action))
    return look, decision


def watch_promotion(warehouse: Warehouse, registry: ModelRegistry, model_name: str, day: date) -> str | None:
    """Re-check the guardrails of the variant a test promoted, while it is production, on the
    newest labels matured by ``day``; when one fails, roll production back to the test's control
    and mark the test rolled back, in one transaction. Returns the reason, or None."""
    tests = abtests.list_tests(warehouse)
    production = registry.get_production(model_name)
    if tests.empty or production is None:
        return None
    promoted = tests[(tests.decision == "promote") & (tests.status == "concluded")
                     & (tests.variant_version == production.version)]  # fmt: skip
    if promoted.empty:
        return None
    test = promoted.iloc[-1]
    models = {"control": load_predictor(registry, model_name, int(test.control_version))[0],
              "variant": load_predictor(registry, model_name, production.version)[0]}  # fmt: skip
    guardrails = guardrails_on_matured_labels(warehouse, models, day, int(production.params.get("horizon_days", 0)))
    failed = [g for g in guardrails if not g.holds]
    if not failed:
        return None
    reason = f"rolled back on {day}: after A/B test {test.test_name} promoted v{production.version}, " + " ".join(
        g.sentence() for g in failed
    )
    with registry.transaction() as con:
        registry.rollback(model_name, reason, con=con)
        abtests.mark_rolled_back(con, str(test.test_name), reason)
    return reason
