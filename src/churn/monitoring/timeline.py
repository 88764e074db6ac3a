"""Model performance over time: the production model scored on every matured snapshot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

if TYPE_CHECKING:
    from churn.modeling.predict import ChurnPredictor


def performance_timeline(frame: pd.DataFrame, predictor: ChurnPredictor, threshold: float, train_snapshots: list[Any],
                         min_positives: int = 3) -> pd.DataFrame:
    """One row per snapshot with matured labels: AUC, precision, recall, Brier, churn rate.

    Snapshots the model was trained on are marked (``in_training``): their scores are in-sample.
    A snapshot with fewer than ``min_positives`` churners gets NaN ranking metrics and a note
    instead of a meaningless number.
    """
    rows = []
    trained = {pd.Timestamp(s) for s in train_snapshots}
    snapshot: Any  # a groupby key
    for snapshot, group in frame[frame["label_mature"].astype(bool)].groupby("snapshot_at"):
        y = group["label"].to_numpy(int)
        p = predictor.predict_proba(group[predictor.features].to_numpy(float))
        enough = min_positives <= y.sum() < len(y)
        rows.append({
            "snapshot_at": snapshot, "vectors": len(y), "churners": int(y.sum()), "churn_rate": float(y.mean()),
            "auc": skm.roc_auc_score(y, p) if enough else np.nan,
            "precision": skm.precision_score(y, p >= threshold, zero_division=0),
            "recall": skm.recall_score(y, p >= threshold, zero_division=0) if y.sum() else np.nan,
            "brier": skm.brier_score_loss(y, p), "mean_predicted": float(p.mean()),
            "in_training": pd.Timestamp(snapshot) in trained,
            "note": "" if enough else f"only {int(y.sum())} churners: AUC not computed",
        })  # fmt: skip
    return pd.DataFrame(rows)
