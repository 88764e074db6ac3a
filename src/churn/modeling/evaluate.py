"""Model evaluation: the metrics a sceptical reader asks for, from labels and scores."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve


@dataclass(frozen=True)
class EvaluationReport:
    """Ranking, classification (at ``threshold``) and probability-quality metrics."""

    n: int
    positives: int
    auc: float
    pr_auc: float
    threshold: float
    precision: float
    recall: float
    f1: float
    brier: float
    top_decile_lift: float

    def as_dict(self) -> dict[str, float]:
        return {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in asdict(self).items()}


def max_f1_threshold(y_true: np.ndarray, scores: np.ndarray) -> float:
    """The score threshold with the highest F1 (chosen on training data, never validation)."""
    precision, recall, thresholds = skm.precision_recall_curve(y_true, scores)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(precision),
                   where=(precision + recall) > 0)
    return float(thresholds[int(np.argmax(f1[:-1]))])


def top_decile_lift(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Churn rate among the 10% highest scores divided by the overall churn rate."""
    y_true = np.asarray(y_true, dtype=float)
    k = max(1, int(np.ceil(0.1 * len(y_true))))
    top = np.argsort(-np.asarray(scores), kind="stable")[:k]
    base = y_true.mean()
    return float(y_true[top].mean() / base) if base > 0 else float("nan")


def evaluate(y_true: np.ndarray, scores: np.ndarray, threshold: float, probabilities: bool = True) -> EvaluationReport:
    """All metrics for one set of predictions.

    Args:
        y_true: 0/1 labels.
        scores: predicted probabilities (or any risk score when ``probabilities`` is False,
            in which case the Brier score is undefined and reported as NaN).
        threshold: scores >= threshold are predicted churners.
    """
    y_true = np.asarray(y_true, dtype=int)
    scores = np.asarray(scores, dtype=float)
    if len(np.unique(y_true)) < 2:
        raise ValueError("evaluation needs both churners and non-churners in the labels")
    predicted = scores >= threshold
    return EvaluationReport(
        n=len(y_true), positives=int(y_true.sum()),
        auc=skm.roc_auc_score(y_true, scores), pr_auc=skm.average_precision_score(y_true, scores),
        threshold=float(threshold),
        precision=skm.precision_score(y_true, predicted, zero_division=0),
        recall=skm.recall_score(y_true, predicted, zero_division=0),
        f1=skm.f1_score(y_true, predicted, zero_division=0),
        brier=skm.brier_score_loss(y_true, scores) if probabilities else float("nan"),
        top_decile_lift=top_decile_lift(y_true, scores),
    )  # fmt: skip


def calibration_table(y_true: np.ndarray, probabilities: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Observed churn rate vs mean predicted probability per quantile bin."""
    observed, predicted = calibration_curve(y_true, probabilities, n_bins=n_bins, strategy="quantile")
    return pd.DataFrame({"mean_predicted": predicted, "observed_rate": observed})


def bootstrap_auc_ci(
    y_true: ArrayLike, scores: ArrayLike, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the AUC (resampling rows; degenerate resamples skipped).

    Each resample's AUC is computed from how many times it drew each row (the Mann-Whitney
    statistic over the distinct scores, ties counting one half: what ``roc_auc_score`` gives),
    in O(rows) with the scores ranked once, instead of re-sorting every resample (1,000
    ``roc_auc_score`` calls took minutes at 100,000 predictions)."""
    y, s = np.asarray(y_true, dtype=int), np.asarray(scores, dtype=float)
    rng = np.random.default_rng(seed)
    _, level_of = np.unique(s, return_inverse=True)  # each row's distinct-score rank
    n_levels = int(level_of.max()) + 1 if len(s) else 0
    positive = y == 1
    aucs = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        drawn = np.bincount(idx, minlength=len(y))
        pos = np.bincount(level_of, weights=drawn * positive, minlength=n_levels)
        neg = np.bincount(level_of, weights=drawn * ~positive, minlength=n_levels)
        n_pos, n_neg = pos.sum(), neg.sum()
        if n_pos > 0 and n_neg > 0:
            below = np.cumsum(neg) - neg  # negatives with a strictly lower score
            aucs.append(float((pos * (below + 0.5 * neg)).sum() / (n_pos * n_neg)))
    tail = (1 - level) / 2
    return float(np.quantile(aucs, tail)), float(np.quantile(aucs, 1 - tail))


def wilson_interval(successes: np.ndarray, n: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a proportion (well-behaved at 0 of n, unlike the normal one)."""
    from scipy.stats import norm

    k, n = np.asarray(successes, dtype=float), np.asarray(n, dtype=float)
    z = norm.ppf(1 - (1 - level) / 2)
    p = np.divide(k, n, out=np.zeros_like(k), where=n > 0)
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def decile_table(y_true: np.ndarray, scores: np.ndarray, n_groups: int = 10) -> pd.DataFrame:
    """Lift and gains by score decile: the view a retention team plans with.

    Users are ranked by score (highest first, ties in input order) and cut into ``n_groups``
    groups as equal as possible (the first ones one larger when the count does not divide).

    Returns:
        One row per group: ``users``, ``churners``, ``churn_rate`` with its Wilson 95% interval
        (``rate_low``, ``rate_high``), ``min_score``/``max_score``, ``lift`` (the group's churn
        rate over the overall one), ``cum_users_share`` (share of users contacted down to this
        group), ``gain`` (share of all churners among them) and ``cum_lift`` (gain over share).
    """
    y = np.asarray(y_true, dtype=int)
    s = np.asarray(scores, dtype=float)
    if len(y) < n_groups:
        raise ValueError(f"a decile table needs at least {n_groups} rows, got {len(y)}")
    order = np.argsort(-s, kind="stable")
    groups = np.array_split(order, n_groups)
    users = np.array([len(g) for g in groups])
    churners = np.array([int(y[g].sum()) for g in groups])
    low, high = wilson_interval(churners, users)
    base = y.mean()
    table = pd.DataFrame({
        "decile": np.arange(1, n_groups + 1), "users": users, "churners": churners,
        "churn_rate": churners / users, "rate_low": low, "rate_high": high,
        "min_score": [s[g].min() for g in groups], "max_score": [s[g].max() for g in groups],
    })  # fmt: skip
    table["lift"] = table["churn_rate"] / base if base > 0 else np.nan
    table["cum_users_share"] = users.cumsum() / users.sum()
    table["gain"] = churners.cumsum() / churners.sum() if churners.sum() > 0 else np.nan
    table["cum_lift"] = table["gain"] / table["cum_users_share"]
    return table.set_index("decile")
