"""Always-valid sequential analysis: look at the results every day without inflating false positives.

Method: the mixture sequential probability ratio test (mSPRT) of Johari, Koomen, Pekelis & Walsh,
"Peeking at A/B Tests: Why it matters, and what to do about it" (KDD 2017), and Johari, Pekelis &
Walsh, "Always Valid Inference" (Operations Research 70(3), 2022), with the normal approximation
for the difference of two proportions.

At look ``n`` let ``d = p_v - p_c`` be the observed difference and
``V = p_c(1-p_c)/n_c + p_v(1-p_v)/n_v`` its estimated variance. Mixing the alternative
``theta ~ N(0, tau²)`` gives the likelihood ratio against ``H0: theta = 0``::

    Lambda_n = sqrt(V / (V + tau²)) * exp(tau² d² / (2 V (V + tau²)))

``Lambda_n`` is a martingale under H0, so by Ville's inequality ``P(sup_n Lambda_n >= 1/alpha) <=
alpha``: the always-valid p-value ``p_n = min(1, min_{k<=n} 1/Lambda_k)`` may be read after every
look, and stopping at the first ``p_n <= alpha`` keeps the false-positive rate at most ``alpha``.
Inverting ``Lambda_n < 1/alpha`` gives the always-valid confidence sequence::

    d ± sqrt(V (V + tau²) / tau² * (2 log(1/alpha) + log((V + tau²) / V)))

intersected over looks. ``tau`` (rate units) should be about the effect one hopes to detect, e.g.
the planned minimum detectable effect: too small or too large a ``tau`` only costs power, never
validity. Inputs are *cumulative* counts at each look.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from churn.abtest.assignment import CONTROL, VARIANT


def _difference_and_variance(
    churned_c: ArrayLike, n_c: ArrayLike, churned_v: ArrayLike, n_v: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    churned_c, n_c, churned_v, n_v = (np.asarray(a, dtype=float) for a in (churned_c, n_c, churned_v, n_v))
    if np.any(n_c <= 0) or np.any(n_v <= 0):
        raise ValueError("every look needs at least one user in each arm")
    rate_c, rate_v = churned_c / n_c, churned_v / n_v
    variance = rate_c * (1 - rate_c) / n_c + rate_v * (1 - rate_v) / n_v
    return rate_v - rate_c, variance


def msprt_likelihood_ratio(churned_c: ArrayLike, n_c: ArrayLike, churned_v: ArrayLike, n_v: ArrayLike, tau: float) -> np.ndarray:
    """``Lambda_n`` at each look (any array shape; see the module docstring).

    Where the variance estimate is 0 (no churner, or only churners, in both arms so far) the data
    carry no evidence and ``Lambda_n = 1``.
    """
    if not tau > 0:
        raise ValueError(f"tau must be positive; got {tau!r}")
    diff, var = _difference_and_variance(churned_c, n_c, churned_v, n_v)
    tau2 = tau**2
    safe = np.where(var > 0, var, 1.0)
    log_lr = 0.5 * np.log(safe / (safe + tau2)) + tau2 * diff**2 / (2 * safe * (safe + tau2))
    return np.where(var > 0, np.exp(np.minimum(log_lr, 700.0)), 1.0)


def msprt_p_values(churned_c: ArrayLike, n_c: ArrayLike, churned_v: ArrayLike, n_v: ArrayLike, tau: float) -> np.ndarray:
    """Always-valid p-values ``min(1, min_{k<=n} 1/Lambda_k)``; looks run along the last axis."""
    inv = 1.0 / msprt_likelihood_ratio(churned_c, n_c, churned_v, n_v, tau)
    return np.minimum.accumulate(np.minimum(inv, 1.0), axis=-1)


@dataclass(frozen=True)
class SequentialResult:
    """mSPRT over a sequence of looks (arrays have one entry per look)."""

    difference: np.ndarray
    p_value: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    alpha: float
    tau: float
    reject_at: int | None

    @property
    def significant(self) -> bool:
        """True once the always-valid p-value has reached ``alpha`` at some look."""
        return self.reject_at is not None

    def as_frame(self) -> pd.DataFrame:
        """One row per look: difference, always-valid p-value and confidence sequence."""
        return pd.DataFrame({"difference": self.difference, "p_value": self.p_value,
                             "ci_low": self.ci_low, "ci_high": self.ci_high})


def msprt(
    churned_c: ArrayLike, n_c: ArrayLike, churned_v: ArrayLike, n_v: ArrayLike, tau: float, alpha: float = 0.05
) -> SequentialResult:
    """mSPRT of ``p_v - p_c`` over looks given cumulative counts (1-D, one entry per look).

    ``reject_at`` is the index of the first look with ``p_value <= alpha`` (None if none); the
    confidence sequence excludes 0 from then on, and its sign says which arm is better.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie strictly between 0 and 1; got {alpha!r}")
    diff, var = _difference_and_variance(churned_c, n_c, churned_v, n_v)
    if diff.ndim != 1:
        raise ValueError("msprt expects 1-D sequences of cumulative counts, one entry per look")
    tau2 = tau**2
    with np.errstate(divide="ignore", invalid="ignore"):
        half = np.sqrt(var * (var + tau2) / tau2 * (2 * np.log(1 / alpha) + np.log((var + tau2) / var)))
    half = np.where(var > 0, half, np.inf)  # no variance estimate yet: nothing is excluded
    p = msprt_p_values(churned_c, n_c, churned_v, n_v, tau)
    hits = np.flatnonzero(p <= alpha)
    return SequentialResult(
        difference=diff, p_value=p,
        ci_low=np.maximum.accumulate(diff - half), ci_high=np.minimum.accumulate(diff + half),
        alpha=alpha, tau=tau, reject_at=int(hits[0]) if hits.size else None,
    )


def cumulative_counts(
    frame: pd.DataFrame, look: str, arm: str = "arm", outcome: str = "churned"
) -> pd.DataFrame:
    """Cumulative users and churners per arm at each look, ready for :func:`msprt`.

    Args:
        frame: one row per user, with the look (e.g. the day the user's outcome matured),
            the arm (``'control'``/``'variant'``) and a 0/1 outcome.

    Returns:
        Indexed by look (sorted): ``n_control``, ``conv_control``, ``n_variant``, ``conv_variant``.
    """
    counts = cast(pd.DataFrame, frame.groupby([look, arm])[outcome].agg(["size", "sum"]).unstack(arm, fill_value=0))
    # An arm with no users yet still gets its (zero) columns.
    columns = pd.MultiIndex.from_product([["size", "sum"], [CONTROL, VARIANT]])
    cum = counts.reindex(columns=columns, fill_value=0).sort_index().cumsum().astype(int)
    return pd.DataFrame({
        "n_control": cum[("size", CONTROL)], "conv_control": cum[("sum", CONTROL)],
        "n_variant": cum[("size", VARIANT)], "conv_variant": cum[("sum", VARIANT)],
    })
