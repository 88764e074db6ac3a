"""``ABTestManager``: start, record, analyse and conclude model A/B tests (original platform API)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from churn.abtest.assignment import assign
from churn.abtest.decision import Decision, ExperimentResults, Guardrail, analyse, decide
from churn.abtest.sequential import msprt
from churn.abtest.simulate import daily_counts
from churn.abtest.stats import WelchTest, welch_test
from churn.registry import ModelRegistry, RegistryError
from churn.store import abtests
from churn.store.warehouse import Warehouse

DEFAULTS = {"mde": 0.01, "alpha": 0.05, "window_days": 30}


# (test row, results, Welch test on log loss, daily counts); the last three are None before outcomes.
Analysis = tuple[dict[str, Any], ExperimentResults | None, WelchTest | None, pd.DataFrame | None]


class ABTestError(ValueError):
    """A test cannot be started, found or analysed as asked."""


class ABTestManager:
    """A/B tests between the production model (control) and a staging candidate (variant)."""

    def __init__(self, warehouse: Warehouse, registry: ModelRegistry, model_name: str) -> None:
        self.warehouse, self.registry, self.model_name = warehouse, registry, model_name

    def start_test(self, test_name: str, control_version: int, variant_version: int, *, traffic_split: float,
                   user_ids: list[int] | np.ndarray, **params: Any) -> dict[str, Any]:
        """Validate, assign users deterministically and store the test, all or nothing.

        ``traffic_split`` is the variant's share (``env.yaml``'s ``ab_traffic_split``).
        """
        if not 0.0 < float(traffic_split) < 1.0:
            raise ABTestError(f"traffic_split must lie strictly between 0 and 1, got {traffic_split}")
        if abtests.get_test(self.warehouse, test_name) is not None:
            raise ABTestError(f"an A/B test named {test_name!r} already exists")
        self._check_stage(control_version, "production", "control")
        self._check_stage(variant_version, "staging", "variant")
        ids = np.asarray(user_ids, dtype=np.int64)
        arms = assign(ids, test_name, float(traffic_split))
        for arm in ("control", "variant"):
            if not (arms == arm).any():
                raise ABTestError(f"the {arm} arm would have no users ({len(ids)} users, split {traffic_split})")
        row = {"test_name": test_name, "model_name": self.model_name, "control_version": int(control_version),
               "variant_version": int(variant_version), "traffic_split": float(traffic_split),
               "params": {**DEFAULTS, **params}}
        abtests.create_test(self.warehouse, row, pd.DataFrame({"user_id": ids, "arm": arms}))
        return self._test(test_name)

    def _check_stage(self, version: int, stage: str, role: str) -> None:
        try:
            model = self.registry.get_model(self.model_name, version=version)
        except RegistryError as exc:
            raise ABTestError(f"{role} model {self.model_name} v{version} does not exist ({exc})") from None
        if model.stage != stage:
            raise ABTestError(f"{role} must be the {stage} model, but v{version} is {model.stage}")

    def assignments(self, test_name: str) -> pd.DataFrame:
        self._test(test_name)
        return abtests.read_assignments(self.warehouse, test_name)

    def record_outcomes(self, test_name: str, outcomes: pd.DataFrame) -> int:
        self._test(test_name)
        return abtests.write_results(self.warehouse, test_name, outcomes)

    def _test(self, test_name: str) -> dict[str, Any]:
        test = abtests.get_test(self.warehouse, test_name)
        if test is None:
            raise ABTestError(f"no A/B test named {test_name!r}")
        return test

    def analysis(self, test_name: str) -> Analysis:
        """(test row, ExperimentResults, Welch test on log loss, daily counts) or results None.

        A test spanning daily cycles is analysed as of its last stored look: only the outcomes
        observed by then (the simulator drew the later ones already; nobody may see them yet).
        """
        test = self._test(test_name)
        outcomes = abtests.read_results(self.warehouse, test_name)
        p = test["params"]
        days = int(p["window_days"])
        if "started_on" in p:
            looks = abtests.read_looks(self.warehouse, test_name)
            days = int(looks.test_day.max()) if len(looks) else 0
            outcomes = outcomes[outcomes.observed_day <= days] if len(outcomes) else outcomes
        if outcomes.empty or outcomes.arm.nunique() < 2:
            return test, None, None, None
        daily = daily_counts(outcomes, days)
        daily = daily[(daily.n_control > 0) & (daily.n_variant > 0)]
        last = daily.iloc[-1]
        sequential = msprt(daily.conv_control.to_numpy(), daily.n_control.to_numpy(), daily.conv_variant.to_numpy(),
                           daily.n_variant.to_numpy(), tau=float(p["mde"]), alpha=float(p["alpha"]))
        results = analyse(int(last.conv_control), int(last.n_control), int(last.conv_variant), int(last.n_variant),
                          expected_split=test["traffic_split"], mde=float(p["mde"]), alpha=float(p["alpha"]),
                          baseline=p.get("baseline"), sequential=sequential)
        arm = outcomes.groupby("arm")["log_loss"]
        welch = welch_test(arm.get_group("control").to_numpy(), arm.get_group("variant").to_numpy())
        return test, results, welch, daily

    def get_test_results(self, test_name: str, analysis: Analysis | None = None) -> dict[str, Any]:
        """Control vs variant, p-value, the probability test with its winner, SRM and power
        (from ``analysis``, the result of :meth:`analysis`, when the caller already has it)."""
        test, results, welch, _ = analysis or self.analysis(test_name)
        summary = {"test_name": test_name, "status": test["status"], "decision": test.get("decision"),
                   "reasons": test.get("reasons", []), "control_version": int(test["control_version"]),
                   "variant_version": int(test["variant_version"]), "traffic_split": float(test["traffic_split"])}
        if results is None or welch is None:
            return {**summary, "results": None}
        f, b, s, seq = results.fixed, results.bayes, results.srm, results.sequential
        if b is None or seq is None:
            raise ABTestError(f"A/B test {test_name!r}: the analysis lacks its Bayesian or sequential part")
        winner = "variant" if b.prob_variant_better >= 0.95 else "control" if b.prob_variant_better <= 0.05 else "none"
        return {**summary,
                "control": {"users": s.n_control, "churn_rate": f.rate_control},
                "variant": {"users": s.n_variant, "churn_rate": f.rate_variant},
                "difference": f.difference, "ci": [f.ci_low, f.ci_high], "p_value": f.p_value,
                "p_value_test": f.test,
                "sequential_p_value": float(seq.p_value[-1]),
                "probability_test": {"prob_variant_better": b.prob_variant_better, "winner": winner,
                                     "expected_loss_variant": b.expected_loss_variant},
                "log_loss": {"control": welch.mean_control, "variant": welch.mean_variant, "p_value": welch.p_value},
                "srm": {"p_value": s.p_value, "mismatch": bool(s.mismatch)},
                "power": {k: v for k, v in results.power.items() if isinstance(v, (int, float)) or v is None}}

    def conclude(self, test_name: str, guardrails: Sequence[Guardrail] = (), analysis: Analysis | None = None,
                 decision: Decision | None = None, look: dict[str, Any] | None = None) -> Decision:
        """Decide (or take ``decision``), then promote the variant (archiving control) or record
        keeping control; with ``look``, the sequential look that decided is stored with it."""
        test, results, _, _ = analysis or self.analysis(test_name)
        if decision is None:
            if results is None:
                raise ABTestError(f"A/B test {test_name!r} has no outcomes yet")
            decision = decide(results, guardrails)
        reason = f"A/B test {test_name}: {decision.reasons[0]}"
        with self.registry.transaction() as con:  # the decision and its registry change: both or neither
            if decision.action == "promote":
                self.registry.promote_model(self.model_name, test["variant_version"], "production", reason,
                                            con=con)
            else:
                self.registry.record_event(self.model_name, test["variant_version"], f"ab_{decision.action}",
                                           reason, con=con)
            abtests.conclude_test(self.warehouse, test_name, decision.action, decision.reasons, con=con)
            if look is not None:
                abtests.write_look(con, {**look, "decision": decision.action})
        return decision
