"""Drift statistics agree with scipy/statsmodels and hand computations, and survive bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from churn.monitoring import REPORT_COLUMNS, detection_delay, drift_report, feature_drift_summary
from churn.monitoring.drift import holm, psi


@pytest.fixture(scope="module")
def windows() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fixed samples: 'a' shifts by half an SD, 'b'..'f' do not, 'plan' changes its mix."""
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({c: rng.normal(size=1000) for c in "abcdef"})
    cur = pd.DataFrame({c: rng.normal(size=800) for c in "abcdef"})
    cur["a"] += 0.5
    ref["plan"] = rng.choice(["basic", "pro", "enterprise"], 1000, p=[0.6, 0.3, 0.1])
    cur["plan"] = rng.choice(["basic", "pro", "enterprise"], 800, p=[0.45, 0.45, 0.1])
    return ref, cur


def _row(report: pd.DataFrame, feature: str, test: str) -> pd.Series:
    return report.set_index(["feature", "test"]).loc[(feature, test)]


def test_statistics_equal_scipy(windows: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """KS and Welch statistics/p-values are scipy's; Cohen's d and Cramer's V by hand."""
    ref, cur = windows
    report = drift_report(ref, cur, list("abcdef") + ["plan"])
    assert list(report.columns) == REPORT_COLUMNS
    ks, welch = stats.ks_2samp(ref.a, cur.a), stats.ttest_ind(cur.a, ref.a, equal_var=False)
    assert _row(report, "a", "ks")[["statistic", "p_value"]].tolist() == pytest.approx(
        [ks.statistic, ks.pvalue])
    assert _row(report, "a", "welch_t")[["statistic", "p_value"]].tolist() == pytest.approx(
        [welch.statistic, welch.pvalue])
    d = (cur.a.mean() - ref.a.mean()) / np.sqrt((ref.a.var() + cur.a.var()) / 2)
    assert _row(report, "a", "welch_t").effect_size == pytest.approx(d)
    table = pd.crosstab(pd.concat([ref.plan, cur.plan]), np.repeat([0, 1], [1000, 800]))
    chi2 = stats.chi2_contingency(table, correction=False)[0]
    assert _row(report, "plan", "chi2").statistic == pytest.approx(chi2)
    assert _row(report, "plan", "chi2").effect_size == pytest.approx(np.sqrt(chi2 / 1800))


def test_psi_equals_hand_computed_value() -> None:
    """Reference 0..99 has 10 per decile bin; current puts 20 in bin 1, none in bin 2, 10 in others.

    PSI = (0.2 - 0.1) ln(0.2 / 0.1) + (1e-4 - 0.1) ln(1e-4 / 0.1) = 0.1 ln 2 + 0.0999 ln 1000.
    """
    current = np.concatenate([np.full(20, 5.0), np.arange(25.0, 100.0, 10.0).repeat(10)])
    value, bins = psi(np.arange(100.0), current)
    assert bins == 10
    assert value == pytest.approx(0.1 * np.log(2) + 0.0999 * np.log(1000), rel=1e-12)
    assert psi(np.arange(100.0), np.arange(100.0))[0] == 0.0


def test_psi_merges_tied_quantile_bins() -> None:
    """A mostly-zero count feature gets fewer bins instead of empty duplicates."""
    reference = np.array([0.0] * 80 + [1.0] * 15 + [2.0] * 5)
    value, bins = psi(reference, np.array([0.0] * 50 + [1.0] * 30 + [2.0] * 20))
    assert bins == 3  # (-inf, 0], (0, 1], (1, inf): the deciles are only 0 and 1
    shares = np.array([[0.8, 0.15, 0.05], [0.5, 0.3, 0.2]])
    assert value == pytest.approx(np.sum((shares[1] - shares[0]) * np.log(shares[1] / shares[0])))


@pytest.mark.parametrize("correction", ["holm", "fdr_bh"])
def test_adjusted_p_values_match_statsmodels(windows: tuple[pd.DataFrame, pd.DataFrame],
                                             correction: str) -> None:
    """All tested (feature, test) p-values form one family, adjusted exactly as statsmodels does
    (adjusting each test separately left the whole decision's false alarm rate above alpha)."""
    report = drift_report(*windows, list("abcdef"), correction=correction)
    family = report[report.status == "ok"]
    assert family.test.nunique() > 1
    expected = multipletests(family.p_value, method=correction)[1]
    assert family.p_adjusted.to_numpy() == pytest.approx(expected)


def test_holm_equals_statsmodels_and_hand_computation() -> None:
    """Holm on (0.01, 0.04, 0.03): step-down multipliers 3, 2, 1 made monotone; ties, 1-capping."""
    assert holm(np.array([0.01, 0.04, 0.03])) == pytest.approx([0.03, 0.06, 0.06])
    p = np.random.default_rng(2).uniform(0, 0.2, 40) ** 2
    p[[3, 7]] = p[5]
    assert holm(p) == pytest.approx(multipletests(p, method="holm")[1], abs=0, rel=1e-12)
    assert holm(np.array([0.5, 0.9])).max() == 1.0


def test_only_the_shifted_features_are_flagged(windows: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """A half-SD shift and a changed category mix drift; independent noise does not."""
    summary = feature_drift_summary(drift_report(*windows, list("abcdef") + ["plan"]))
    assert summary.set_index("feature").drifted.to_dict() == {
        "a": True, "plan": True, **dict.fromkeys("bcdef", False)}
    assert summary.feature.iloc[:2].tolist() in (["a", "plan"], ["plan", "a"])


def test_significant_but_tiny_shift_is_not_an_alarm() -> None:
    """With 50k rows a 0.03-SD shift is significant, but below every minimum effect."""
    rng = np.random.default_rng(1)
    ref, cur = pd.DataFrame({"x": rng.normal(size=50_000)}), pd.DataFrame(
        {"x": rng.normal(0.03, size=50_000)})
    report = drift_report(ref, cur, ["x"])
    assert (report.p_adjusted[report.test != "psi"] < 0.05).all()
    assert not report.drifted.any()
    assert report.note.str.contains("too small").any()


def test_small_windows_do_not_raise_psi_false_alarms() -> None:
    """PSI of two 40-row samples of one distribution is inflated; its bins' test keeps it quiet."""
    rng = np.random.default_rng(3)
    ref, cur = pd.DataFrame({"x": rng.normal(size=40)}), pd.DataFrame({"x": rng.normal(size=40)})
    row = _row(drift_report(ref, cur, ["x"]), "x", "psi")
    assert row.effect_size >= 0.2 and not row.drifted


def test_bad_input_gets_a_status_and_note_not_an_alarm() -> None:
    """Few rows, constants, all-NaN or infinite columns, missing columns: explained, no crash."""
    ref = pd.DataFrame({"ok": np.arange(100.0), "few": [1.0] * 10 + [np.nan] * 90, "const": 3.0,
                        "nan": np.nan, "cur_nan": np.arange(100.0), "inf": np.inf})
    cur = ref.assign(few=1.0, cur_nan=np.nan).drop(columns="inf")
    report = drift_report(ref, cur, ["ok", "few", "const", "nan", "cur_nan", "inf", "gone"])
    status = report.groupby("feature").status.first().to_dict()
    assert status == {"ok": "ok", "few": "too_few_rows", "const": "constant",
                      "nan": "missing_reference", "cur_nan": "too_few_rows",
                      "inf": "missing_reference", "gone": "missing_reference"}
    assert not report.drifted.any()
    assert report.note[report.status != "ok"].str.len().gt(10).all()
    assert report.status.notna().all() and report.drifted.dtype == bool


def test_missing_reference_window_marks_every_feature() -> None:
    """No reference window at all (None or empty): every row says so and nothing drifts."""
    cur = pd.DataFrame({"x": np.arange(50.0), "plan": ["pro"] * 50})
    for reference in (None, pd.DataFrame()):
        report = drift_report(reference, cur, ["x", "plan"])
        assert len(report) == 5 and (report.status == "missing_reference").all()
        assert not report.drifted.any()


def test_a_constant_that_changes_value_is_drift() -> None:
    """Constant in both windows but at another value: flagged, with the values in the note."""
    report = drift_report(pd.DataFrame({"x": [0.0] * 40}), pd.DataFrame({"x": [1.0] * 40}), ["x"])
    assert report.drifted.all() and (report.status == "constant").all()
    assert "from 0.0 to 1.0" in report.note.iloc[0]


def test_unknown_correction_is_rejected(windows: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    with pytest.raises(ValueError, match="correction"):
        drift_report(*windows, ["a"], correction="bonferroni")


def test_detection_delay_finds_first_flagged_snapshot() -> None:
    """A feature that shifts from the third weekly snapshot on is first flagged 21 days in."""
    rng = np.random.default_rng(5)
    start = pd.Timestamp("2025-10-01")
    ref = pd.DataFrame({"x": rng.normal(size=300), "y": rng.normal(size=300)})
    snaps = {start + pd.Timedelta(days=7 * k): pd.DataFrame(
        {"x": rng.normal(1.0 if k >= 3 else 0.0, size=300), "y": rng.normal(size=300)})
        for k in range(1, 6)}
    delay = detection_delay(ref, snaps, ["x", "y"], start).set_index("feature")
    assert delay.loc["x", "delay_days"] == 21 and delay.loc["x", "n_flagged"] == 3
    assert np.isnan(delay.loc["y", "delay_days"]) and pd.isna(delay.loc["y", "first_flagged"])
