"""bootstrap_auc_ci computes each resample's AUC from draw counts: it must equal resampling the
rows and asking scikit-learn's roc_auc_score (the independent reference), ties included."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from churn.modeling.evaluate import bootstrap_auc_ci


def _reference(y: np.ndarray, s: np.ndarray, n_boot: int, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        if 0 < y[idx].sum() < len(idx):
            aucs.append(skm.roc_auc_score(y[idx], s[idx]))
    tail = (1 - level) / 2
    return float(np.quantile(aucs, tail)), float(np.quantile(aucs, 1 - tail))


@pytest.mark.parametrize("rounding", [None, 1, 0])  # continuous scores, many ties, few distinct scores
def test_equals_resampling_with_roc_auc_score(rounding: int | None) -> None:
    rng = np.random.default_rng(7)
    y = (rng.random(3_000) < 0.2).astype(int)
    s = rng.normal(size=3_000) + 0.8 * y
    if rounding is not None:
        s = np.round(s, rounding)
    ours = bootstrap_auc_ci(y, s, n_boot=150, level=0.9, seed=3)
    assert ours == pytest.approx(_reference(y, s, n_boot=150, level=0.9, seed=3), abs=1e-12)


def test_degenerate_resamples_are_skipped() -> None:
    """Two rows, one positive: a third of the resamples hold only one class and are left out."""
    y, s = np.array([0, 1]), np.array([0.2, 0.9])
    assert bootstrap_auc_ci(y, s, n_boot=200) == pytest.approx(_reference(y, s, n_boot=200), abs=1e-12)
