"""Simulation validation: false-positive rates, peeking and power across many simulated tests.

Counts are drawn with numpy in one go; seeds are fixed so the assertions are deterministic.
"""

import numpy as np
from scipy.stats import binom

from churn.abtest import msprt_p_values, pooled_z, power_analysis, required_sample_size, two_proportion_test

SIMS, ALPHA, RATE = 2000, 0.05, 0.10
DAYS, PER_DAY = 30, 100  # daily looks at 100 new users per arm


def band_99(p: float, sims: int = SIMS) -> tuple[float, float]:
    """Central 99% binomial band for a rejection rate estimated from ``sims`` tests."""
    low, high = binom.interval(0.99, sims, p)
    return low / sims, high / sims


def daily_counts(rng: np.random.Generator, p_c: float, p_v: float, per_day: int = PER_DAY):
    """Cumulative churners per arm at each daily look, shape (SIMS, DAYS), and users per arm."""
    n = per_day * np.arange(1, DAYS + 1)
    conv_c = rng.binomial(per_day, p_c, (SIMS, DAYS)).cumsum(axis=1)
    conv_v = rng.binomial(per_day, p_v, (SIMS, DAYS)).cumsum(axis=1)
    return conv_c, n, conv_v, n


def test_aa_fixed_horizon_false_positive_rate_is_near_alpha():
    """Identical arms, one look at the end: the z-test rejects in about 5% of tests."""
    rng = np.random.default_rng(0)
    n = 3000
    conv_c, conv_v = rng.binomial(n, RATE, SIMS), rng.binomial(n, RATE, SIMS)
    fpr = np.mean([two_proportion_test(int(a), n, int(b), n).p_value < ALPHA for a, b in zip(conv_c, conv_v, strict=True)])
    low, high = band_99(ALPHA)
    assert low <= fpr <= high, f"A/A false-positive rate {fpr:.4f} outside [{low:.4f}, {high:.4f}]"


def test_daily_peeking_inflates_naive_test_but_not_the_sequential_one():
    """Stopping at the first daily p < 0.05 rejects far more than 5%; the mSPRT stays <= alpha."""
    conv_c, n_c, conv_v, n_v = daily_counts(np.random.default_rng(1), RATE, RATE)
    _, naive_p = pooled_z(conv_c, n_c, conv_v, n_v)
    naive_fpr = np.mean((naive_p < ALPHA).any(axis=1))
    final_only_fpr = np.mean(naive_p[:, -1] < ALPHA)
    seq_fpr = np.mean(msprt_p_values(conv_c, n_c, conv_v, n_v, tau=0.02)[:, -1] <= ALPHA)
    assert naive_fpr > band_99(ALPHA)[1] + 0.08, f"peeking FPR only {naive_fpr:.3f}"
    assert band_99(ALPHA)[0] <= final_only_fpr <= band_99(ALPHA)[1]
    assert seq_fpr <= band_99(ALPHA)[1], f"sequential FPR {seq_fpr:.3f}"


def test_better_variant_wins_with_the_predicted_power():
    """At the sample size planned for 10% -> 8% churn, about 80% of tests find the variant better."""
    n, _ = required_sample_size(RATE, 0.02)
    predicted = power_analysis(RATE, n, n, effect=0.02)["power_at_effect"]
    rng = np.random.default_rng(2)
    conv_c, conv_v = rng.binomial(n, RATE, SIMS), rng.binomial(n, RATE - 0.02, SIMS)
    _, p = pooled_z(conv_c, n, conv_v, n)
    empirical = np.mean((p < ALPHA) & (conv_v < conv_c))
    assert abs(empirical - predicted) < 0.05, f"power {empirical:.3f} vs predicted {predicted:.3f}"


def test_unequal_allocation_power_matches_prediction():
    """One third of traffic on the variant, 25% -> 20% churn: empirical power near the prediction."""
    n_c, n_v = 1200, 600
    predicted = power_analysis(0.25, n_c, n_v, effect=0.05)["power_at_effect"]
    rng = np.random.default_rng(3)
    conv_c, conv_v = rng.binomial(n_c, 0.25, SIMS), rng.binomial(n_v, 0.20, SIMS)
    _, p = pooled_z(conv_c, n_c, conv_v, n_v)
    assert abs(np.mean((p < ALPHA) & (conv_v * n_c < conv_c * n_v)) - predicted) < 0.05


def test_sequential_test_detects_a_clearly_better_variant():
    """10% -> 7% churn over 30 daily looks: the mSPRT stops for the variant in most tests."""
    conv_c, n_c, conv_v, n_v = daily_counts(np.random.default_rng(4), RATE, 0.07)
    p = msprt_p_values(conv_c, n_c, conv_v, n_v, tau=0.02)
    wins = (p[:, -1] <= ALPHA) & (conv_v[:, -1] < conv_c[:, -1])
    assert wins.mean() > 0.8


def test_looks_start_when_both_arms_have_users() -> None:
    """A small test whose first days bring users to one arm only starts its looks on the first
    day both arms have someone (the mSPRT needs both); later looks stay cumulative."""
    import pandas as pd

    from churn.abtest.simulate import daily_counts as looks

    outcomes = pd.DataFrame(
        {"arm": ["control", "control", "variant", "variant"], "observed_day": [1, 2, 3, 5], "churned": [True, False, False, True]}
    )
    daily = looks(outcomes, 6)
    assert list(daily.day) == [3, 4, 5, 6]
    assert list(daily.n_variant) == [1, 1, 2, 2] and list(daily.n_control) == [2, 2, 2, 2]
    assert list(daily.conv_variant) == [0, 0, 1, 1]
