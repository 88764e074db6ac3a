"""Compiled feature SQL against hand-computed answers and an independent pandas reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.features import default_feature_spec, get_historical_features, load_spec

SNAP = pd.Timestamp("2024-04-01")


def _features(con, spec, users, at=SNAP) -> pd.DataFrame:
    entity_df = pd.DataFrame({spec.entity: users, "event_timestamp": [at] * len(users)})
    return get_historical_features(con, spec, entity_df).set_index(spec.entity)


@pytest.fixture()
def hand_made(add_rows) -> None:
    """User 1 is active around the snapshot (2024-04-01); user 2 never acted."""
    add_rows("users", [{"user_id": 1, "signup_at": "2023-06-01"}, {"user_id": 2, "signup_at": "2024-01-01"}])
    add_rows("events", [
        {"user_id": 1, "event_type": "login", "event_at": "2024-03-31 23:00"},
        {"user_id": 1, "event_type": "feature_use", "event_at": "2024-03-31 10:00"},
        {"user_id": 1, "event_type": "feature_use", "event_at": "2024-03-02 00:00"},  # first instant of 30d
        {"user_id": 1, "event_type": "feature_use", "event_at": "2024-03-01 23:59:59"},  # just outside 30d
        {"user_id": 1, "event_type": "support_ticket", "event_at": "2024-02-15 12:00"},
        {"user_id": 1, "event_type": "login", "event_at": "2023-12-01"},  # outside 90d
        {"user_id": 1, "event_type": "login", "event_at": "2024-04-01 00:00"},  # at the snapshot: future
        {"user_id": 1, "event_type": "login", "event_at": "2024-04-05"},
    ])  # fmt: skip
    add_rows("billing", [
        {"user_id": 1, "billed_at": "2024-01-01", "billing_type": "charge", "plan": "basic", "amount": 9.99},
        {"user_id": 1, "billed_at": "2024-03-01", "billing_type": "charge", "plan": "pro", "amount": 29.99},
        {"user_id": 1, "billed_at": "2024-03-10", "billing_type": "payment_failed", "plan": "pro", "amount": 29.99},
        {"user_id": 1, "billed_at": "2024-03-20", "billing_type": "refund", "plan": "pro", "amount": 5.0},
        {"user_id": 1, "billed_at": "2024-04-01", "billing_type": "payment_failed", "plan": "enterprise", "amount": 99.99},
    ])  # fmt: skip


def test_default_features_match_hand_computed_values(raw_con, hand_made) -> None:
    """Counts, distinct days, recency, trend, filters and latest price equal hand-made answers."""
    got = _features(raw_con, default_feature_spec(), [1, 2])
    one = got.loc[1]
    assert one["events_30d"] == 3 and one["events_90d"] == 5
    assert one["active_days_30d"] == 2 and one["active_days_90d"] == 4
    assert one["days_since_last_event"] == pytest.approx(1 / 24)
    assert one["activity_trend"] == pytest.approx(3 * 3 / 5)
    assert one["feature_use_30d"] == 2 and one["support_tickets_90d"] == 1
    assert one["payment_failures_90d"] == 1
    assert one["monthly_price"] == pytest.approx(29.99)  # refund ignored, failure at snapshot is future
    assert one["tenure_days"] == pytest.approx((SNAP - pd.Timestamp("2023-06-01")).days)


def _all_counts_zero(row: pd.Series) -> bool:
    """Every count feature of ``row`` is 0."""
    counts = ["events_30d", "events_90d", "active_days_30d", "active_days_90d", "feature_use_30d",
              "support_tickets_90d", "payment_failures_90d"]  # fmt: skip
    return bool((row[counts] == 0).all())


def test_user_without_activity_gets_documented_defaults(raw_con, hand_made) -> None:
    """No events: counts 0, trend 0, days_since_last_event = tenure; nothing is NULL."""
    two = _features(raw_con, default_feature_spec(), [2]).loc[2]
    assert _all_counts_zero(two)
    assert two["activity_trend"] == 0.0 and two["monthly_price"] == 0.0
    assert two["tenure_days"] == 91.0 and two["days_since_last_event"] == 91.0
    assert not two.isna().any()


def _reference(users: pd.DataFrame, events: pd.DataFrame, billing: pd.DataFrame, at: pd.Timestamp) -> pd.DataFrame:
    """The default features computed row by row in pandas, independently of the SQL."""
    rows = []
    for uid, signup in zip(users["user_id"], users["signup_at"], strict=True):
        ev = events[(events["user_id"] == uid) & (events["event_at"] < at)]
        w30, w90 = ev[ev["event_at"] >= at - pd.Timedelta(days=30)], ev[ev["event_at"] >= at - pd.Timedelta(days=90)]
        bill = billing[(billing["user_id"] == uid) & (billing["billed_at"] < at)]
        priced = bill[bill["billing_type"].isin(["charge", "payment_failed"])].sort_values(["billed_at", "amount"])
        tenure = (at - signup).total_seconds() / 86400
        rows.append({
            "user_id": uid, "events_30d": len(w30), "events_90d": len(w90),
            "active_days_30d": w30["event_at"].dt.date.nunique(), "active_days_90d": w90["event_at"].dt.date.nunique(),
            "days_since_last_event": (at - ev["event_at"].max()).total_seconds() / 86400 if len(ev) else tenure,
            "activity_trend": 3 * len(w30) / len(w90) if len(w90) else 0.0,
            "feature_use_30d": int((w30["event_type"] == "feature_use").sum()),
            "support_tickets_90d": int((w90["event_type"] == "support_ticket").sum()),
            "payment_failures_90d": int(((bill["billing_type"] == "payment_failed")
                                         & (bill["billed_at"] >= at - pd.Timedelta(days=90))).sum()),
            "tenure_days": tenure, "monthly_price": priced["amount"].iloc[-1] if len(priced) else 0.0,
        })  # fmt: skip
    return pd.DataFrame(rows).set_index("user_id")


def test_features_equal_an_independent_pandas_computation(raw_con, add_rows) -> None:
    """On random data and off-midnight snapshot times, SQL and pandas agree on every feature."""
    rng = np.random.default_rng(7)
    start = pd.Timestamp("2024-01-01")
    stamps = lambda n: start + pd.to_timedelta(rng.integers(0, 200 * 86400, n), unit="s")  # noqa: E731
    users = pd.DataFrame({"user_id": range(1, 21), "signup_at": start - pd.to_timedelta(rng.integers(1, 90, 20), unit="D")})
    events = pd.DataFrame({"user_id": rng.integers(1, 18, 1500), "event_at": stamps(1500),
                           "event_type": rng.choice(["login", "feature_use", "support_ticket"], 1500)})
    billing = pd.DataFrame({"user_id": rng.integers(1, 18, 120), "billed_at": stamps(120), "plan": "pro",
                            "billing_type": rng.choice(["charge", "payment_failed", "refund"], 120),
                            "amount": rng.choice([9.99, 29.99, 99.99], 120)})
    for table, frame in (("users", users), ("events", events), ("billing", billing)):
        add_rows(table, frame.to_dict("records"))
    spec = default_feature_spec()
    for at in (pd.Timestamp("2024-04-10 13:37"), pd.Timestamp("2024-06-01")):
        got = _features(raw_con, spec, list(users["user_id"]), at)[spec.feature_names]
        want = _reference(users, events, billing, at)[spec.feature_names]
        pd.testing.assert_frame_equal(got, want, check_dtype=False, check_names=False)


def test_filter_values_are_escaped_literals(raw_con, hand_made, add_rows) -> None:
    """A filter value holding a quote matches literally instead of breaking the SQL."""
    add_rows("events", [{"user_id": 2, "event_type": "it's", "event_at": "2024-03-30"}])
    spec = load_spec({"name": "quotes", "version": "v1",
                      "sources": {"events": {"table": "raw_data.events", "entity_column": "user_id",
                                             "timestamp_column": "event_at"}},
                      "features": [{"name": "odd", "source": "events", "aggregation": "count", "window_days": 30,
                                    "filter": {"event_type": ["it's", "x'); DROP TABLE t; --"]}}]})  # fmt: skip
    assert _features(raw_con, spec, [1, 2])["odd"].tolist() == [0, 1]
