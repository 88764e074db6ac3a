"""Figures for the monitoring report and dashboard."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def distribution_figure(reference: pd.DataFrame, current: pd.DataFrame, features: list[str],
                        drifted: dict[str, bool], columns: int = 4, labels: dict[str, str] | None = None) -> Figure:
    """Reference vs current histogram per feature (share of users per bin); drifted features
    titled in red; x axes labelled with each feature's description and unit (``labels``)."""
    rows = int(np.ceil(len(features) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 2.9 * rows), squeeze=False)
    for ax, feature in zip(axes.flat, features, strict=False):  # the grid may have spare axes
        _histograms(ax, reference[feature], current[feature])
        ax.set_title(feature + ("  (DRIFT)" if drifted.get(feature) else ""),
                     color="tab:red" if drifted.get(feature) else "black", fontsize=10)
        ax.set_xlabel((labels or {}).get(feature, feature), fontsize=7)
        ax.set_ylabel("users (%)", fontsize=7)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(features):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def _histograms(ax: Axes, reference: pd.Series, current: pd.Series, bins: int = 30) -> None:
    ref, cur = reference.dropna(), current.dropna()
    edges = np.histogram_bin_edges(pd.concat([ref, cur]), bins=bins).tolist()
    for values, label in ((ref, "reference"), (cur, "current")):
        weights = np.full(len(values), 100.0 / max(len(values), 1))
        ax.hist(values, bins=edges, weights=weights, alpha=0.5, label=f"{label} (n={len(values):,})")


def feature_figure(reference: pd.Series, current: pd.Series, label: str, title: str) -> Figure:
    """One feature, reference vs current: share of users per bin, axes labelled with units."""
    fig, ax = plt.subplots(figsize=(8, 3.6))
    _histograms(ax, reference, current)
    ax.set_xlabel(label)
    ax.set_ylabel("users in the window (%)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def statistic_figure(values: pd.Series, statistic: str, meaning: str, threshold: float | None,
                     drifted: pd.Series) -> Figure:
    """One drift statistic for every feature (bars; drifted features red) against its minimum."""
    order = values.abs().sort_values().index
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(values) + 1.4))
    ax.barh(order, values[order], color=["tab:red" if drifted.get(f) else "tab:grey" for f in order])
    if threshold is not None:
        for line in ((threshold, -threshold) if (values < 0).any() else (threshold,)):
            ax.axvline(line, color="k", ls="--", lw=1)
        ax.plot([], [], "k--", lw=1, label=f"minimum effect {threshold:g}")
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xlabel(f"{statistic}: {meaning}", fontsize=8)
    ax.set_title(f"{statistic} per feature (red: drifted)")
    fig.tight_layout()
    return fig


def timeline_figure(timeline: pd.DataFrame) -> Figure:
    """AUC, precision/recall and Brier score per matured snapshot; in-training points hollow."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.5))
    x = pd.to_datetime(timeline["snapshot_at"])
    for ax, columns, title, ylabel in zip(
            axes, (["auc"], ["precision", "recall"], ["brier", "churn_rate"]),
            ("AUC", "precision / recall at threshold", "Brier score / churn rate"),
            ("ROC AUC (0.5 = chance)", "share (0 to 1)", "Brier score; 30-day churn rate (0 to 1)"), strict=True):
        for column in columns:
            ax.plot(x, timeline[column], "o-", label=column)
        ax.axvspan(x[timeline["in_training"]].min(), x[timeline["in_training"]].max(), color="grey",
                   alpha=0.15, label="training snapshots") if timeline["in_training"].any() else None
        ax.set_title(title)
        ax.set_xlabel("snapshot date")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        fit_dates(ax, x)
    fig.tight_layout()
    return fig


def fit_dates(ax: Axes, dates: pd.Series | list[pd.Timestamp]) -> None:
    """x limits fitted to the dates shown, padded by 5% (at least a day): on a single date
    matplotlib's date axis would otherwise span two years either side of it."""
    stamps = pd.to_datetime(pd.Series(list(dates), dtype=object)).dropna()
    if stamps.empty:
        return
    low, high = stamps.min(), stamps.max()
    pad = max((high - low) * 0.05, pd.Timedelta(days=1))
    ax.set_xlim(low - pad, high + pad)  # type: ignore[arg-type]  # matplotlib takes Timestamps


def cycles_figure(drift: pd.DataFrame, timeline: pd.DataFrame, alerts: pd.DataFrame) -> Figure:
    """The monitor over daily runs (x: each run's as_of): which features alarmed, the newest
    matured snapshot's AUC and churn rate as each run saw them, and alerts opened/resolved."""
    days = sorted(pd.to_datetime(drift.as_of).dt.date.unique())
    fig, (heat_ax, metric_ax, alert_ax) = plt.subplots(3, 1, figsize=(12, 9), sharex=False)
    alarm = drift.assign(alarm=drift.drifted.astype(bool) & ~drift.expected_drift.astype(bool),
                         day=pd.to_datetime(drift.as_of).dt.date)  # fmt: skip
    grid = alarm.groupby(["feature", "day"]).alarm.any().unstack("day").reindex(columns=days).fillna(False)
    heat_ax.imshow(grid.to_numpy(float), aspect="auto", cmap="Reds", vmin=0, vmax=1, interpolation="nearest")
    heat_ax.set_yticks(range(len(grid)), grid.index, fontsize=7)
    heat_ax.set_xticks(range(len(days)), [str(d) for d in days], rotation=90, fontsize=7)
    heat_ax.set_title("drift alarm per feature (red) on each run's date")
    heat_ax.set_xlabel("run date (as_of)")
    if len(timeline):
        known = timeline[~timeline.in_training.astype(bool)].assign(day=pd.to_datetime(timeline.as_of).dt.date)
        newest = known.sort_values("snapshot_at").groupby("day").tail(1).set_index("day").reindex(days)
        x = [pd.Timestamp(d) for d in days]
        metric_ax.plot(x, newest.auc, "o-", label="AUC, newest matured out-of-training snapshot")
        metric_ax.plot(x, newest.churn_rate * 10, "s--", label="30-day churn rate x 10")
        metric_ax.legend(fontsize=8)
        fit_dates(metric_ax, x)
    metric_ax.set_title("production model's performance as each run saw it")
    metric_ax.set_xlabel("run date (as_of)")
    metric_ax.set_ylabel("AUC / churn rate x 10")
    if len(alerts) and "raised_on" in alerts:
        opened = pd.to_datetime(alerts.raised_on).dt.date.value_counts().reindex(days, fill_value=0)
        resolved = pd.to_datetime(alerts.resolved_on).dt.date.value_counts().reindex(days, fill_value=0)
        x_pos = np.arange(len(days))
        alert_ax.bar(x_pos - 0.2, opened.to_numpy(), 0.4, color="tab:red", label="opened")
        alert_ax.bar(x_pos + 0.2, resolved.to_numpy(), 0.4, color="tab:green", label="resolved")
        alert_ax.set_xticks(x_pos, [str(d) for d in days], rotation=90, fontsize=7)
        alert_ax.legend(fontsize=8)
    alert_ax.set_title("alerts opened and resolved per run")
    alert_ax.set_xlabel("run date (as_of)")
    alert_ax.set_ylabel("alerts")
    fig.tight_layout()
    return fig
