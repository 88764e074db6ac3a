"""Figures for the training report: ROC, precision-recall, calibration, lift and gains, model vs baseline."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from churn.modeling.evaluate import calibration_table, decile_table


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


def lift_gains_figure(predictions: pd.DataFrame, score_columns: dict[str, str]) -> Figure:
    """Cumulative gains (share of churners caught vs share of users contacted, best first) for
    every scorer, and the first scorer's lift per score decile with 95% (Wilson) intervals."""
    fig, (gain_ax, lift_ax) = plt.subplots(1, 2, figsize=(13, 4.2))
    y = predictions["label"].to_numpy(int)
    for label, column in score_columns.items():
        table = decile_table(y, predictions[column].to_numpy())
        gain_ax.plot(np.r_[0, table["cum_users_share"]] * 100, np.r_[0, table["gain"]] * 100, "o-", label=label)
    gain_ax.plot([0, 100], [0, 100], "k:", lw=1, label="random order")
    _decorate(gain_ax, "cumulative gains (validation)", "users contacted, highest scores first (%)",
              "churners caught (%)")
    label, column = next(iter(score_columns.items()))
    table = decile_table(y, predictions[column].to_numpy())
    base = y.mean()
    lift_ax.bar(table.index, table["lift"], color="tab:blue", label=label)
    below, above = table["lift"] - table["rate_low"] / base, table["rate_high"] / base - table["lift"]
    lift_ax.errorbar(table.index, table["lift"], fmt="none", ecolor="k", capsize=3, label="95% interval",
                     yerr=[below.clip(lower=0), above.clip(lower=0)])  # clip: rounding at a rate of 0
    lift_ax.axhline(1, color="k", ls=":", lw=1, label="no better than random")
    lift_ax.set_xticks(table.index)
    _decorate(lift_ax, f"lift by score decile (base churn rate {base:.2%})", "score decile (1 = riskiest 10%)",
              "lift (decile churn rate / base rate, x)")
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
    ax.set_xlabel("change in log-odds of churn per standard deviation of the feature")
    fig.tight_layout()
    return fig


def _decorate(ax: Axes, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(loc="best", fontsize=8)
