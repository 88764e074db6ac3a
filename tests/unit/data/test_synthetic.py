"""Properties of the synthetic SaaS simulator (small runs; the whole file takes a few seconds)."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest

from churn.data import schema, synthetic
from churn.data.synthetic import SimulationParams, generate, iter_chunks, n_chunks

SMALL = SimulationParams(n_users=300, seed=7)
TABLES = {"users": schema.USERS, "events": schema.EVENTS, "billing": schema.BILLING,
          "user_truth": schema.USER_TRUTH}


@pytest.fixture(scope="module")
def small() -> dict[str, pd.DataFrame]:
    """One small simulated dataset shared by the read-only tests."""
    return generate(SMALL)


@pytest.fixture(scope="module")
def default() -> dict[str, pd.DataFrame]:
    """The default dataset (1000 users, ~1.4M events; about a second to generate)."""
    return generate(SimulationParams())


def _with_user_times(df: pd.DataFrame, users: pd.DataFrame) -> pd.DataFrame:
    return df.merge(users[["user_id", "signup_at", "churned_at"]], on="user_id", how="left")


def _table_hash(df: pd.DataFrame) -> int:
    return int(pd.util.hash_pandas_object(df, index=False).sum())


def test_same_params_give_identical_tables(small: dict[str, pd.DataFrame]) -> None:
    """Generation is a pure function of the params."""
    again = generate(SMALL)
    for name, df in small.items():
        assert df.equals(again[name]), name


def test_other_seed_gives_different_tables(small: dict[str, pd.DataFrame]) -> None:
    """Changing only the seed changes every table."""
    other = generate(SimulationParams(n_users=300, seed=8))
    for name, df in small.items():
        assert _table_hash(df) != _table_hash(other[name]), name


@pytest.mark.parametrize("name", list(TABLES))
def test_columns_and_dtypes_match_schema(small: dict[str, pd.DataFrame], name: str) -> None:
    """Each frame has exactly the schema's columns, in order, with matching pandas dtypes."""
    df, table = small[name], TABLES[name]
    assert list(df.columns) == table.column_names
    for col in table.columns:
        dtype = df[col.name].dtype
        if col.dtype == "BIGINT":
            assert dtype == np.int64, col.name
        elif col.dtype == "DOUBLE":
            assert dtype == np.float64, col.name
        elif col.dtype == "VARCHAR":
            assert pd.api.types.is_string_dtype(dtype), col.name
        else:  # TIMESTAMP / DATE
            assert dtype == "datetime64[us]", col.name
        if not col.nullable:
            assert df[col.name].notna().all(), col.name


def test_no_event_before_signup_or_start_or_at_after_churn(small: dict[str, pd.DataFrame]) -> None:
    """Events only happen while the user is active inside [start, end)."""
    ev = _with_user_times(small["events"], small["users"])
    assert (ev.event_at >= ev.signup_at).all()
    assert (ev.event_at >= pd.Timestamp(SMALL.start)).all()
    assert (ev.event_at < pd.Timestamp(SMALL.end)).all()
    assert not (ev.event_at >= ev.churned_at).any()


def test_no_billing_before_signup_or_start_or_at_after_churn(
    small: dict[str, pd.DataFrame],
) -> None:
    """Billing records only happen while the user is active inside [start, end)."""
    bi = _with_user_times(small["billing"], small["users"])
    assert (bi.billed_at >= bi.signup_at).all()
    assert (bi.billed_at >= pd.Timestamp(SMALL.start)).all()
    assert (bi.billed_at < pd.Timestamp(SMALL.end)).all()
    assert not (bi.billed_at >= bi.churned_at).any()


def test_churn_times_fall_inside_window_after_signup(small: dict[str, pd.DataFrame]) -> None:
    """churned_at is NULL or in [max(signup, start), end)."""
    u = small["users"].dropna(subset=["churned_at"])
    assert (u.churned_at > u.signup_at).all()
    assert (u.churned_at >= pd.Timestamp(SMALL.start)).all()
    assert (u.churned_at < pd.Timestamp(SMALL.end)).all()


def test_ids_are_unique_and_references_exist(small: dict[str, pd.DataFrame]) -> None:
    """Primary keys are unique; events, billing and truth point at existing users."""
    users = small["users"]
    assert users.user_id.tolist() == list(range(1, SMALL.n_users + 1))
    assert small["events"].event_id.is_unique and small["billing"].billing_id.is_unique
    for name in ("events", "billing", "user_truth"):
        assert small[name].user_id.isin(users.user_id).all(), name


def test_ids_stay_globally_unique_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """With several chunks, ids continue where the previous chunk stopped."""
    monkeypatch.setattr(synthetic, "CHUNK_USERS", 40)
    params = SimulationParams(n_users=100, seed=3)
    chunks = list(iter_chunks(params, progress=False))
    assert n_chunks(params) == len(chunks) == 3
    data = {k: pd.concat([c[k] for c in chunks], ignore_index=True) for k in chunks[0]}
    assert data["users"].user_id.tolist() == list(range(1, 101))
    assert data["events"].event_id.tolist() == list(range(1, len(data["events"]) + 1))
    assert data["billing"].billing_id.tolist() == list(range(1, len(data["billing"]) + 1))


def test_event_types_valid_and_support_tickets_rare(small: dict[str, pd.DataFrame]) -> None:
    """Event types come from EVENT_TYPES; page_view/login dominate, support_ticket is rare."""
    share = small["events"].event_type.value_counts(normalize=True)
    assert set(share.index) <= set(schema.EVENT_TYPES)
    assert set(share.index[:2]) == {"page_view", "login"}
    assert 0 < share["support_ticket"] < 0.02


def test_billing_amounts_are_consistent_with_plans(small: dict[str, pd.DataFrame]) -> None:
    """Amounts >= 0; charges/failures bill the plan price, plan changes 0, refunds <= price."""
    bi = small["billing"]
    assert set(bi.billing_type) <= set(schema.BILLING_TYPES) and set(bi.plan) <= set(schema.PLANS)
    assert (bi.amount >= 0).all()
    price = bi.plan.map(schema.PLANS).astype(float)
    billed = bi.billing_type.isin(["charge", "payment_failed"])
    assert np.allclose(bi.amount[billed], price[billed])
    assert (bi.amount[bi.billing_type == "plan_change"] == 0).all()
    refunds = bi.billing_type == "refund"
    assert ((bi.amount[refunds] > 0) & (bi.amount[refunds] <= price[refunds])).all()


def test_users_plan_reflects_last_plan_in_billing(small: dict[str, pd.DataFrame]) -> None:
    """users.plan/monthly_price equal the plan of each user's latest billing record."""
    users = small["users"].set_index("user_id")
    assert (users.monthly_price == users.plan.map(schema.PLANS).astype(float)).all()
    last = small["billing"].sort_values("billed_at").groupby("user_id").plan.last()
    assert (users.plan.loc[last.index] == last).all()


def test_user_truth_has_one_row_per_active_week(small: dict[str, pd.DataFrame]) -> None:
    """Truth rows are Mondays, unique per (user, week), with hazards in [0, 1]."""
    truth = small["user_truth"]
    assert (truth.week_start.dt.day_of_week == 0).all()
    assert not truth.duplicated(["user_id", "week_start"]).any()
    assert truth.churn_hazard.between(0, 1).all() and (truth.engagement >= 0).all()
    assert set(truth.user_id) == set(small["users"].user_id)


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
    long_lived = users.churned_at - np.maximum(users.signup_at, pd.Timestamp(SMALL.start))
    users = users[long_lived > pd.Timedelta(weeks=12)]
    ev = default["events"].merge(users[["user_id", "churned_at"]], on="user_id")
    before = ev.churned_at - ev.event_at
    late = (before <= pd.Timedelta(weeks=4)).groupby(ev.user_id).sum() / 28
    earlier = before.between(pd.Timedelta(weeks=4), pd.Timedelta(weeks=12))
    early = earlier.groupby(ev.user_id).sum() / 56
    assert len(users) >= 20
    assert late.mean() < 0.8 * early.mean()


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"n_users": 0}, "n_users"),
        ({"start": date(2025, 6, 1), "end": date(2025, 6, 1)}, "end"),
        ({"seed": -1}, "seed"),
        ({"target_churn_rate": 1.5}, "target_churn_rate"),
        ({"events_per_user_day": 0.0}, "events_per_user_day"),
        ({"scenario": "apocalypse"}, "scenario"),
        ({"scenario": "drift", "drift_start": date(2024, 12, 1)}, "drift_start"),
        ({"scenario": "drift", "drift_start": date(2026, 1, 1)}, "drift_start"),
        ({"drift_start": datetime(2025, 10, 1)}, "drift_start"),
    ],
)
def test_invalid_params_raise_value_error_naming_problem(kwargs: dict, problem: str) -> None:
    """Bad parameters fail fast with a message naming the offending field."""
    with pytest.raises(ValueError, match=problem):
        SimulationParams(**kwargs)


# --- scenario "drift" (price rise for "pro", US engagement falls), paired with `default` ---

DRIFT = SimulationParams(scenario="drift")
CUT = pd.Timestamp(DRIFT.drift_date)


@pytest.fixture(scope="module")
def drift() -> dict[str, pd.DataFrame]:
    """The default dataset under the drift scenario: same seed as `default`, so runs pair up."""
    return generate(DRIFT)


def _before_cut(df: pd.DataFrame, ts: str) -> pd.DataFrame:
    """Rows strictly before the drift start, without the running id (ids shift after it)."""
    return df[df[ts] < CUT].drop(columns=df.columns[0]).reset_index(drop=True)


def _weekly_churn(users: pd.DataFrame, lo: pd.Timestamp, hi: pd.Timestamp) -> float:
    """Churns per user-week of exposure within [lo, hi)."""
    start = np.maximum(users.signup_at, lo)
    stop = np.minimum(users.churned_at.fillna(hi), hi)
    weeks = (stop - start).clip(lower=pd.Timedelta(0)).sum() / pd.Timedelta(weeks=1)
    return users.churned_at.between(lo, hi, inclusive="left").sum() / weeks


def test_drift_start_defaults_to_75_days_before_end_and_stable_ignores_it() -> None:
    """drift_date defaults to end - 75 days; a drift_start given to "stable" changes nothing."""
    assert DRIFT.drift_date == date(2025, 10, 18)
    assert SimulationParams(scenario="drift", drift_start=date(2025, 9, 1)).drift_date.month == 9
    ignored = generate(SimulationParams(n_users=300, seed=7, drift_start=date(2025, 6, 1)))
    assert all(df.equals(ignored[name]) for name, df in generate(SMALL).items())


def test_drift_equals_stable_before_drift_start(default: dict[str, pd.DataFrame],
                                                drift: dict[str, pd.DataFrame]) -> None:
    """Same seed: every event, billing record and truth week before drift_start is identical."""
    for name, ts in (("events", "event_at"), ("billing", "billed_at")):
        assert _before_cut(drift[name], ts).equals(_before_cut(default[name], ts)), name
    truth = {k: v[v.week_start < CUT].reset_index(drop=True)
             for k, v in (("s", default["user_truth"]), ("d", drift["user_truth"]))}
    assert truth["d"].equals(truth["s"])
    same = ["user_id", "signup_at", "country", "acquisition_channel"]
    assert drift["users"][same].equals(default["users"][same])


def test_drift_churn_only_moves_earlier_and_only_after_drift_start(
    default: dict[str, pd.DataFrame], drift: dict[str, pd.DataFrame],
) -> None:
    """Hazards are only raised from drift_start, and both runs share the churn draws."""
    never = pd.Timestamp(DRIFT.end)
    stable_at = default["users"].churned_at.fillna(never)
    drift_at = drift["users"].churned_at.fillna(never)
    moved = stable_at != drift_at
    assert moved.sum() >= 5
    assert (drift_at[moved] >= CUT).all() and (drift_at[moved] < stable_at[moved]).all()


def test_drift_raises_churn_rate_after_drift_start(default: dict[str, pd.DataFrame],
                                                   drift: dict[str, pd.DataFrame]) -> None:
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


def test_drift_segment_activity_falls(default: dict[str, pd.DataFrame],
                                      drift: dict[str, pd.DataFrame]) -> None:
    """US events in the last 4 weeks drop below 60% of the 4 weeks before the drift; others not."""

    def last_vs_before(data: dict[str, pd.DataFrame], us: bool) -> float:
        ev = data["events"].merge(data["users"][["user_id", "country"]], on="user_id")
        ev = ev[(ev.country == "US") == us]
        last = ev.event_at >= pd.Timestamp(DRIFT.end) - pd.Timedelta(weeks=4)
        return last.sum() / ev.event_at.between(CUT - pd.Timedelta(weeks=4), CUT,
                                                inclusive="left").sum()

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
