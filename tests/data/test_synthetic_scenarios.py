"""The simulator at its default size (1,000 users, ~1.4M events): volumes, rhythm and the decay
before churn, and the drift scenario against the stable run with the same seed."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from churn.data import schema, synthetic
from churn.data.synthetic import SimulationParams

Simulate = Callable[[SimulationParams], dict[str, pd.DataFrame]]
TABLES = {"users": schema.USERS, "events": schema.EVENTS, "billing": schema.BILLING, "user_truth": schema.USER_TRUTH}
DRIFT = SimulationParams(scenario="drift")
CUT = pd.Timestamp(DRIFT.drift_date)


def _with_user_times(df: pd.DataFrame, users: pd.DataFrame) -> pd.DataFrame:
    return df.merge(users[["user_id", "signup_at", "churned_at"]], on="user_id", how="left")


@pytest.fixture(scope="module")
def default(simulated: Simulate) -> dict[str, pd.DataFrame]:
    """The default dataset (1000 users, ~1.4M events), shared with the other data tests."""
    return simulated(SimulationParams(scenario="stable"))


def test_default_params_give_expected_volume_and_churn(default: dict[str, pd.DataFrame]) -> None:
    """Defaults: 1000 users, 1.2M-1.6M events, 8-12% churn, roughly 60/30/10 plans."""
    users = default["users"]
    assert len(users) == 1000
    assert 1_200_000 <= len(default["events"]) <= 1_600_000
    assert 0.08 <= users.churned_at.notna().mean() <= 0.12
    plan_share = users.plan.value_counts(normalize=True)
    assert plan_share["basic"] > plan_share["pro"] > plan_share["enterprise"] > 0.03


def test_weekend_activity_lower_than_weekday(default: dict[str, pd.DataFrame]) -> None:
    """Average events per calendar day is clearly lower on Saturday/Sunday."""
    per_day = default["events"].event_at.dt.floor("D").value_counts()
    weekend = per_day.index.day_of_week >= 5
    assert per_day[weekend].mean() < 0.75 * per_day[~weekend].mean()


def test_churners_activity_drops_in_the_weeks_before_churn(
    default: dict[str, pd.DataFrame],
) -> None:
    """For churners, daily events in the last 4 weeks are on average below the 8 weeks before."""
    users = default["users"].dropna(subset=["churned_at"])
    long_lived = users.churned_at - np.maximum(users.signup_at, pd.Timestamp(DRIFT.start))
    users = users[long_lived > pd.Timedelta(weeks=12)]
    ev = default["events"].merge(users[["user_id", "churned_at"]], on="user_id")
    before = ev.churned_at - ev.event_at
    late = (before <= pd.Timedelta(weeks=4)).groupby(ev.user_id).sum() / 28
    earlier = before.between(pd.Timedelta(weeks=4), pd.Timedelta(weeks=12))
    early = earlier.groupby(ev.user_id).sum() / 56
    assert len(users) >= 20
    assert late.mean() < 0.8 * early.mean()


@pytest.fixture(scope="module")
def drift(simulated: Simulate) -> dict[str, pd.DataFrame]:
    """The default dataset under the drift scenario: same seed as `default`, so runs pair up."""
    return simulated(DRIFT)


def _before_cut(df: pd.DataFrame, ts: str) -> pd.DataFrame:
    """Rows strictly before the drift start, without the running id (ids shift after it)."""
    return df[df[ts] < CUT].drop(columns=df.columns[0]).reset_index(drop=True)


def _weekly_churn(users: pd.DataFrame, lo: pd.Timestamp, hi: pd.Timestamp) -> float:
    """Churns per user-week of exposure within [lo, hi)."""
    start = np.maximum(users.signup_at, lo)
    stop = np.minimum(users.churned_at.fillna(hi), hi)
    weeks = (stop - start).clip(lower=pd.Timedelta(0)).sum() / pd.Timedelta(weeks=1)
    return users.churned_at.between(lo, hi, inclusive="left").sum() / weeks


def test_drift_equals_stable_before_drift_start(
    default: dict[str, pd.DataFrame], drift: dict[str, pd.DataFrame]
) -> None:
    """Same seed: every event, billing record and truth week before drift_start is identical."""
    for name, ts in (("events", "event_at"), ("billing", "billed_at")):
        assert _before_cut(drift[name], ts).equals(_before_cut(default[name], ts)), name
    truth = {
        k: v[v.week_start < CUT].reset_index(drop=True)
        for k, v in (("s", default["user_truth"]), ("d", drift["user_truth"]))
    }
    assert truth["d"].equals(truth["s"])
    same = ["user_id", "signup_at", "country", "acquisition_channel"]
    assert drift["users"][same].equals(default["users"][same])


def test_drift_churn_only_moves_earlier_and_only_after_drift_start(
    default: dict[str, pd.DataFrame],
    drift: dict[str, pd.DataFrame],
) -> None:
    """Hazards are only raised from drift_start, and both runs share the churn draws."""
    never = pd.Timestamp(DRIFT.end)
    stable_at = default["users"].churned_at.fillna(never)
    drift_at = drift["users"].churned_at.fillna(never)
    moved = stable_at != drift_at
    assert moved.sum() >= 5
    assert (drift_at[moved] >= CUT).all() and (drift_at[moved] < stable_at[moved]).all()


def test_drift_raises_churn_rate_after_drift_start(
    default: dict[str, pd.DataFrame], drift: dict[str, pd.DataFrame]
) -> None:
    """Weekly churn after drift_start beats the stable run's and the drift run's own past."""
    end, start = pd.Timestamp(DRIFT.end), pd.Timestamp(DRIFT.start)
    after = _weekly_churn(drift["users"], CUT, end)
    assert after > 1.3 * _weekly_churn(default["users"], CUT, end)
    assert after > 1.1 * _weekly_churn(drift["users"], start, CUT)


def test_drift_raises_pro_price_from_drift_start(drift: dict[str, pd.DataFrame]) -> None:
    """Pro invoices cost 29.99 before and 38.99 from drift_start; so does users.monthly_price."""
    bi = drift["billing"]
    pro = bi[(bi.plan == "pro") & bi.billing_type.isin(["charge", "payment_failed"])]
    assert (pro.amount[pro.billed_at < CUT] == 29.99).all()
    assert (pro.amount[pro.billed_at >= CUT] == synthetic.DRIFT_PRICE).all()
    users = drift["users"][drift["users"].plan == "pro"]
    active = users.churned_at.isna() | (users.churned_at >= CUT)
    assert (users.monthly_price[active] == synthetic.DRIFT_PRICE).all()
    assert (users.monthly_price[~active] == 29.99).all()


def test_drift_segment_activity_falls(default: dict[str, pd.DataFrame], drift: dict[str, pd.DataFrame]) -> None:
    """US events in the last 4 weeks drop below 60% of the 4 weeks before the drift; others not."""

    def last_vs_before(data: dict[str, pd.DataFrame], us: bool) -> float:
        ev = data["events"].merge(data["users"][["user_id", "country"]], on="user_id")
        ev = ev[(ev.country == "US") == us]
        last = ev.event_at >= pd.Timestamp(DRIFT.end) - pd.Timedelta(weeks=4)
        return last.sum() / ev.event_at.between(CUT - pd.Timedelta(weeks=4), CUT, inclusive="left").sum()

    assert last_vs_before(drift, us=True) < 0.6
    assert 0.85 < last_vs_before(drift, us=False) < 1.3
    assert 0.85 < last_vs_before(default, us=True) < 1.3


def test_drift_data_keeps_raw_invariants(drift: dict[str, pd.DataFrame]) -> None:
    """Schema columns, unique ids, nothing after churn, non-negative amounts hold under drift."""
    for name, table in TABLES.items():
        assert list(drift[name].columns) == table.column_names, name
    assert drift["events"].event_id.is_unique and drift["billing"].billing_id.is_unique
    for name, ts in (("events", "event_at"), ("billing", "billed_at")):
        rows = _with_user_times(drift[name], drift["users"])
        assert not (rows[ts] >= rows.churned_at).any(), name
        assert (rows[ts] >= rows.signup_at).all(), name
    assert (drift["billing"].amount >= 0).all()
    assert drift["events"].groupby("user_id").event_at.is_monotonic_increasing.all()
