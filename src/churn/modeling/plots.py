"""Figures for the training report: ROC, precision-recall and calibration, model vs baseline."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from churn.modeling.evaluate import calibration_table


def evaluation_figure(predictions: pd.DataFrame, score_columns: dict[str, str], n_bins: int = 8) -> Figure:
    """Three panels for ``predictions`` (label + one column per scorer named in ``score_columns``)."""
    fig, (roc_ax, pr_ax, cal_ax) = plt.subplots(1, 3, figsize=(15, 4.2))
    y = predictions["label"].to_numpy(int)
    for label, column in score_columns.items():
        fpr, tpr, _ = roc_curve(y, predictions[column])
        roc_ax.plot(fpr, tpr, label=label)
        precision, recall, _ = precision_recall_curve(y, predictions[column])
        pr_ax.plot(recall, precision, label=label)
    roc_ax.plot([0, 1], [0, 1], "k:", lw=1, label="chance")
    pr_ax.axhline(y.mean(), color="k", ls=":", lw=1, label=f"base rate {y.mean():.3f}")
    _decorate(roc_ax, "ROC (validation snapshots)", "false positive rate", "true positive rate")
    _decorate(pr_ax, "precision-recall", "recall", "precision")
    table = calibration_table(y, predictions[next(iter(score_columns.values()))].to_numpy(), n_bins)
    top = max(table.max().max(), 1e-3) * 1.1
    cal_ax.plot(table["mean_predicted"], table["observed_rate"], "o-", label="model (quantile bins)")
    cal_ax.plot([0, top], [0, top], "k:", lw=1, label="perfect calibration")
    _decorate(cal_ax, "calibration", "mean predicted probability", "observed churn rate")
    fig.tight_layout()
    return fig


def coefficient_figure(features: list[str], coefficients: np.ndarray) -> Figure:
    """Standardised logistic-regression coefficients (log-odds per standard deviation)."""
    order = np.argsort(np.abs(coefficients))
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(features) + 1))
    ax.barh(np.array(features)[order], np.asarray(coefficients)[order],
            color=["tab:red" if c > 0 else "tab:blue" for c in np.asarray(coefficients)[order]])
    ax.axvline(0, color="k", lw=0.8)
    ax.set_title("coefficients (red raises churn risk, per standard deviation)")
    fig.tight_layout()
    return fig


def _decorate(ax: Axes, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(loc="best", fontsize=8)
