"""Which snapshots a build computes: the label rule, the labelled snapshots and the current one.

A full build places the labelled snapshots at the data set's cadence and one current,
unlabelled snapshot at the end of the data (``as_of``, or the midnight after the last activity).
A daily cycle computes only the snapshot at its ``as_of`` (see :func:`churn.store.offline.update_features`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd

from churn.dataset import Dataset
from churn.features.auto import longest_window
from churn.features.historical import snapshot_schedule
from churn.features.rules import LabelRule
from churn.features.spec import FeatureSpec


@dataclass(frozen=True)
class SnapshotPlan:
    """The label rule and the snapshots of a build."""

    rule: LabelRule
    labelled: list[datetime]
    data_start: pd.Timestamp
    data_end: pd.Timestamp
    window_days: int

    @property
    def snapshots(self) -> list[datetime]:
        """The labelled snapshots plus the current one at ``data_end``."""
        return [*self.labelled, self.data_end.to_pydatetime()]

    def describe(self) -> str:
        rule = self.rule
        return (
            f"data from {self.data_start} to {self.data_end} (exclusive); longest window {self.window_days} days; "
            f"rule {rule.rule}"
            + (f" (lookback {rule.lookback_days} days)" if rule.rule == "inactivity" else "")
            + (f" (grace {rule.grace_days} days)" if rule.rule == "subscription" else "")
        )


def label_rule(ds: Dataset, spec: FeatureSpec, horizon_days: int) -> LabelRule:
    """The data set's churn rule (the inactivity lookback defaults to the longest feature window)."""
    return LabelRule(
        ds.churn.rule,
        lookback_days=ds.churn.lookback_days or longest_window(spec) or int(horizon_days),
        event_types=tuple(ds.churn.event_types) if ds.churn.event_types else None,
        grace_days=ds.churn.grace_days,
    )


def plan_snapshots(
    ds: Dataset,
    spec: FeatureSpec,
    data_range: tuple[pd.Timestamp, pd.Timestamp],
    horizon_days: int,
    n_snapshots: int,
    as_of: date | None = None,
) -> SnapshotPlan:
    """The snapshots of a full build over the data in ``data_range`` (first, last activity).

    ``data_end`` is ``as_of`` when given (the run's date: data before it is loaded), else the
    midnight after the last activity. Raises :class:`~churn.features.SnapshotError` when too
    few labelled snapshots fit.
    """
    first, last = data_range
    data_end = pd.Timestamp(as_of) if as_of is not None else pd.Timestamp(last).ceil("D")
    rule = label_rule(ds, spec, horizon_days)
    window = longest_window(spec)
    labelled = snapshot_schedule(
        first,
        data_end,
        cadence_days=ds.snapshots.cadence_days,
        horizon_days=int(horizon_days),
        longest_window_days=window,
        maturity_days=rule.maturity_days(int(horizon_days)),
        n_valid=ds.snapshots.n_valid,
        count=int(n_snapshots) if ds.is_default else ds.snapshots.count,
    )
    return SnapshotPlan(rule, labelled, pd.Timestamp(first), data_end, window)
