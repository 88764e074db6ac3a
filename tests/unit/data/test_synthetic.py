"""Properties of the synthetic SaaS simulator on small runs (the default-size runs are data tests:
 tests/data/test_synthetic_scenarios.py)."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest

from churn.data import schema, synthetic
from churn.data.synthetic import SimulationParams, generate, iter_chunks, n_chunks

SMALL = SimulationParams(n_users=300, seed=7, scenario="stable")
TABLES = {"users": schema.USERS, "events": schema.EVENTS, "billing": schema.BILLING,
          "user_truth": schema.USER_TRUTH}


@pytest.fixture(scope="module")
def small() -> dict[str, pd.DataFrame]:
    """One small simulated dataset shared by the read-only tests."""
    return generate(SMALL)


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
    other = generate(SimulationParams(n_users=300, seed=8, scenario="stable"))
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
    params = SimulationParams(n_users=100, seed=3, scenario="stable")
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
        SimulationParams(**{"scenario": "stable", **kwargs})


# --- scenario "drift" (price rise for "pro", US engagement falls); the 1,000-user runs are in
# tests/data/test_synthetic_scenarios.py ---

DRIFT = SimulationParams(scenario="drift")


def test_drift_start_defaults_to_75_days_before_end_and_stable_ignores_it() -> None:
    """drift_date defaults to end - 75 days; a drift_start given to "stable" changes nothing."""
    assert DRIFT.drift_date == date(2025, 10, 18)
    assert SimulationParams(scenario="drift", drift_start=date(2025, 9, 1)).drift_date.month == 9
    ignored = generate(SimulationParams(n_users=300, seed=7, scenario="stable", drift_start=date(2025, 6, 1)))
    assert all(df.equals(ignored[name]) for name, df in generate(SMALL).items())


