"""Beta-binomial posterior: Monte Carlo against numerical integration and a closed form."""

import numpy as np
import pytest
from scipy.special import betaln

from churn.abtest import bayesian_beta_binomial
from churn.abtest.bayes import exact_prob_variant_lower

CASES = [(200, 1000, 160, 1000), (20, 100, 22, 100), (3, 10, 0, 10), (310, 3000, 290, 3100)]


def prob_b_greater_than_a(a_a: int, b_a: int, a_b: int, b_b: int) -> float:
    """Closed form for integer a_b (Evan Miller, "Formulas for Bayesian A/B Testing", 2015)."""
    i = np.arange(a_b)
    terms = betaln(a_a + i, b_a + b_b) - np.log(b_b + i) - betaln(1 + i, b_b) - betaln(a_a, b_a)
    return float(np.exp(terms).sum())


@pytest.mark.parametrize("case", CASES)
def test_monte_carlo_agrees_with_numerical_integration(case):
    """P(better) within 0.005, expected losses within 0.002 (rate units; about 5 Monte Carlo
    standard errors for the widest posterior here, 3/10 vs 0/10) of the quadrature values."""
    r = bayesian_beta_binomial(*case)
    assert abs(r.prob_variant_better - r.prob_variant_better_exact) < 0.005
    assert abs(r.expected_loss_variant - r.expected_loss_variant_exact) < 0.002
    assert abs(r.expected_loss_control - r.expected_loss_control_exact) < 0.002


@pytest.mark.parametrize("case", CASES)
def test_integration_matches_closed_form(case):
    """P(p_v < p_c) = P(control's rate above variant's), Miller's sum with B = control."""
    r = bayesian_beta_binomial(*case, draws=10)
    closed = prob_b_greater_than_a(int(r.alpha_variant), int(r.beta_variant),
                                   int(r.alpha_control), int(r.beta_control))
    assert r.prob_variant_better_exact == pytest.approx(closed, abs=1e-8)


def test_posterior_parameters_are_prior_plus_counts():
    r = bayesian_beta_binomial(30, 100, 20, 90, prior=(2, 5), draws=10)
    assert (r.alpha_control, r.beta_control, r.alpha_variant, r.beta_variant) == (32, 75, 22, 75)


def test_direction_is_explicit_lower_churn_is_better():
    """Fewer churners in the variant: P(better) is high for churn and low when higher is better."""
    lower = bayesian_beta_binomial(200, 1000, 160, 1000)
    higher = bayesian_beta_binomial(200, 1000, 160, 1000, lower_is_better=False)
    assert lower.prob_variant_better > 0.98
    assert lower.prob_variant_better_exact + higher.prob_variant_better_exact == pytest.approx(1)
    assert lower.expected_loss_variant_exact == pytest.approx(higher.expected_loss_control_exact)
    assert lower.expected_loss_variant < lower.expected_loss_control


def test_loss_difference_equals_difference_of_posterior_means():
    """E[(d)+] - E[(-d)+] = E[d]: the two exact losses are consistent with each other."""
    r = bayesian_beta_binomial(40, 400, 52, 380, draws=10)
    mean_diff = r.alpha_variant / (r.alpha_variant + r.beta_variant) - r.alpha_control / (
        r.alpha_control + r.beta_control)
    assert r.expected_loss_variant_exact - r.expected_loss_control_exact == pytest.approx(mean_diff)


def test_identical_posteriors_are_a_coin_flip():
    assert exact_prob_variant_lower(11, 91, 11, 91) == pytest.approx(0.5, abs=1e-9)


@pytest.mark.parametrize("counts", [(3, 1000, 0, 1000), (0, 1000, 0, 1000), (0, 500, 2, 800)])
def test_zero_counts_agree_with_a_direct_monte_carlo(counts):
    """P(variant better) and the losses with an arm at zero churners match an independent Monte
    Carlo from the Beta(1 + conv, 1 + n - conv) posteriors (3/1000 vs 0/1000: about 0.94)."""
    conv_c, n_c, conv_v, n_v = counts
    rng = np.random.default_rng(12345)
    draws = 400_000
    p_c = rng.beta(1 + conv_c, 1 + n_c - conv_c, draws)
    p_v = rng.beta(1 + conv_v, 1 + n_v - conv_v, draws)
    prob, se = np.mean(p_v < p_c), np.sqrt(0.25 / draws)
    r = bayesian_beta_binomial(conv_c, n_c, conv_v, n_v)
    assert r.prob_variant_better_exact == pytest.approx(prob, abs=5 * se)
    assert r.prob_variant_better == pytest.approx(prob, abs=5 * se + 5 * np.sqrt(0.25 / r.draws))
    assert r.expected_loss_variant_exact == pytest.approx(np.mean(np.maximum(p_v - p_c, 0)), rel=0.02)
    assert r.expected_loss_control_exact == pytest.approx(np.mean(np.maximum(p_c - p_v, 0)), rel=0.02)
