"""mSPRT: the likelihood ratio formula, always-valid p-values and their dual confidence sequence."""

import math

import numpy as np
import pandas as pd
import pytest

from churn.abtest import cumulative_counts, msprt, msprt_p_values
from churn.abtest.sequential import msprt_likelihood_ratio


def test_likelihood_ratio_matches_hand_computation():
    """100/1000 vs 70/1000, tau 0.02: V = 0.09/1000 + 0.0651/1000,
    Lambda = sqrt(V/(V+t²)) exp(t² d² / (2V(V+t²)))."""
    d, v, t2 = -0.03, 0.09 / 1000 + 0.07 * 0.93 / 1000, 0.02**2
    expected = math.sqrt(v / (v + t2)) * math.exp(t2 * d**2 / (2 * v * (v + t2)))
    assert msprt_likelihood_ratio(100, 1000, 70, 1000, 0.02) == pytest.approx(expected, rel=1e-12)


def sample_looks(p_c: float, p_v: float, days: int = 20, per_day: int = 200, seed: int = 1):
    rng = np.random.default_rng(seed)
    n = per_day * np.arange(1, days + 1)
    return (rng.binomial(per_day, p_c, days).cumsum(), n, rng.binomial(per_day, p_v, days).cumsum(), n)


def test_p_values_never_increase_and_start_at_most_one():
    p = msprt(*sample_looks(0.10, 0.10), tau=0.02).p_value
    assert np.all(np.diff(p) <= 0) and np.all(p <= 1)


def test_confidence_sequence_excludes_zero_exactly_when_p_reaches_alpha():
    """Duality of the always-valid p-value and confidence sequence, look by look."""
    r = msprt(*sample_looks(0.12, 0.08), tau=0.03)
    excludes_zero = (r.ci_low > 0) | (r.ci_high < 0)
    assert np.array_equal(excludes_zero, r.p_value <= r.alpha)
    assert r.significant and r.ci_high[-1] < 0 and r.reject_at == int(np.argmax(excludes_zero))


def test_confidence_sequence_covers_the_true_difference():
    r = msprt(*sample_looks(0.10, 0.07, seed=5), tau=0.02)
    assert np.all((r.ci_low <= -0.03) & (r.ci_high >= -0.03))


def test_no_churners_yet_means_no_evidence():
    r = msprt([0, 0, 3], [10, 20, 30], [0, 0, 1], [10, 20, 30], tau=0.02)
    assert r.p_value[0] == 1.0 and np.isinf(r.ci_high[0]) and not r.significant


def test_vectorised_p_values_equal_the_one_test_version():
    looks = [sample_looks(0.1, 0.08, seed=s) for s in range(3)]
    stacked = [np.stack([lk[i] for lk in looks]) for i in range(4)]
    many = msprt_p_values(*stacked, tau=0.02)
    for s, lk in enumerate(looks):
        assert np.allclose(many[s], msprt(*lk, tau=0.02).p_value)


def test_invalid_tau_and_empty_looks_are_rejected():
    with pytest.raises(ValueError):
        msprt([1], [10], [1], [10], tau=0.0)
    with pytest.raises(ValueError):
        msprt([0], [0], [1], [10], tau=0.02)


def test_cumulative_counts_accumulate_users_and_churners_per_arm():
    frame = pd.DataFrame({"day": [2, 1, 1, 2, 3], "arm": ["control", "variant", "control", "variant", "control"],
                          "churned": [1, 0, 1, 1, 0]})
    c = cumulative_counts(frame, "day")
    assert c.index.tolist() == [1, 2, 3]
    assert c["n_control"].tolist() == [1, 2, 3] and c["conv_control"].tolist() == [1, 2, 2]
    assert c["n_variant"].tolist() == [1, 2, 2] and c["conv_variant"].tolist() == [0, 1, 1]
