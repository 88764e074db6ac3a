"""Expectation suites for a data set's own tables (events, users, optional subscriptions).

No fixed vocabularies: event types and attributes come from the data and are checked for
sanity (non-empty, bounded cardinality). Bounds that depend on the data set (the churn share
of the cancellation rule) come from the dataset file or are derived (at least one churner and
one non-churner) and reported as such. The set-level checks (every event's user exists) are
computed in DuckDB and arrive as derived boolean columns, so the suites stay declarative.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from churn.data.loader import MAX_EVENT_TYPES
from churn.quality.runner import import_gx
from churn.quality.suites import USER_KNOWN, _flagged_rows_rule, _rule
from churn.store.warehouse import Warehouse

DERIVED_CHURN_SHARE = (0.001, 0.999)
"""Without bounds in the dataset file: some users churn and some do not, nothing more."""


def read_own_frames(warehouse: Warehouse) -> dict[str, pd.DataFrame]:
    """events (with ``user_known`` computed in DuckDB), users and subscriptions if present."""
    with warehouse.reader() as con:
        frames = {
            "events": con.execute(
                "SELECT e.*, e.user_id IN (SELECT user_id FROM raw_data.users) AS user_known "
                "FROM raw_data.events e ORDER BY e.event_id"
            ).df(),
            "users": con.execute("SELECT * FROM raw_data.users ORDER BY user_id").df(),
        }
        if Warehouse.table_exists(con, "raw_data.subscriptions"):
            frames["subscriptions"] = con.execute(
                "SELECT *, s.user_id IN (SELECT user_id FROM raw_data.users) AS user_known "
                "FROM raw_data.subscriptions s ORDER BY user_id, started_at"
            ).df()
    for frame in frames.values():
        for column in frame.columns:
            if frame[column].dtype.kind == "M":
                frame[column] = frame[column].astype("datetime64[ns]")
    return frames


def own_data_suites(
    frames: dict[str, pd.DataFrame], *, max_timestamp: datetime, rule: str, churn_share: tuple[float, float] | None
) -> dict[str, Any]:
    """One suite per table of :func:`read_own_frames`."""
    gx = import_gx()
    not_future = lambda table, col: _rule(  # noqa: E731
        "ExpectColumnValuesToBeBetween",
        "timestamp_not_in_future",
        f"{table}.{col} is not in the future (after {max_timestamp:%Y-%m-%d %H:%M} UTC); any past date is fine.",
        column=col,
        max_value=max_timestamp,
    )
    events = [
        _rule("ExpectTableRowCountToBeBetween", "non_empty", "The event log is not empty.", min_value=1),
        _rule("ExpectColumnValuesToBeUnique", "primary_key_unique", "event_id is unique.", column="event_id"),
        *[
            _rule("ExpectColumnValuesToNotBeNull", "not_null", f"{c} is required.", column=c)
            for c in ("user_id", "event_at", "event_type")
        ],
        not_future("events", "event_at"),
        _rule(
            "ExpectColumnUniqueValueCountToBeBetween",
            "event_vocabulary",
            f"Event types come from the data: at least 1 and at most {MAX_EVENT_TYPES} distinct values.",
            column="event_type",
            min_value=1,
            max_value=MAX_EVENT_TYPES,
        ),
        _flagged_rows_rule(
            "user_exists",
            f"Every event's user_id exists in users ({USER_KNOWN} == False are violations, computed in DuckDB).",
            USER_KNOWN,
            False,
        ),
    ]
    users = [
        _rule("ExpectTableRowCountToBeBetween", "non_empty", "At least one user.", min_value=1),
        _rule("ExpectColumnValuesToBeUnique", "primary_key_unique", "user_id is unique.", column="user_id"),
        _rule(
            "ExpectColumnValuesToNotBeNull", "not_null", "signup_at is known (or the first event).", column="signup_at"
        ),
        not_future("users", "signup_at"),
    ]
    if rule == "cancellation":
        low, high = churn_share or DERIVED_CHURN_SHARE
        source = "from the dataset file" if churn_share else "derived: some users churn, some do not"
        users.append(
            _rule(
                "ExpectColumnProportionOfNonNullValuesToBeBetween",
                "churn_share",
                f"Share of users with a churn date within [{low}, {high}] ({source}).",
                column="churned_at",
                min_value=low,
                max_value=high,
            )
        )
    suites = {"events": events, "users": users}
    if "subscriptions" in frames:
        suites["subscriptions"] = [
            _rule("ExpectColumnValuesToNotBeNull", "not_null", "started_at is required.", column="started_at"),
            not_future("subscriptions", "started_at"),
            _flagged_rows_rule("user_exists", "Every subscription's user exists in users.", USER_KNOWN, False),
        ]
    return {name: gx.ExpectationSuite(name=f"own_{name}", expectations=rules) for name, rules in suites.items()}
