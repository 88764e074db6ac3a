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
    # Wilson's lower bound for 0 churners is 0 up to rounding (statsmodels gives 6.9e-18), which
    # made a negative error bar that matplotlib refuses: clip the bars at zero length.
    yerr = np.clip([rates - low, high - rates], 0.0, None)
    bar_ax.bar(arms, rates, yerr=yerr, capsize=8, color=["tab:grey", "tab:blue"])
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


def looks_figure(looks: pd.DataFrame, alpha: float) -> Figure:
    """A test spanning cycles, look by look: the always-valid p-value against its boundary alpha,
    and the mSPRT likelihood ratio against 1/alpha (the test stops when either line is crossed)."""
    fig, (p_ax, lr_ax) = plt.subplots(1, 2, figsize=(13, 3.8))
    x = looks.look.to_numpy()
    labels = [f"{n}\n{pd.Timestamp(d):%m-%d}" for n, d in zip(looks.look, looks.as_of, strict=True)]
    p_ax.plot(x, looks.p_value, "o-", label="always-valid p-value")
    p_ax.axhline(alpha, color="tab:red", ls="--", label=f"decision boundary alpha = {alpha:g}")
    lr_ax.plot(x, looks.likelihood_ratio, "o-", color="tab:purple", label="mSPRT likelihood ratio")
    lr_ax.axhline(1 / alpha, color="tab:red", ls="--", label=f"decision boundary 1/alpha = {1 / alpha:g}")
    for ax, title, ylabel in ((p_ax, "p-value path over looks", "always-valid p-value (log scale)"),
                              (lr_ax, "likelihood ratio over looks", "likelihood ratio (log scale)")):  # fmt: skip
        ax.set_yscale("log")
        ax.set_xticks(x, labels, fontsize=7)
        ax.set_xlabel("look (run date)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(fontsize=8)
    final = looks.decision.iloc[-1]
    if final != "continue":
        p_ax.annotate(f"decided: {final}", (x[-1], looks.p_value.iloc[-1]), textcoords="offset points",
                      xytext=(-90, -25), fontsize=8)
    fig.tight_layout()
    return fig
