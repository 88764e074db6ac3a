"""Figures for the A/B report and dashboard: arms with intervals, posteriors, daily looks."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats
from statsmodels.stats.proportion import proportion_confint


def arms_figure(results: dict[str, Any], daily: pd.DataFrame, sequential_p: np.ndarray, alpha: float = 0.05) -> Figure:
    """Churn rate per arm (Wilson 95% CI), Beta posteriors, and the daily sequential p-value."""
    fig, (bar_ax, post_ax, seq_ax) = plt.subplots(1, 3, figsize=(15, 3.8))
    arms = ("control", "variant")
    n = [results[a]["users"] for a in arms]
    k = [round(results[a]["churn_rate"] * results[a]["users"]) for a in arms]
    low, high = proportion_confint(k, n, alpha=alpha, method="wilson")
    rates = np.array(k) / np.array(n)
    bar_ax.bar(arms, rates, yerr=[rates - low, high - rates], capsize=8, color=["tab:grey", "tab:blue"])
    bar_ax.set_title("churn rate per arm (95% Wilson CI)")
    bar_ax.set_ylabel("users who churned within the window (share)")
    bar_ax.set_xlabel("arm")
    grid = np.linspace(max(0.0, min(low) * 0.7), min(1.0, max(high) * 1.3), 400)
    for arm, kk, nn in zip(arms, k, n, strict=True):
        post_ax.plot(grid, stats.beta.pdf(grid, 1 + kk, 1 + nn - kk), label=f"{arm}: Beta({1 + kk}, {1 + nn - kk})")
    post_ax.set_title(f"posterior churn rate; P(variant better) = {results['probability_test']['prob_variant_better']:.3f}")
    post_ax.set_xlabel("churn rate (share of users)")
    post_ax.set_ylabel("posterior density")
    post_ax.legend(fontsize=8)
    seq_ax.plot(daily["day"], sequential_p, "o-", label="mSPRT always-valid p")
    seq_ax.axhline(alpha, color="tab:red", ls="--", label=f"alpha = {alpha}")
    seq_ax.set_yscale("log")
    seq_ax.set_title("sequential analysis, one look per day")
    seq_ax.set_xlabel("day of test")
    seq_ax.set_ylabel("always-valid p-value (log scale)")
    seq_ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
