"""Power, MDE and sample size against statsmodels and the textbook formula."""

import math

import pytest
from scipy.stats import norm
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from churn.abtest import power_analysis, power_at, required_sample_size


def fleiss_sample_size(p1: float, p2: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Per-arm n, Fleiss, Levin & Paik (2003) eq. 4.14 without continuity correction."""
    za, zb = norm.ppf(1 - alpha / 2), norm.ppf(power)
    pbar = (p1 + p2) / 2
    top = za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return top**2 / (p1 - p2) ** 2


def test_textbook_sample_size_ten_versus_eight_percent():
    """p = 0.10 vs 0.08, alpha 0.05, power 0.8: 3,205 per arm (statsmodels); Fleiss gives 3,213."""
    assert required_sample_size(0.10, 0.02) == (3205, 3205)
    assert fleiss_sample_size(0.10, 0.08) == pytest.approx(3213, abs=1)
    assert required_sample_size(0.10, 0.02)[0] == pytest.approx(fleiss_sample_size(0.10, 0.08), rel=0.01)


def test_unequal_allocation_scales_the_variant_arm():
    n_c, n_v = required_sample_size(0.10, 0.02, ratio=2.0)
    ref = NormalIndPower().solve_power(proportion_effectsize(0.10, 0.08), alpha=0.05, power=0.8, ratio=2.0)
    assert n_c == math.ceil(ref) and n_v == math.ceil(2 * ref)


@pytest.mark.parametrize("p, effect, n_c, n_v", [(0.10, 0.02, 2000, 2000), (0.25, 0.05, 500, 1500)])
def test_power_at_effect_matches_normal_ind_power(p, effect, n_c, n_v):
    ref = NormalIndPower().power(abs(proportion_effectsize(p, p - effect)), nobs1=n_c, alpha=0.05,
                                 ratio=n_v / n_c)
    assert power_at(p, effect, n_c, n_v) == pytest.approx(ref, rel=1e-10)
    assert power_analysis(p, n_c, n_v, effect=effect)["power_at_effect"] == pytest.approx(ref, rel=1e-10)


def test_mde_round_trips_with_required_sample_size():
    """At the sample size required for a 2 pp MDE, the detectable effect is 2 pp at 80% power."""
    n, _ = required_sample_size(0.10, 0.02)
    r = power_analysis(0.10, n, n)
    assert r["mde_absolute"] == pytest.approx(0.02, abs=2e-5)
    assert r["mde_relative"] == pytest.approx(0.20, abs=2e-4)
    assert r["power_at_effect"] is None
    assert power_at(0.10, r["mde_absolute"], n, n) == pytest.approx(0.8, abs=1e-4)


def test_smaller_samples_detect_only_larger_effects():
    small, large = power_analysis(0.10, 500, 500), power_analysis(0.10, 5000, 5000)
    assert small["mde_absolute"] > large["mde_absolute"] > 0


def test_increase_direction_gives_a_higher_variant_rate():
    r = power_analysis(0.10, 3205, 3205, direction="increase")
    assert r["p_variant_at_mde"] > 0.10


@pytest.mark.parametrize("kwargs", [dict(p_control=0.0, mde=0.01), dict(p_control=0.1, mde=0.2),
                                    dict(p_control=0.1, mde=-0.01)])
def test_impossible_effects_are_rejected(kwargs):
    with pytest.raises(ValueError):
        required_sample_size(**kwargs)
