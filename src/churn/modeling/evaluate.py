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
    """Percentile bootstrap interval of the AUC (resampling rows; degenerate resamples skipped)."""
    y, s = np.asarray(y_true, dtype=int), np.asarray(scores, dtype=float)
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        if 0 < y[idx].sum() < len(idx):
            aucs.append(skm.roc_auc_score(y[idx], s[idx]))
    tail = (1 - level) / 2
    return float(np.quantile(aucs, tail)), float(np.quantile(aucs, 1 - tail))
