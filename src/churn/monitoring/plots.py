"""Figures for the monitoring report and dashboard."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def distribution_figure(reference: pd.DataFrame, current: pd.DataFrame, features: list[str],
                        drifted: dict[str, bool], columns: int = 4) -> Figure:
    """Reference vs current histogram per feature; drifted features titled in red."""
    rows = int(np.ceil(len(features) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 2.6 * rows), squeeze=False)
    for ax, feature in zip(axes.flat, features, strict=False):  # the grid may have spare axes
        ref, cur = reference[feature].dropna(), current[feature].dropna()
        bins = np.histogram_bin_edges(pd.concat([ref, cur]), bins=30)
        ax.hist(ref, bins=bins, density=True, alpha=0.5, label="reference")
        ax.hist(cur, bins=bins, density=True, alpha=0.5, label="current")
        ax.set_title(feature + ("  (DRIFT)" if drifted.get(feature) else ""),
                     color="tab:red" if drifted.get(feature) else "black", fontsize=10)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(features):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def timeline_figure(timeline: pd.DataFrame) -> Figure:
    """AUC, precision/recall and Brier score per matured snapshot; in-training points hollow."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.5))
    x = pd.to_datetime(timeline["snapshot_at"])
    for ax, columns, title in zip(axes, (["auc"], ["precision", "recall"], ["brier", "churn_rate"]),
                                  ("AUC", "precision / recall at threshold", "Brier score / churn rate"), strict=True):
        for column in columns:
            ax.plot(x, timeline[column], "o-", label=column)
        ax.axvspan(x[timeline["in_training"]].min(), x[timeline["in_training"]].max(), color="grey",
                   alpha=0.15, label="training snapshots") if timeline["in_training"].any() else None
        ax.set_title(title)
        ax.legend(fontsize=8)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    fig.tight_layout()
    return fig
