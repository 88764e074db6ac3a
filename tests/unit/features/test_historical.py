"""Snapshots, population, labels and the offline frame; no future row ever leaks into a snapshot."""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest

from churn.features import (
    SnapshotError,
    build_feature_frame,
    default_feature_spec,
    get_historical_features,
    snapshot_dates,
    snapshot_plan,
)

START, END = datetime(2024, 1, 1), datetime(2025, 1, 1)
SNAP = datetime(2024, 6, 1)
DAY = pd.Timedelta(days=1)


def test_snapshot_plan_adds_the_current_snapshot_at_the_midnight_after_the_last_event() -> None:
    snapshots, data_end = snapshot_plan(START, datetime(2024, 12, 31, 17, 5))
    assert data_end == pd.Timestamp(END) and snapshots[-1] == END
    assert snapshots[:-1] == snapshot_dates(START, END, n_snapshots=8, horizon_days=30)


def test_snapshot_dates_are_labelled_midnights_a_horizon_apart() -> None:
    """Eight midnights 30 days apart, the last one's horizon ending by the data end."""
    dates = snapshot_dates(START, END, n_snapshots=8, horizon_days=30)
    assert len(dates) == 8 and dates == sorted(dates)
    assert dates[-1] == datetime(2024, 12, 2) and all(d == d.replace(hour=0) for d in dates)
    assert {(b - a).days for a, b in pairwise(dates)} == {30}
    assert dates[0] > START


def test_snapshot_spacing_shrinks_to_fit_a_short_range() -> None:
    """With little data the default spacing shrinks so every snapshot still lies after the start."""
    dates = snapshot_dates(START, datetime(2024, 3, 1), n_snapshots=8, horizon_days=30)
    assert len(dates) == 8 and dates[0] > START and dates[-1] == datetime(2024, 1, 31)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"data_end": datetime(2024, 1, 20)}, "shorter than the 30-day horizon"),
        ({"spacing_days": 60}, "do not fit after"),
        ({"n_snapshots": 0}, "at least 1"),
    ],
)
def test_impossible_snapshot_requests_are_refused(kwargs: dict, message: str) -> None:
    """Ranges too short for the horizon or the requested spacing raise a clear error."""
    args = {"data_start": START, "data_end": END, "n_snapshots": 8, "horizon_days": 30} | kwargs
    with pytest.raises(SnapshotError, match=message):
        snapshot_dates(**args)


@pytest.fixture()
def cohort(add_rows) -> None:
    """Users around a 2024-06-01 snapshot, each testing one population or label boundary."""
    add_rows("users", [
        {"user_id": 1, "signup_at": "2024-01-10"},                                  # active, stays
        {"user_id": 2, "signup_at": "2024-06-01"},                                  # signs up at the snapshot
        {"user_id": 3, "signup_at": "2024-07-01"},                                  # signs up later
        {"user_id": 4, "signup_at": "2024-01-10", "churned_at": "2024-05-31 23:59"},  # churned before
        {"user_id": 5, "signup_at": "2024-01-10", "churned_at": "2024-06-01"},      # churns at the snapshot
        {"user_id": 6, "signup_at": "2024-01-10", "churned_at": "2024-06-30 23:59:59.999999"},  # last instant
        {"user_id": 7, "signup_at": "2024-01-10", "churned_at": "2024-07-01"},      # just after the horizon
    ])  # fmt: skip
    add_rows("events", [{"user_id": 1, "event_type": "login", "event_at": "2024-05-20"}])


def test_population_holds_only_users_signed_up_and_not_yet_churned(raw_con, cohort) -> None:
    """Users who sign up at/after the snapshot or churned before it are absent."""
    frame = build_feature_frame(raw_con, default_feature_spec(), [SNAP], 30, END)
    assert frame["user_id"].tolist() == [1, 5, 6, 7]


def test_labels_respect_the_horizon_boundaries(raw_con, cohort) -> None:
    """Churn in [snapshot, snapshot + 30d) is 1; at snapshot + 30d exactly it is 0."""
    frame = build_feature_frame(raw_con, default_feature_spec(), [SNAP], 30, END).set_index("user_id")
    assert frame["label"].to_dict() == {1: 0, 5: 1, 6: 1, 7: 0}
    assert frame["label"].dtype == "Int8" and frame["label_mature"].all()


def test_snapshot_whose_horizon_passes_the_data_end_is_unlabelled(raw_con, cohort) -> None:
    """The horizon must end by the data end for a label; later snapshots get NA and mature False."""
    end = datetime(2024, 7, 1)
    frame = build_feature_frame(raw_con, default_feature_spec(), [SNAP, datetime(2024, 6, 15)], 30, end)
    first, second = frame[frame["snapshot_at"] == SNAP], frame[frame["snapshot_at"] > SNAP]
    assert first["label_mature"].all() and first["label"].notna().all()
    assert not second["label_mature"].any() and second["label"].isna().all()
    assert frame["snapshot_at"].is_monotonic_increasing


@pytest.mark.parametrize("snapshot", [datetime(2023, 12, 1), datetime(2025, 1, 2)])
def test_snapshots_outside_the_data_range_are_refused(raw_con, cohort, snapshot: datetime) -> None:
    """A snapshot before any data or after the data end raises an error naming it."""
    with pytest.raises(SnapshotError, match="outside the data range"):
        build_feature_frame(raw_con, default_feature_spec(), [snapshot], 30, END)


def _random_history(add_rows, rng: np.random.Generator) -> None:
    add_rows("users", [{"user_id": u, "signup_at": "2024-01-05"} for u in range(1, 11)])
    at = pd.Timestamp(START) + pd.to_timedelta(rng.integers(0, 300 * 86400, 800), unit="s")
    users, types = rng.integers(1, 11, 800), rng.choice(["login", "feature_use", "support_ticket"], 800)
    add_rows("events", [{"user_id": int(u), "event_type": str(t), "event_at": a}
                        for u, t, a in zip(users, types, at, strict=True)])
    add_rows("billing", [{"user_id": int(u), "billed_at": a, "billing_type": "payment_failed", "plan": "pro",
                          "amount": 29.99} for u, a in zip(rng.integers(1, 11, 60), at[:60], strict=True)])  # fmt: skip


@pytest.mark.parametrize("seed", range(4))
def test_features_ignore_events_at_or_after_the_snapshot(raw_con, add_rows, seed: int) -> None:
    """Adding or altering rows at or after a snapshot changes none of that snapshot's features."""
    rng = np.random.default_rng(seed)
    _random_history(add_rows, rng)
    spec, snapshots = default_feature_spec(), [datetime(2024, 4, 1), datetime(2024, 7, 1, 6, 30)]
    before = build_feature_frame(raw_con, spec, snapshots, 30, END)
    cut = pd.Timestamp(snapshots[int(rng.integers(0, 2))])
    future = list(cut + pd.to_timedelta(rng.integers(0, 30 * 86400, 50), unit="s"))
    future[:5] = [cut] * 5  # exactly at the snapshot counts as future too
    add_rows("events", [{"user_id": int(u), "event_type": "feature_use", "event_at": a}
                        for u, a in zip(rng.integers(1, 11, 50), future, strict=True)])
    add_rows("billing", [{"user_id": int(u), "billed_at": a, "billing_type": "charge", "plan": "basic",
                          "amount": 1.0} for u, a in zip(rng.integers(1, 11, 10), future[:10], strict=True)])
    raw_con.execute("UPDATE raw_data.events SET event_type = 'support_ticket' WHERE event_at >= ?", [cut])
    after = build_feature_frame(raw_con, spec, snapshots, 30, END)
    same = lambda f: f[f["snapshot_at"] <= cut].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(same(before), same(after))


def test_historical_features_equal_the_offline_frame(raw_con, add_rows) -> None:
    """get_historical_features and build_feature_frame share one SQL path: same values."""
    _random_history(add_rows, np.random.default_rng(11))
    spec = default_feature_spec()
    frame = build_feature_frame(raw_con, spec, [datetime(2024, 5, 1)], 30, END)
    entity_df = frame[["user_id", "snapshot_at"]].rename(columns={"snapshot_at": "event_timestamp"})
    online = get_historical_features(raw_con, spec, entity_df.iloc[::-1].assign(tag="x"))
    assert online["tag"].eq("x").all() and online.index.tolist() == entity_df.index[::-1].tolist()
    pd.testing.assert_frame_equal(online.loc[frame.index, spec.feature_names], frame[spec.feature_names])


def test_historical_features_accept_timezone_aware_times_and_unknown_users(raw_con, add_rows) -> None:
    """UTC-aware times match naive ones; an unknown user gets the no-activity defaults."""
    _random_history(add_rows, np.random.default_rng(3))
    spec = default_feature_spec()
    naive = pd.DataFrame({"user_id": [1, 999], "event_timestamp": [pd.Timestamp("2024-05-01 12:00")] * 2})
    aware = naive.assign(event_timestamp=naive["event_timestamp"].dt.tz_localize("UTC"))
    got, want = get_historical_features(raw_con, spec, aware), get_historical_features(raw_con, spec, naive)
    pd.testing.assert_frame_equal(got[spec.feature_names], want[spec.feature_names])
    known, unknown = got.iloc[0], got.iloc[1]
    assert known["tenure_days"] > 0 and known["events_90d"] > 0
    assert unknown[spec.feature_names].eq(0).all()


def test_feature_frame_builds_from_a_read_only_warehouse(warehouse, add_rows, raw_con) -> None:
    """Readers (API, dashboards) hold read-only connections; both entry points work there."""
    _random_history(add_rows, np.random.default_rng(5))
    with warehouse.writer() as con:
        for table in ("users", "events", "billing"):
            frame = raw_con.execute(f"SELECT * FROM raw_data.{table}").df()
            con.execute(f"CREATE TABLE raw_data.{table} AS SELECT * FROM frame")
    spec = default_feature_spec()
    with warehouse.reader() as con:
        frame = build_feature_frame(con, spec, [datetime(2024, 5, 1)], 30, END)
        online = get_historical_features(con, spec, frame[["user_id"]].assign(event_timestamp=frame["snapshot_at"]))
    assert len(frame) == 10 and online[spec.feature_names].equals(frame[spec.feature_names])
