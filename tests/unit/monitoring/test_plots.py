"""The monitoring charts' date axes span the data shown, also for a single monitoring run."""

from __future__ import annotations

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import pandas as pd
import pytest

from churn.monitoring.plots import cycles_figure, timeline_figure


def _x_span(ax) -> tuple[pd.Timestamp, pd.Timestamp]:
    low, high = (pd.Timestamp(mdates.num2date(v)).tz_localize(None) for v in ax.get_xlim())
    return low, high


def _one_run(as_of: str = "2026-01-01") -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    drift = pd.DataFrame({"feature": ["events_30d", "tenure_days"], "drifted": [True, True],
                          "expected_drift": [False, True], "as_of": as_of})  # fmt: skip
    timeline = pd.DataFrame({"snapshot_at": pd.to_datetime(["2025-11-02", "2025-12-02"]), "in_training": [False, False],
                             "auc": [0.7, 0.66], "churn_rate": [0.01, 0.012], "as_of": as_of})  # fmt: skip
    alerts = pd.DataFrame({"raised_on": [as_of], "resolved_on": ["2026-01-01"]})
    return drift, timeline, alerts


def test_one_monitoring_run_gives_a_date_axis_of_days_not_years():
    """A single run's point sits in an axis a few days wide (it spanned 2024-2028 before)."""
    fig = cycles_figure(*_one_run())
    metric_ax = fig.axes[1]
    low, high = _x_span(metric_ax)
    assert low <= pd.Timestamp("2026-01-01") <= high
    assert high - low <= pd.Timedelta(days=3)
    plt.close(fig)


@pytest.mark.parametrize("snapshots", [["2025-12-02"], ["2025-03-01", "2025-06-01", "2025-12-02"]])
def test_timeline_axis_spans_its_snapshots(snapshots):
    """The performance timeline's axis covers its snapshots with at most 5% (or a day) either side."""
    x = pd.to_datetime(snapshots)
    timeline = pd.DataFrame({"snapshot_at": x, "in_training": [i == 0 for i in range(len(x))],
                             "auc": 0.7, "precision": 0.2, "recall": 0.5, "brier": 0.05, "churn_rate": 0.01})  # fmt: skip
    fig = timeline_figure(timeline)
    span = x.max() - x.min()
    pad = max(span * 0.05, pd.Timedelta(days=1))
    for ax in fig.axes:
        low, high = _x_span(ax)
        assert abs(low - (x.min() - pad)) < pd.Timedelta(hours=1)
        assert abs(high - (x.max() + pad)) < pd.Timedelta(hours=1)
    plt.close(fig)
