"""Expectation suites for a data set's own tables (events, users, optional subscriptions).

No fixed vocabularies: event types and attributes come from the data and are checked for
sanity (non-empty, bounded cardinality). Bounds that depend on the data set (the churn share
of the cancellation rule) come from the dataset file or are derived (at least one churner and
one non-churner) and reported as such. The cross-table checks (every event's user exists) read
derived boolean columns, so the suites stay declarative.

:func:`validate_own_data` runs them through the gate (:mod:`churn.quality.gate`): every
expectation with an SQL meaning judged in DuckDB over every row, the column types by Great
Expectations on a seeded sample; a 10M-event log never enters pandas whole.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from churn.data.loader import MAX_EVENT_TYPES
from churn.quality.runner import import_gx
from churn.quality.suites import USER_KNOWN, _flagged_rows_rule, _rule
from churn.store import raw_checks, tables
from churn.store.warehouse import Warehouse

if TYPE_CHECKING:
    from churn.dataset import Dataset
    from churn.quality.runner import QualityReport

DERIVED_CHURN_SHARE = (0.001, 0.999)
"""Without bounds in the dataset file: some users churn and some do not, nothing more."""


SAMPLE_KEYS = {"events": "event_id", "users": "user_id", "subscriptions": "user_id"}
"""The key each own table's Great Expectations sample is drawn by (:mod:`churn.quality.gate`)."""
OWN_TYPES = {
    "events": {"event_id": "BIGINT", "user_id": "BIGINT", "event_type": "VARCHAR", "event_at": "TIMESTAMP"},
    "users": {"user_id": "BIGINT", "signup_at": "TIMESTAMP"},
    "subscriptions": {"user_id": "BIGINT", "started_at": "TIMESTAMP"},
}
"""The columns every own data set's tables have, with their types (the loader's contract)."""


def _own_table_names(warehouse: Warehouse) -> list[str]:
    with warehouse.reader() as con:
        subscriptions = Warehouse.table_exists(con, tables.SUBSCRIPTIONS.name)
    return ["events", "users", *(["subscriptions"] if subscriptions else [])]


def read_own_frames(warehouse: Warehouse) -> dict[str, pd.DataFrame]:
    """Every own table as one pandas frame, with its derived flags and the distinct event types
    (``event_types``): what :func:`own_data_suites` validates with Great Expectations over every
    row. Small data and tests only (the reference the gate's SQL checks are compared with)."""
    frames = {}
    with warehouse.reader() as con:
        for name in [*_own_table_names(warehouse), raw_checks.EVENT_TYPES]:
            frame = con.execute(f"{raw_checks.source_sql(con, name)} ORDER BY 1").df()
            for column in frame.columns:  # nanoseconds: GE vectorises only those (suites._ns_timestamps)
                if frame[column].dtype.kind == "M":
                    frame[column] = frame[column].astype("datetime64[ns]")
            frames[name] = frame
    return frames


def validate_own_data(
    warehouse: Warehouse,
    dataset: Dataset,
    *,
    max_timestamp: datetime,
    report_dir: Path | str | None = None,
    min_event_id: int | None = None,
    sample_rows: int | None = None,
) -> QualityReport:
    """The quality gate on a data set's own tables at any size (:func:`churn.quality.gate.validate_warehouse`):
    every expectation of :func:`own_data_suites` that SQL can judge, over every row in DuckDB;
    the column types on a seeded sample of ``sample_rows`` rows per table
    (:data:`churn.quality.gate.SAMPLE_ROWS`). With ``min_event_id`` (a daily run:
    :func:`churn.data.append.latest_event_slice`) only the events it appended are judged row by
    row; ids stay unique over the whole log, users, subscriptions and the vocabulary stay whole."""
    from churn.quality import gate
    from churn.quality.suites import type_rules

    present = _own_table_names(warehouse)
    suites = own_data_suites(
        dict.fromkeys(present),
        max_timestamp=max_timestamp,
        rule=dataset.churn.rule,
        churn_share=dataset.quality.churn_share,
        whole_log=min_event_id is None,
    )
    return gate.validate_warehouse(
        warehouse,
        suites,
        keys=SAMPLE_KEYS,
        type_rules={name: type_rules(OWN_TYPES[name]) for name in present},
        where=None if min_event_id is None else {"events": f"event_id >= {int(min_event_id)}"},
        report_dir=report_dir,
        sample_rows=gate.SAMPLE_ROWS if sample_rows is None else sample_rows,
    )


def own_data_suites(
    frames: dict[str, Any],
    *,
    max_timestamp: datetime,
    rule: str,
    churn_share: tuple[float, float] | None,
    whole_log: bool = True,
) -> dict[str, Any]:
    """One suite per own table (``frames`` names them: :func:`read_own_frames`). Without
    ``whole_log`` (a slice of the events) the log's non-emptiness is judged on its vocabulary."""
    gx = import_gx()
    not_future = lambda table, col: _rule(  # noqa: E731
        "ExpectColumnValuesToBeBetween",
        "timestamp_not_in_future",
        f"{table}.{col} is not in the future (after {max_timestamp:%Y-%m-%d %H:%M} UTC); any past date is fine.",
        column=col,
        max_value=max_timestamp,
    )
    non_empty = _rule("ExpectTableRowCountToBeBetween", "non_empty", "The event log is not empty.", min_value=1)
    events = [
        *([non_empty] if whole_log else []),
        _rule("ExpectColumnValuesToBeUnique", "primary_key_unique", "event_id is unique.", column="event_id"),
        *[
            _rule("ExpectColumnValuesToNotBeNull", "not_null", f"{c} is required.", column=c)
            for c in ("user_id", "event_at", "event_type")
        ],
        not_future("events", "event_at"),
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
    vocabulary = [
        _rule(
            "ExpectColumnUniqueValueCountToBeBetween",
            "event_vocabulary",
            f"Event types come from the data: at least 1 and at most {MAX_EVENT_TYPES} distinct values "
            "(judged on the distinct types DuckDB finds in the whole log).",
            column="event_type",
            min_value=1,
            max_value=MAX_EVENT_TYPES,
        ),
        *([] if whole_log else [non_empty]),
    ]
    suites = {"events": events, "event_types": vocabulary, "users": users}
    if "subscriptions" in frames:
        suites["subscriptions"] = [
            _rule("ExpectColumnValuesToNotBeNull", "not_null", "started_at is required.", column="started_at"),
            not_future("subscriptions", "started_at"),
            _flagged_rows_rule("user_exists", "Every subscription's user exists in users.", USER_KNOWN, False),
        ]
    return {name: gx.ExpectationSuite(name=f"own_{name}", expectations=rules) for name, rules in suites.items()}
