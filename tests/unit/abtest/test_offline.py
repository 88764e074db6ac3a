"""Offline champion/challenger: DeLong's paired AUC test against a paired bootstrap, the paired
log-loss test against a paired t-test, and the decision rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from churn.abtest.offline import compare_offline, delong_paired, paired_log_loss, row_log_loss


def _scores(n: int = 3000, seed: int = 0, signal_b: float = 1.3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=n) < 0.2).astype(int)
    shared = rng.normal(size=n)
    a = 1 / (1 + np.exp(-(1.0 * y + shared + rng.normal(size=n))))
    b = 1 / (1 + np.exp(-(signal_b * y + shared + rng.normal(size=n))))
    return y, a, b


def _bootstrap_aucs(y: np.ndarray, scores: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The AUC of every bootstrap resample at once (Mann-Whitney with each row's draw counts as
    weights). Exact when the scores have no ties: copies of one row share its label, so no
    positive ties a negative."""
    order = np.argsort(scores)
    weights = counts[:, order]
    pos = weights * y[order]
    neg = weights - pos
    below = np.cumsum(neg, axis=1) - neg  # negative weight strictly below each row's score
    return (pos * below).sum(axis=1) / (pos.sum(axis=1) * neg.sum(axis=1))


def test_delong_matches_sklearn_aucs_and_a_paired_bootstrap() -> None:
    y, a, b = _scores()
    result = delong_paired(y, a, b)
    assert result["auc_control"] == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    assert result["auc_variant"] == pytest.approx(roc_auc_score(y, b), abs=1e-12)
    n, draws = len(y), 800
    assert len(np.unique(a)) == len(np.unique(b)) == n  # no ties: _bootstrap_aucs is exact
    rows = np.random.default_rng(1).integers(0, n, (draws, n))  # paired: the same rows for both models
    counts = np.bincount((rows + n * np.arange(draws)[:, None]).ravel(), minlength=draws * n).reshape(draws, n)
    diffs = _bootstrap_aucs(y, b, counts) - _bootstrap_aucs(y, a, counts)
    for i in range(3):  # the vectorized resample AUCs are sklearn's
        expected = roc_auc_score(y[rows[i]], b[rows[i]]) - roc_auc_score(y[rows[i]], a[rows[i]])
        assert diffs[i] == pytest.approx(expected, abs=1e-12)
    assert result["auc_diff_se"] == pytest.approx(np.std(diffs, ddof=1), rel=0.12)
    assert result["auc_diff"] == pytest.approx(np.mean(diffs), abs=0.004)


def test_delong_false_positive_rate_is_near_alpha_for_equal_models() -> None:
    """Two models of equal strength: the paired test rejects about 5% of the time."""
    rejections = sum(delong_paired(*_scores(n=600, seed=s, signal_b=1.0))["auc_p_value"] < 0.05 for s in range(200))
    assert rejections <= 20  # expected 10; binomial(200, 0.05) exceeds 20 with p < 0.002


def test_paired_log_loss_equals_a_paired_t_test_on_row_losses() -> None:
    y, a, b = _scores(n=800)
    result = paired_log_loss(y, a, b)
    t = stats.ttest_rel(row_log_loss(y, b), row_log_loss(y, a))
    assert result["log_loss_diff"] == pytest.approx(row_log_loss(y, b).mean() - row_log_loss(y, a).mean())
    assert result["log_loss_p_value"] == pytest.approx(t.pvalue, rel=0.02)


def test_a_clearly_better_variant_is_promoted_and_an_equal_one_is_not() -> None:
    y, a, b = _scores(signal_b=2.0)
    assert compare_offline(y, a, b, ["2024-01-01"]).decision == "promote"
    y, a, b = _scores(signal_b=1.0, seed=4)
    kept = compare_offline(y, a, b, ["2024-01-01"])
    assert kept.decision == "keep_control" and "not significantly higher" in kept.reasons[0]


def test_too_few_churners_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2 positives"):
        delong_paired(np.array([1, 0, 0]), np.array([0.2, 0.1, 0.3]), np.array([0.3, 0.2, 0.1]))


def _memorizer_case(n_users: int = 20_000, horizon: int = 30) -> tuple[pd.DataFrame, pd.Timestamp]:
    """Cancellation-rule rows at weekly snapshots and a candidate that memorised its training
    labels: its score at any later snapshot is the user's label at its last training snapshot T.
    Control scores noise. Returns (rows with both scores, T)."""
    rng = np.random.default_rng(7)
    start = pd.Timestamp("2024-01-01")
    churn = start + pd.to_timedelta(rng.uniform(0, 365, n_users), unit="D")
    churn = churn.where(rng.uniform(size=n_users) < 0.5)  # half never churn
    last_train = start + pd.Timedelta(days=200)
    h = pd.Timedelta(days=horizon)
    memorised = ((churn >= last_train) & (churn < last_train + h)).astype(float)
    rows = []
    for week in range(6):  # T, T+7, ..., T+35: every label matured
        t = last_train + pd.Timedelta(days=7 * week)
        alive = churn.isna() | (churn >= t)
        label = (churn >= t) & (churn < t + h)
        rows.append(
            pd.DataFrame(
                {
                    "snapshot_at": t,
                    "label": label[alive].astype(int),
                    "label_mature": True,
                    "control": rng.uniform(size=int(alive.sum())),
                    "variant": memorised[alive] + rng.uniform(0, 1e-6, int(alive.sum())),
                }
            )
        )
    return pd.concat(rows, ignore_index=True), last_train


def test_evaluation_rows_are_purged_by_the_horizon_so_memorised_labels_do_not_leak() -> None:
    """Without the purge the snapshots just after training share churns with the training labels
    and a candidate that memorised them looks better than it is; with it, it scores chance."""
    from churn.abtest.offline import evaluation_snapshots

    frame, last_train = _memorizer_case()
    purged = evaluation_snapshots(frame, [last_train], n_latest=4, purge_days=30)
    assert purged == [last_train + pd.Timedelta(days=35)]  # the only one >= T + 30 days
    unpurged = evaluation_snapshots(frame, [last_train], n_latest=4)
    assert unpurged[0] == last_train + pd.Timedelta(days=14)

    def auc_of_variant(snapshots: list[pd.Timestamp]) -> float:
        rows = frame[frame.snapshot_at.isin(snapshots)]
        return compare_offline(
            rows.label.to_numpy(), rows.control.to_numpy(), rows.variant.to_numpy(), snapshots
        ).auc_variant

    assert auc_of_variant(unpurged) > 0.6  # the leak: outcomes it has seen
    assert frame[frame.snapshot_at.isin(purged)].variant.max() < 1e-5  # no seen outcome left
    assert auc_of_variant(purged) == pytest.approx(0.5, abs=0.03)  # chance, within its noise
    with pytest.raises(ValueError, match="purge_days"):
        evaluation_snapshots(frame, [last_train], purge_days=-1)
