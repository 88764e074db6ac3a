"""Fixed-horizon A/B statistics: two-proportion z-test (Fisher's exact test for small counts),
Welch's t-test, sample-ratio mismatch.

Convention everywhere: differences are ``variant - control``. For churn a negative difference is
good news (the variant's users churn less). The Bayesian analysis lives in
:mod:`churn.abtest.bayes`, power and sample size in :mod:`churn.abtest.power`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

# The z-test's normal approximation needs every expected cell of the 2x2 table (churned / stayed
# x arm, under the pooled rate) to hold at least this many users (Cochran's rule); below it the
# p-value comes from Fisher's exact test.
MIN_EXPECTED_COUNT = 5.0
Z_TEST, FISHER_EXACT = "z-test", "Fisher exact test"


def check_counts(churned: float, n: float, arm: str) -> None:
    """Raise ValueError unless ``0 <= churned <= n`` and ``n > 0``."""
    if not n > 0:
        raise ValueError(f"{arm}: sample size must be positive; got n={n}")
    if not 0 <= churned <= n:
        raise ValueError(f"{arm}: churned users must lie in [0, n={n}]; got {churned}")


@dataclass(frozen=True)
class ProportionTest:
    """Result of :func:`two_proportion_test` (difference = variant - control)."""

    rate_control: float
    rate_variant: float
    difference: float
    relative_lift: float
    z: float
    p_value: float
    ci_low: float
    ci_high: float
    alpha: float
    ci_method: str = "newcombe"
    test: str = Z_TEST
    min_expected: float = float("nan")

    def as_dict(self) -> dict[str, float | str]:
        return asdict(self)


def min_expected_count(churned_c: float, n_c: float, churned_v: float, n_v: float) -> float:
    """Smallest expected cell of the 2x2 table (arm x churned/stayed) under the pooled rate."""
    pooled = (churned_c + churned_v) / (n_c + n_v)
    return float(min(n * share for n in (n_c, n_v) for share in (pooled, 1 - pooled)))


def pooled_z(
    churned_c: np.ndarray, n_c: np.ndarray, churned_v: np.ndarray, n_v: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised pooled two-proportion z and two-sided p (same statistic as ``proportions_ztest``).

    ``z = (p_v - p_c) / sqrt(p (1 - p) (1/n_c + 1/n_v))`` with the pooled rate ``p``; ``z = 0`` when
    the pooled rate is 0 or 1 (no evidence either way). For simulations over many tests or looks.
    """
    churned_c, n_c, churned_v, n_v = (np.asarray(a, dtype=float) for a in (churned_c, n_c, churned_v, n_v))
    pooled = (churned_c + churned_v) / (n_c + n_v)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_v))
    diff = churned_v / n_v - churned_c / n_c
    z = np.divide(diff, se, out=np.zeros_like(diff), where=se > 0)
    return z, 2 * stats.norm.sf(np.abs(z))


def two_proportion_test(churned_c: int, n_c: int, churned_v: int, n_v: int, alpha: float = 0.05) -> ProportionTest:
    """Two-sided test of ``p_v = p_c`` with a confidence interval for ``p_v - p_c``.

    The test uses the pooled standard error (``statsmodels`` ``proportions_ztest``) when every
    expected cell is at least ``MIN_EXPECTED_COUNT``; otherwise (e.g. 3/1000 vs 0/1000, where the
    z-test says p = 0.083) the p-value is Fisher's exact test (``scipy.stats.fisher_exact``,
    two-sided), and ``test`` says which one ran. ``z`` is reported either way. The interval is
    Newcombe's hybrid score interval (Newcombe 1998, method 10; ``confint_proportions_2indep``
    with ``method="newcomb"``), which keeps its coverage for small counts where Wald's does not.
    Being different constructions, test and interval can disagree right at the boundary.
    """
    check_counts(churned_c, n_c, "control")
    check_counts(churned_v, n_v, "variant")
    rate_c, rate_v = churned_c / n_c, churned_v / n_v
    smallest = min_expected_count(churned_c, n_c, churned_v, n_v)
    if churned_c + churned_v in (0, n_c + n_v):
        z, p = 0.0, 1.0  # nobody (or everybody) churned: the data cannot tell the arms apart
    else:
        z, p = proportions_ztest([churned_v, churned_c], [n_v, n_c])
    test = Z_TEST
    if smallest < MIN_EXPECTED_COUNT:
        table = np.array([[churned_v, n_v - churned_v], [churned_c, n_c - churned_c]])
        test, p = FISHER_EXACT, stats.fisher_exact(table, alternative="two-sided").pvalue
    low, high = confint_proportions_2indep(
        churned_v, n_v, churned_c, n_c, method="newcomb", compare="diff", alpha=alpha
    )
    lift = (rate_v - rate_c) / rate_c if rate_c > 0 else float("nan")
    return ProportionTest(
        rate_control=rate_c, rate_variant=rate_v, difference=rate_v - rate_c, relative_lift=lift,
        z=float(z), p_value=float(p), ci_low=float(low), ci_high=float(high), alpha=alpha,
        test=test, min_expected=smallest,
    )


@dataclass(frozen=True)
class WelchTest:
    """Result of :func:`welch_test` (difference = mean(variant) - mean(control))."""

    mean_control: float
    mean_variant: float
    difference: float
    t: float
    df: float
    p_value: float
    ci_low: float
    ci_high: float
    alpha: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def welch_test(x_control: np.ndarray, x_variant: np.ndarray, alpha: float = 0.05) -> WelchTest:
    """Welch's unequal-variance t-test for a continuous per-user metric.

    ``t = (m_v - m_c) / sqrt(s_v²/n_v + s_c²/n_c)``, with Welch-Satterthwaite degrees of freedom
    ``df = (s_v²/n_v + s_c²/n_c)² / ((s_v²/n_v)²/(n_v-1) + (s_c²/n_c)²/(n_c-1))``
    (``scipy.stats.ttest_ind(equal_var=False)``); the CI is ``diff ± t_{1-alpha/2, df} * se``.
    """
    xc = np.asarray(x_control, dtype=float)
    xv = np.asarray(x_variant, dtype=float)
    if min(xc.size, xv.size) < 2:
        raise ValueError("welch_test needs at least two observations per arm")
    res = stats.ttest_ind(xv, xc, equal_var=False)
    ci = res.confidence_interval(confidence_level=1 - alpha)
    return WelchTest(
        mean_control=float(xc.mean()), mean_variant=float(xv.mean()),
        difference=float(xv.mean() - xc.mean()), t=float(res.statistic), df=float(res.df),
        p_value=float(res.pvalue), ci_low=float(ci.low), ci_high=float(ci.high), alpha=alpha,
    )


@dataclass(frozen=True)
class SRMResult:
    """Sample-ratio-mismatch check: did traffic split the way it was configured?"""

    n_control: int
    n_variant: int
    expected_split: float
    observed_split: float
    chi2: float
    p_value: float
    threshold: float
    mismatch: bool

    def as_dict(self) -> dict[str, float | bool]:
        return asdict(self)


def srm_check(n_c: int, n_v: int, expected_split: float, threshold: float = 0.001) -> SRMResult:
    """Chi-square goodness of fit of the arm sizes to the configured split (1 df).

    ``expected_split`` is the variant's share, as ``traffic_split`` in :func:`~churn.abtest.assign`.
    A mismatch is flagged at ``p < threshold`` (0.001, the usual SRM convention; Fabijan et al.
    2019, "Diagnosing Sample Ratio Mismatch in Online Controlled Experiments"): an SRM means
    assignment or logging is broken and no other statistic of the test can be trusted.
    """
    if not 0.0 < expected_split < 1.0:
        raise ValueError(f"expected_split must lie strictly between 0 and 1; got {expected_split!r}")
    total = n_c + n_v
    if total <= 0:
        raise ValueError("srm_check needs at least one user")
    expected = [total * (1 - expected_split), total * expected_split]
    chi2, p = stats.chisquare([n_c, n_v], f_exp=expected)
    return SRMResult(
        n_control=int(n_c), n_variant=int(n_v), expected_split=expected_split,
        observed_split=n_v / total, chi2=float(chi2), p_value=float(p), threshold=threshold,
        mismatch=bool(p < threshold),
    )
