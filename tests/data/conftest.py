"""Simulated reference/current feature frames for validating drift detection against truth."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

_30D, _90D = pd.Timedelta(days=30), pd.Timedelta(days=90)


def _counts(frame: pd.DataFrame, index: pd.Index) -> pd.Series:
    return frame.groupby("user_id").size().reindex(index, fill_value=0).astype(float)


def _activity(events: pd.DataFrame, at: pd.Timestamp, out: pd.DataFrame) -> None:
    """Event counts, active days, trend and recency over the 30/90 days before ``at``."""
    ev = events[(events.event_at < at) & (events.event_at >= at - _90D)]
    ev = ev.assign(day=ev.event_at.dt.floor("D"))
    ev30 = ev[ev.event_at >= at - _30D]
    out["events_30d"], out["events_90d"] = _counts(ev30, out.index), _counts(ev, out.index)
    out["active_days_30d"] = _counts(ev30.drop_duplicates(["user_id", "day"]), out.index)
    out["active_days_90d"] = _counts(ev.drop_duplicates(["user_id", "day"]), out.index)
    out["activity_trend"] = np.where(out.events_90d > 0, 3 * out.events_30d / out.events_90d, 0.0)
    out["feature_use_30d"] = _counts(ev30[ev30.event_type == "feature_use"], out.index)
    out["support_tickets_90d"] = _counts(ev[ev.event_type == "support_ticket"], out.index)
    last = events[events.event_at < at].groupby("user_id").event_at.max().reindex(out.index)
    out["days_since_last_event"] = ((at - last).dt.total_seconds() / 86_400).fillna(out.tenure_days)


def snapshot_features(data: dict[str, pd.DataFrame], at: pd.Timestamp) -> pd.DataFrame:
    """The default spec's features, in plain pandas, for users signed up and not churned by ``at``.

    Only records strictly before ``at`` count (point-in-time), as in the platform's feature SQL.
    """
    users = data["users"]
    alive = users[(users.signup_at < at) & ~(users.churned_at < at)].set_index("user_id")
    out = pd.DataFrame({"tenure_days": (at - alive.signup_at).dt.total_seconds() / 86_400})
    _activity(data["events"], at, out)
    bill = data["billing"][data["billing"].billed_at < at]
    fails = bill[(bill.billing_type == "payment_failed") & (bill.billed_at >= at - _90D)]
    out["payment_failures_90d"] = _counts(fails, out.index)
    priced = bill[bill.billing_type.isin(["charge", "payment_failed"])]
    latest = priced.sort_values("billed_at").groupby("user_id").amount.last()
    out["monthly_price"] = latest.reindex(out.index).fillna(0.0)
    return out.reset_index()


@pytest.fixture(scope="session")
def features_at() -> Callable[[dict[str, pd.DataFrame], pd.Timestamp], pd.DataFrame]:
    """The plain-pandas snapshot feature builder (a fixture: test modules are not importable)."""
    return snapshot_features
