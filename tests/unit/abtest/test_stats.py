"""Two-proportion z-test, Welch's t-test and SRM check against hand-computed and published values."""

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from churn.abtest import pooled_z, srm_check, two_proportion_test, welch_test


def test_z_test_matches_hand_computed_textbook_example():
    """200/1000 vs 160/1000: pooled p = 0.18, z = -0.04 / sqrt(0.18*0.82*(2/1000)) = -2.3281, p = 0.0199."""
    r = two_proportion_test(200, 1000, 160, 1000)
    se = math.sqrt(0.18 * 0.82 * (1 / 1000 + 1 / 1000))
    assert r.z == pytest.approx(-0.04 / se, rel=1e-12)
    assert r.z == pytest.approx(-2.3281, abs=1e-4)
    assert r.p_value == pytest.approx(0.0199, abs=1e-4)
    assert r.difference == pytest.approx(-0.04)
    assert r.relative_lift == pytest.approx(-0.20)


def test_z_squared_equals_uncorrected_chi_square_of_the_2x2_table():
    """An independent route: z² is Pearson's chi-square without Yates' correction, same p-value."""
    r = two_proportion_test(37, 412, 58, 455)
    chi2, p, _, _ = stats.chi2_contingency([[37, 412 - 37], [58, 455 - 58]], correction=False)
    assert r.z**2 == pytest.approx(chi2, rel=1e-10)
    assert r.p_value == pytest.approx(p, rel=1e-10)


def test_newcombe_interval_matches_newcombe_1998_published_example():
    """Newcombe (1998, Stat Med 17:873), method 10, 56/70 vs 48/80: 0.0524 to 0.3339."""
    r = two_proportion_test(48, 80, 56, 70)
    assert (r.ci_low, r.ci_high) == pytest.approx((0.0524, 0.3339), abs=1e-4)


def test_newcombe_interval_equals_its_wilson_construction():
    """L = d - sqrt((p_v-l_v)² + (u_c-p_c)²), U = d + sqrt((u_v-p_v)² + (p_c-l_c)²) from Wilson limits."""
    conv_c, n_c, conv_v, n_v = 120, 1000, 95, 1000
    p_c, p_v = conv_c / n_c, conv_v / n_v
    l_c, u_c = proportion_confint(conv_c, n_c, method="wilson")
    l_v, u_v = proportion_confint(conv_v, n_v, method="wilson")
    r = two_proportion_test(conv_c, n_c, conv_v, n_v)
    assert r.ci_low == pytest.approx(p_v - p_c - math.hypot(p_v - l_v, u_c - p_c), rel=1e-9)
    assert r.ci_high == pytest.approx(p_v - p_c + math.hypot(u_v - p_v, p_c - l_c), rel=1e-9)


def test_vectorised_pooled_z_equals_the_reported_test():
    """Same z everywhere; same p wherever the z-test ran (5/1000 vs 0/900 is too small for it)."""
    conv_c, conv_v = np.array([30, 200, 5]), np.array([45, 160, 0])
    z, p = pooled_z(conv_c, 1000, conv_v, 900)
    for i in range(3):
        r = two_proportion_test(int(conv_c[i]), 1000, int(conv_v[i]), 900)
        assert z[i] == pytest.approx(r.z, rel=1e-10)
        assert r.test == ("z-test" if i < 2 else "Fisher exact test")
        if r.test == "z-test":
            assert p[i] == pytest.approx(r.p_value, rel=1e-10)


@pytest.mark.parametrize("counts", [(3, 1000, 0, 1000), (0, 1000, 3, 1000), (1, 50, 6, 60),
                                    (2, 2000, 5, 2000), (995, 1000, 1000, 1000)])
def test_small_expected_counts_use_fishers_exact_test(counts):
    """Any expected cell below 5 (3/1000 vs 0/1000 gave p = 0.083 from the z-test): the p-value
    is scipy's two-sided Fisher exact test on the same 2x2 table, and the result says so."""
    conv_c, n_c, conv_v, n_v = counts
    r = two_proportion_test(*counts)
    expected = stats.contingency.expected_freq([[conv_v, n_v - conv_v], [conv_c, n_c - conv_c]])
    assert expected.min() < 5 and r.min_expected == pytest.approx(expected.min())
    fisher = stats.fisher_exact([[conv_v, n_v - conv_v], [conv_c, n_c - conv_c]]).pvalue
    assert r.test == "Fisher exact test"
    assert r.p_value == pytest.approx(fisher, rel=1e-12)


def test_three_versus_zero_churners_is_not_close_to_significant():
    """3/1000 vs 0/1000: Fisher's p = 0.25 (exactly 2 * C(1000,3)/C(2000,3) * ... by scipy), far
    from the z-test's 0.083."""
    r = two_proportion_test(3, 1000, 0, 1000)
    assert r.p_value == pytest.approx(0.25, abs=0.001)
    assert r.p_value > 0.2


def test_large_expected_counts_keep_the_z_test():
    """With every expected cell >= 5 the z-test runs and is named."""
    r = two_proportion_test(10, 1000, 4, 1000)
    assert r.min_expected >= 5 and r.test == "z-test"


def test_no_churn_in_either_arm_gives_no_evidence():
    r = two_proportion_test(0, 100, 0, 120)
    assert (r.z, r.p_value) == (0.0, 1.0)


@pytest.mark.parametrize("args", [(5, 0, 1, 10), (11, 10, 1, 10), (-1, 10, 1, 10)])
def test_impossible_counts_are_rejected(args):
    with pytest.raises(ValueError):
        two_proportion_test(*args)


def test_welch_matches_hand_computed_t_and_satterthwaite_df():
    """control [1,2,3,4], variant [2,5,6,9]: s²/n = 5/12 and 25/12, t = 3/sqrt(2.5), df = 54/13."""
    r = welch_test([1, 2, 3, 4], [2, 5, 6, 9])
    assert r.difference == 3.0
    assert r.t == pytest.approx(3 / math.sqrt(2.5), rel=1e-12)
    assert r.df == pytest.approx(54 / 13, rel=1e-12)
    assert r.p_value == pytest.approx(2 * stats.t.sf(3 / math.sqrt(2.5), 54 / 13), rel=1e-10)
    half = stats.t.ppf(0.975, 54 / 13) * math.sqrt(2.5)
    assert (r.ci_low, r.ci_high) == pytest.approx((3 - half, 3 + half), rel=1e-10)


def test_welch_agrees_with_scipy_on_unequal_variances_and_sizes():
    rng = np.random.default_rng(3)
    control, variant = rng.normal(10, 2, 300), rng.normal(10.4, 5, 120)
    ref = stats.ttest_ind(variant, control, equal_var=False)
    r = welch_test(control, variant)
    assert (r.t, r.df, r.p_value) == pytest.approx((ref.statistic, ref.df, ref.pvalue), rel=1e-12)


def test_srm_flags_a_clearly_skewed_split():
    """5,000 vs 5,400 on a 50/50 test: chi² = 2 * 200² / 5,200 = 15.38, p = 8.8e-5 < 0.001."""
    r = srm_check(5000, 5400, 0.5)
    assert r.chi2 == pytest.approx(2 * 200**2 / 5200)
    assert r.mismatch and r.p_value < 1e-4


@pytest.mark.parametrize("n_c, n_v, split", [(5010, 4990, 0.5), (8000, 2000, 0.2), (10000, 10400, 0.5)])
def test_srm_passes_fair_splits_and_mild_imbalance(n_c, n_v, split):
    """Fair splits pass; 10,000 vs 10,400 (p = 0.005) is not below the 0.001 SRM threshold."""
    assert not srm_check(n_c, n_v, split).mismatch


def test_srm_rejects_a_split_outside_the_unit_interval():
    with pytest.raises(ValueError):
        srm_check(10, 10, 1.0)
