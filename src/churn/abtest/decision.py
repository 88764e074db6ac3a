"""The decision rule: promote the variant, keep control, or call the test inconclusive.

The variant is promoted only when all of these hold:

1. no sample-ratio mismatch (else the numbers cannot be trusted: inconclusive);
2. every guardrail holds, e.g. the variant model's AUC and Brier score on matured labels are no
   worse than control's beyond a margin (else keep control);
3. churn is significantly lower in the variant, by the always-valid sequential test when one was
   run, otherwise by the fixed-horizon z-test read at the planned end (a fixed test read early is
   peeking: inconclusive);
4. the test had at least ``min_power`` to detect the planned minimum detectable effect (MDE); an
   underpowered test is inconclusive even when significant, since significant results from small
   samples overstate the effect (the "winner's curse").

A powered test with no significant difference keeps control.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from sklearn.metrics import brier_score_loss, roc_auc_score

from churn.abtest.bayes import BayesResult, bayesian_beta_binomial
from churn.abtest.power import power_analysis
from churn.abtest.sequential import SequentialResult
from churn.abtest.stats import (
    FISHER_EXACT,
    MIN_EXPECTED_COUNT,
    ProportionTest,
    SRMResult,
    srm_check,
    two_proportion_test,
)

Action = Literal["promote", "keep_control", "inconclusive"]


def _pp(x: float) -> str:
    """A rate difference in percentage points."""
    return f"{x * 100:+.2f} pp"


@dataclass(frozen=True)
class Guardrail:
    """A metric the variant must not make worse than control by more than ``margin``."""

    name: str
    control: float
    variant: float
    margin: float
    higher_is_better: bool = True

    @property
    def degradation(self) -> float:
        """How much worse the variant is (positive = worse), in the metric's units."""
        return self.control - self.variant if self.higher_is_better else self.variant - self.control

    @property
    def holds(self) -> bool:
        # The tolerance keeps 0.80 - 0.79 (= 0.0100000000000001) within a 0.01 margin.
        return bool(self.degradation <= self.margin + 1e-12)

    def sentence(self) -> str:
        verdict = "holds" if self.holds else "FAILS"
        return (f"Guardrail {self.name} {verdict}: variant {self.variant:.4f} vs control "
                f"{self.control:.4f} ({'higher' if self.higher_is_better else 'lower'} is better; "
                f"allowed degradation {self.margin:.4f}, observed {self.degradation:+.4f}).")


def model_guardrails(
    y_control: np.ndarray, scores_control: np.ndarray, y_variant: np.ndarray, scores_variant: np.ndarray,
    auc_margin: float = 0.01, brier_margin: float = 0.005,
) -> list[Guardrail]:
    """AUC and Brier-score guardrails from each arm's model scores on matured churn labels."""
    return [
        Guardrail("AUC", roc_auc_score(y_control, scores_control),
                  roc_auc_score(y_variant, scores_variant), auc_margin, higher_is_better=True),
        Guardrail("Brier score", brier_score_loss(y_control, scores_control),
                  brier_score_loss(y_variant, scores_variant), brier_margin, higher_is_better=False),
    ]


@dataclass(frozen=True)
class ExperimentResults:
    """Everything :func:`decide` reads; built by :func:`analyse` or by hand."""

    fixed: ProportionTest
    srm: SRMResult
    power: dict[str, Any]
    mde: float
    at_planned_end: bool = True
    sequential: SequentialResult | None = None
    bayes: BayesResult | None = None


def analyse(
    churned_c: int, n_c: int, churned_v: int, n_v: int, *, expected_split: float, mde: float,
    alpha: float = 0.05, baseline: float | None = None, at_planned_end: bool = True,
    sequential: SequentialResult | None = None, bayes: bool = True,
) -> ExperimentResults:
    """Run the fixed-horizon test, SRM check, power at the MDE and (optionally) the Bayesian view.

    Args:
        mde: planned minimum detectable effect, an absolute churn-rate reduction (0.02 = 2 pp).
        baseline: planned control churn rate for the power calculation; defaults to the observed one.
        sequential: the :func:`~churn.abtest.sequential.msprt` result over the looks, if any.
    """
    p_base = baseline if baseline is not None else churned_c / n_c
    return ExperimentResults(
        fixed=two_proportion_test(churned_c, n_c, churned_v, n_v, alpha=alpha),
        srm=srm_check(n_c, n_v, expected_split),
        power=power_analysis(p_base, n_c, n_v, alpha=alpha, effect=mde),
        mde=mde, at_planned_end=at_planned_end, sequential=sequential,
        bayes=bayesian_beta_binomial(churned_c, n_c, churned_v, n_v) if bayes else None,
    )


@dataclass(frozen=True)
class Decision:
    action: Action
    reasons: list[str] = field(default_factory=list)


def _significance(r: ExperimentResults) -> tuple[str, str]:
    """('better' | 'worse' | 'none' | 'unreadable', sentence) for the churn difference."""
    if r.sequential is not None:
        s = r.sequential
        verdict = "none"
        if s.significant:
            verdict = "better" if s.ci_high[-1] < 0 else "worse" if s.ci_low[-1] > 0 else "none"
        looks = len(s.p_value)
        when = (f"reached alpha = {s.alpha:g} first at look {s.reject_at + 1} of {looks}" if s.reject_at is not None
                else f"did not reach alpha = {s.alpha:g} in {looks} look{'s' if looks != 1 else ''}")
        return verdict, (
            f"Sequential mSPRT (always valid under daily looks): always-valid p-value "
            f"{s.p_value[-1]:.4g}, {when}; churn difference (variant - control) "
            f"{_pp(s.difference[-1])}, confidence sequence [{_pp(s.ci_low[-1])}, {_pp(s.ci_high[-1])}].")
    f = r.fixed
    small = (f" (smallest expected cell {f.min_expected:.1f} < {MIN_EXPECTED_COUNT:g}, so exact)"
             if f.test == FISHER_EXACT else "")
    text = (f"Fixed-horizon {f.test}{small}: churn {f.rate_control:.2%} (control) vs {f.rate_variant:.2%} "
            f"(variant), difference {_pp(f.difference)}, {1 - f.alpha:.0%} Newcombe CI "
            f"[{_pp(f.ci_low)}, {_pp(f.ci_high)}], p = {f.p_value:.4g}.")
    if not r.at_planned_end:
        return "unreadable", text + (" It was read before the planned end, and reading a "
                                     "fixed-horizon test early inflates false positives.")
    if f.p_value >= f.alpha:
        return "none", text
    return ("better" if f.difference < 0 else "worse"), text


def _power_sentence(r: ExperimentResults, min_power: float) -> tuple[bool, str]:
    pw = r.power
    achieved = float(pw["power_at_effect"])
    text = (f"With {pw['n_control']:,} control and {pw['n_variant']:,} variant users the test had "
            f"{achieved:.0%} power to detect the planned MDE of {_pp(-r.mde)} "
            f"(from a {pw['p_control']:.2%} baseline)")
    if achieved >= min_power:
        return True, text + "."
    return False, text + (f", below the required {min_power:.0%}; it could only detect an effect of "
                          f"{_pp(-pw['mde_absolute'])} ({pw['mde_relative']:.0%} relative).")


def _bayes_sentence(b: BayesResult) -> str:
    return (f"Bayesian view (informational): P(variant churns less) = {b.prob_variant_better:.3f}; "
            f"expected churn-rate loss of shipping the variant {b.expected_loss_variant * 100:.3f} pp, "
            f"of keeping control {b.expected_loss_control * 100:.3f} pp.")


def decide(
    results: ExperimentResults, guardrails: Sequence[Guardrail] = (), min_power: float = 0.8
) -> Decision:
    """Apply the rule in the module docstring; every check adds a readable sentence."""
    verdict, sig_text = _significance(results)
    powered, power_text = _power_sentence(results, min_power)
    srm = results.srm
    srm_text = (f"Sample ratio {'MISMATCH' if srm.mismatch else 'OK'}: variant share "
                f"{srm.observed_split:.2%} vs configured {srm.expected_split:.2%} (chi-square p = "
                f"{srm.p_value:.3g}; flagged below {srm.threshold}).")
    failed = [g.name for g in guardrails if not g.holds]
    details = [srm_text, sig_text, power_text, *(g.sentence() for g in guardrails)]
    if results.bayes is not None:
        details.append(_bayes_sentence(results.bayes))
    action, headline = _action(srm.mismatch, verdict, powered, failed)
    return Decision(action=action, reasons=[headline, *details])


def _action(mismatch: bool, verdict: str, powered: bool, failed: list[str]) -> tuple[Action, str]:
    """The first rule that applies, with a one-sentence headline."""
    if mismatch:
        return "inconclusive", ("Inconclusive: the traffic split does not match the configuration, "
                                "so assignment or logging is broken.")
    if verdict == "unreadable":
        return "inconclusive", "Inconclusive: the fixed-horizon test was read before its planned end."
    if failed:
        return "keep_control", f"Keep control: guardrail(s) {', '.join(failed)} failed."
    if verdict == "worse":
        return "keep_control", "Keep control: the variant's users churn significantly more."
    if verdict == "better" and powered:
        return "promote", ("Promote the variant: churn is significantly lower, the test was adequately "
                           "powered and all guardrails hold.")
    if not powered:
        return "inconclusive", "Inconclusive: the test was underpowered for the planned MDE."
    return "keep_control", ("Keep control: no significant churn reduction, although the test could "
                            "detect the planned MDE.")
