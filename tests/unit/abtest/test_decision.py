"""The decision rule: each outcome, and a readable sentence for each check."""

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from churn.abtest import Guardrail, analyse, decide, model_guardrails, msprt

GOOD_GUARDRAILS = [Guardrail("AUC", 0.80, 0.805, 0.01), Guardrail("Brier score", 0.080, 0.081, 0.005, False)]


def test_significant_powered_clean_win_is_promoted():
    r = analyse(400, 4000, 310, 4000, expected_split=0.5, mde=0.02)
    d = decide(r, GOOD_GUARDRAILS)
    assert d.action == "promote"
    assert all(isinstance(s, str) and s.endswith(".") for s in d.reasons)
    assert any("Sample ratio OK" in s for s in d.reasons)


def test_sample_ratio_mismatch_makes_any_result_inconclusive():
    r = analyse(400, 4000, 330, 4600, expected_split=0.5, mde=0.02)
    d = decide(r, GOOD_GUARDRAILS)
    assert d.action == "inconclusive" and "does not match" in d.reasons[0]


def test_failed_model_guardrail_keeps_control():
    r = analyse(400, 4000, 310, 4000, expected_split=0.5, mde=0.02)
    d = decide(r, [Guardrail("AUC", 0.80, 0.77, 0.01)])
    assert d.action == "keep_control" and "AUC" in d.reasons[0]


def test_underpowered_test_is_inconclusive_and_names_the_detectable_effect():
    """Even a significant result is not promoted at 20% power; the reason names the feasible MDE."""
    r = analyse(50, 300, 25, 300, expected_split=0.5, mde=0.02)
    assert r.fixed.p_value < 0.05
    d = decide(r, GOOD_GUARDRAILS)
    assert d.action == "inconclusive"
    assert any("could only detect an effect of" in s for s in d.reasons)


def test_powered_null_result_keeps_control():
    d = decide(analyse(400, 4000, 395, 4000, expected_split=0.5, mde=0.02), GOOD_GUARDRAILS)
    assert d.action == "keep_control" and "no significant" in d.reasons[0]


def test_variant_with_more_churn_keeps_control():
    d = decide(analyse(400, 4000, 500, 4000, expected_split=0.5, mde=0.02), GOOD_GUARDRAILS)
    assert d.action == "keep_control" and "churn significantly more" in d.reasons[0]


def test_fixed_test_read_before_planned_end_is_inconclusive():
    r = analyse(400, 4000, 310, 4000, expected_split=0.5, mde=0.02, at_planned_end=False)
    assert decide(r, GOOD_GUARDRAILS).action == "inconclusive"


def test_sequential_significance_allows_promotion_before_planned_end():
    n = 400 * np.arange(1, 11)
    seq = msprt(0.10 * n, n, 0.075 * n, n, tau=0.02)
    r = analyse(400, 4000, 300, 4000, expected_split=0.5, mde=0.02, at_planned_end=False, sequential=seq)
    d = decide(r, GOOD_GUARDRAILS)
    assert d.action == "promote" and any("mSPRT" in s for s in d.reasons)


def test_model_guardrails_compute_auc_and_brier_on_matured_labels():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    good, noisy = np.clip(0.3 + 0.4 * y + rng.normal(0, 0.1, 500), 0, 1), rng.random(500)
    auc, brier = model_guardrails(y, good, y, noisy)
    assert auc.control == pytest.approx(roc_auc_score(y, good)) and not auc.holds
    assert brier.variant == pytest.approx(brier_score_loss(y, noisy)) and not brier.holds
    assert all(g.holds for g in model_guardrails(y, good, y, good))


def test_guardrail_margin_is_inclusive_despite_float_rounding():
    assert Guardrail("AUC", 0.80, 0.79, 0.01).holds


def _sequential_sentence(reasons: list[str]) -> str:
    return next(s for s in reasons if s.startswith("Sequential mSPRT"))


def test_sequential_text_names_alpha_and_the_number_of_looks():
    """Never significant: "did not reach alpha = 0.05 in 30 looks" (it read "never reached alpha
    of 30"); significant: "reached alpha = 0.05 first at look k of 10"."""
    n = 100 * np.arange(1, 31)
    flat = msprt(0.01 * n, n, 0.01 * n, n, tau=0.01)
    text = _sequential_sentence(decide(analyse(30, 3000, 30, 3000, expected_split=0.5, mde=0.005,
                                               sequential=flat)).reasons)
    assert "did not reach alpha = 0.05 in 30 looks;" in text
    assert "never reached alpha of" not in text and "always-valid p-value 1," in text
    n = 400 * np.arange(1, 11)
    seq = msprt(0.10 * n, n, 0.075 * n, n, tau=0.02)
    text = _sequential_sentence(decide(analyse(400, 4000, 300, 4000, expected_split=0.5, mde=0.02,
                                               sequential=seq)).reasons)
    assert f"reached alpha = 0.05 first at look {seq.reject_at + 1} of 10;" in text


def test_fixed_text_names_the_test_that_ran():
    """Small counts say Fisher's exact test ran and why; large counts say z-test."""
    small = decide(analyse(3, 1000, 0, 1000, expected_split=0.5, mde=0.002)).reasons
    assert any(s.startswith("Fixed-horizon Fisher exact test (smallest expected cell 1.5 < 5, so exact)")
               for s in small)
    large = decide(analyse(400, 4000, 310, 4000, expected_split=0.5, mde=0.02)).reasons
    assert any(s.startswith("Fixed-horizon z-test: churn 10.00% (control)") for s in large)
