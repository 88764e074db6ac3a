"""One sequential look per daily cycle: the counts a test has accrued by its day, the mSPRT over
every look so far, and whether the test stops.

A test started on day S with a planned maximum of ``max_days`` looks at day ``k = D - S + 1`` on
the cycle of date D: the outcomes observed by then (users whose outcome matured on test day
<= k) are its cumulative counts. The always-valid p-value of the mSPRT over the stored looks
plus this one may be read every day; the test stops at the first look where it reaches alpha
(then the decision rule, without its power requirement, decides between promote and keep
control: an always-valid test may stop early by design) or at day ``max_days`` (then the full
rule decides, and a test that found nothing stops for futility).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from churn.abtest.sequential import SequentialResult, msprt, msprt_likelihood_ratio

COUNTS = ["n_control", "conv_control", "n_variant", "conv_variant"]


def day_of_test(started_on: date, day: date) -> int:
    """Day ``day`` of a test started on ``started_on`` (the first day is 1)."""
    elapsed = (day - started_on).days + 1
    if elapsed < 1:
        raise ValueError(f"as_of {day} is before the A/B test started ({started_on})")
    return elapsed


def counts_by_day(outcomes: pd.DataFrame, through_day: int) -> dict[str, int]:
    """Cumulative users and churners per arm among outcomes observed by test day ``through_day``."""
    seen = outcomes[outcomes.observed_day <= through_day]
    users, churned = seen.groupby("arm").size(), seen[seen.churned.astype(bool)].groupby("arm").size()
    return {"n_control": int(users.get("control", 0)), "conv_control": int(churned.get("control", 0)),
            "n_variant": int(users.get("variant", 0)), "conv_variant": int(churned.get("variant", 0))}  # fmt: skip


@dataclass(frozen=True)
class Look:
    """A look's counts, its mSPRT over all looks so far, and what it means for the test."""

    number: int
    day: int
    counts: dict[str, int]
    sequential: SequentialResult | None  # None while an arm has no user yet
    likelihood_ratio: float
    max_days: int

    @property
    def p_value(self) -> float:
        return float(self.sequential.p_value[-1]) if self.sequential is not None else 1.0

    @property
    def significant(self) -> bool:
        return self.sequential is not None and self.p_value <= self.sequential.alpha

    @property
    def at_max_duration(self) -> bool:
        return self.day >= self.max_days

    @property
    def stops(self) -> bool:
        return self.significant or self.at_max_duration

    def row(self, test_name: str, as_of: date, alpha: float, decision: str) -> dict[str, Any]:
        difference = float(self.sequential.difference[-1]) if self.sequential is not None else float("nan")
        return {"test_name": test_name, "look": self.number, "as_of": as_of, "test_day": self.day, **self.counts,
                "difference": difference, "likelihood_ratio": self.likelihood_ratio, "p_value": self.p_value,
                "alpha": alpha, "decision": decision}  # fmt: skip


def next_look(
    previous: pd.DataFrame, outcomes: pd.DataFrame, day: int, max_days: int, tau: float, alpha: float
) -> Look:
    """The look of test day ``day`` after the ``previous`` looks (stored rows, in order)."""
    counts = counts_by_day(outcomes, min(day, max_days))
    path = (
        pd.concat([previous[COUNTS], pd.DataFrame([counts])], ignore_index=True)
        if len(previous)
        else pd.DataFrame([counts])
    )
    path = path[(path.n_control > 0) & (path.n_variant > 0)]  # a look with an empty arm carries no evidence
    if path.empty:
        return Look(len(previous) + 1, day, counts, None, 1.0, max_days)
    churned_c, n_c, churned_v, n_v = (
        path[c].to_numpy() for c in ("conv_control", "n_control", "conv_variant", "n_variant")
    )
    sequential = msprt(churned_c, n_c, churned_v, n_v, tau=tau, alpha=alpha)
    ratio = float(np.asarray(msprt_likelihood_ratio(churned_c[-1:], n_c[-1:], churned_v[-1:], n_v[-1:], tau=tau))[0])
    return Look(len(previous) + 1, day, counts, sequential, ratio, max_days)
