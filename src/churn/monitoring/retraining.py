"""Retraining triggers: drift, performance degradation and new labelled volume, with evidence."""

from __future__ import annotations

import pandas as pd


def retraining_triggers(drift_summary: pd.DataFrame, timeline: pd.DataFrame, reference_auc: float,
                        new_labelled: int, *, min_drifted: int, max_auc_drop: float,
                        min_new_labels: int) -> pd.DataFrame:
    """One row per trigger: fired, value, threshold and a sentence of evidence.

    Args:
        drift_summary: one row per feature with a boolean ``drifted`` and ``evidence``.
        timeline: performance per snapshot; out-of-training rows with an AUC are compared with
            ``reference_auc`` (the model's validation AUC at training time).
        new_labelled: labelled vectors that matured after the model's training data.
        min_drifted, max_auc_drop, min_new_labels: the thresholds (``env.yaml``'s ``retrain_*``,
            or the data set's ``monitoring:`` section); no defaults, so none can disagree with them.
    """
    drifted = drift_summary[drift_summary["drifted"].astype(bool)] if len(drift_summary) else drift_summary
    names = ", ".join(drifted["feature"]) if len(drifted) else "none"
    recent = timeline[~timeline["in_training"].astype(bool)].dropna(subset=["auc"]) if len(timeline) else timeline
    latest_auc = float(recent["auc"].iloc[-1]) if len(recent) else float("nan")
    drop = reference_auc - latest_auc if len(recent) else float("nan")
    rows = [
        {"trigger": "drift", "fired": len(drifted) >= min_drifted, "value": float(len(drifted)),
         "threshold": float(min_drifted), "evidence": f"{len(drifted)} drifted feature(s): {names}"},
        {"trigger": "performance_degradation", "fired": bool(drop > max_auc_drop), "value": drop,
         "threshold": max_auc_drop,
         "evidence": (f"latest out-of-training AUC {latest_auc:.3f} vs {reference_auc:.3f} at training"
                      if len(recent) else "no matured out-of-training snapshot with enough churners yet")},
        {"trigger": "new_data_volume", "fired": new_labelled >= min_new_labels, "value": float(new_labelled),
         "threshold": float(min_new_labels),
         "evidence": f"{new_labelled:,} labelled vectors matured after the training data"},
    ]  # fmt: skip
    return pd.DataFrame(rows)
