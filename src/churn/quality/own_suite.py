"""Expectation suites for a data set's own tables (events, users, optional subscriptions).

No fixed vocabularies: event types and attributes come from the data and are checked for
sanity (non-empty, bounded cardinality). Bounds that depend on the data set (the churn share
of the cancellation rule) come from the dataset file or are derived (at least one churner and
one non-churner) and reported as such. The set-level checks (every event's user exists) are
computed in DuckDB and arrive as derived boolean columns, so the suites stay declarative.

The event log is validated in chunks (:func:`own_tables`, :func:`validate_own_data`): DuckDB
streams it in ranges of ``event_id`` (so a repeated id always lands in one chunk and the
uniqueness check stays exact), Great Expectations validates one chunk at a time and the
outcomes are merged; the vocabulary is judged on the distinct event types DuckDB computes. A
10M-event log is checked in the memory of one chunk.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from churn.data.loader import MAX_EVENT_TYPES
from churn.quality.chunks import CHUNK_ROWS, chunks_by_key
from churn.quality.runner import import_gx, validate_chunks
from churn.quality.suites import USER_KNOWN, _flagged_rows_rule, _rule
from churn.store.warehouse import Warehouse

if TYPE_CHECKING:
    from churn.dataset import Dataset
    from churn.quality.runner import QualityReport

DERIVED_CHURN_SHARE = (0.001, 0.999)
"""Without bounds in the dataset file: some users churn and some do not, nothing more."""
_EVENTS = "SELECT e.*, e.user_id IN (SELECT user_id FROM raw_data.users) AS user_known FROM raw_data.events e"


def _ns(frame: pd.DataFrame) -> pd.DataFrame:
    """Timestamps as nanoseconds: Great Expectations vectorises only those (see suites._ns_timestamps)."""
    for column in frame.columns:
        if frame[column].dtype.kind == "M":
            frame[column] = frame[column].astype("datetime64[ns]")
    return frame


def event_chunks(
    warehouse: Warehouse, chunk_rows: int = CHUNK_ROWS, min_event_id: int | None = None
) -> Iterator[pd.DataFrame]:
    """The events (with ``user_known`` computed in DuckDB) in ranges of ``event_id`` of about
    ``chunk_rows`` rows each (:func:`churn.quality.chunks.chunks_by_key`); with ``min_event_id``
    only the slice from that id on (what a daily run appended)."""
    where = f"event_id >= {int(min_event_id)}" if min_event_id is not None else None
    chunks = chunks_by_key(warehouse, "raw_data.events", "event_id", chunk_rows, select=_EVENTS, where=where)
    return (_ns(c) for c in chunks)


def own_tables(warehouse: Warehouse, chunk_rows: int = CHUNK_ROWS, min_event_id: int | None = None) -> dict[str, Any]:
    """Each own table as an iterable of frames for :func:`churn.quality.runner.validate_chunks`:
    events in chunks (only the slice from ``min_event_id`` on, when given), the distinct event
    types of the whole log, users and subscriptions (bounded by the users) whole."""
    with warehouse.reader() as con:
        tables: dict[str, Any] = {
            "event_types": [con.execute("SELECT DISTINCT event_type FROM raw_data.events ORDER BY 1").df()],
            "users": [_ns(con.execute("SELECT * FROM raw_data.users ORDER BY user_id").df())],
        }
        if Warehouse.table_exists(con, "raw_data.subscriptions"):
            tables["subscriptions"] = [
                _ns(
                    con.execute(
                        "SELECT *, s.user_id IN (SELECT user_id FROM raw_data.users) AS user_known "
                        "FROM raw_data.subscriptions s ORDER BY user_id, started_at"
                    ).df()
                )
            ]
    return {"events": event_chunks(warehouse, chunk_rows, min_event_id), **tables}


def read_own_frames(warehouse: Warehouse) -> dict[str, pd.DataFrame]:
    """Every own table as one frame (small data and tests; large logs: :func:`own_tables`)."""
    tables = own_tables(warehouse, chunk_rows=1 << 62)
    return {name: pd.concat(list(chunks), ignore_index=True) for name, chunks in tables.items()}


def validate_own_data(
    warehouse: Warehouse,
    dataset: Dataset,
    *,
    max_timestamp: datetime,
    report_dir: Path | str | None = None,
    chunk_rows: int = CHUNK_ROWS,
    min_event_id: int | None = None,
) -> QualityReport:
    """The quality gate on a data set's own tables, the event log in chunks of ``chunk_rows``.

    With ``min_event_id`` (a daily run: :func:`churn.data.append.latest_event_slice`) only the
    events it appended are validated row by row; their ids follow every stored one, so unique
    within the slice is unique in the log. Users, subscriptions and the vocabulary stay whole."""
    tables = own_tables(warehouse, chunk_rows, min_event_id)
    suites = own_data_suites(
        tables,
        max_timestamp=max_timestamp,
        rule=dataset.churn.rule,
        churn_share=dataset.quality.churn_share,
        whole_log=min_event_id is None,
    )
    return validate_chunks(tables, suites, report_dir=report_dir)


def own_data_suites(
    frames: dict[str, Any],
    *,
    max_timestamp: datetime,
    rule: str,
    churn_share: tuple[float, float] | None,
    whole_log: bool = True,
) -> dict[str, Any]:
    """One suite per table of :func:`own_tables` (or :func:`read_own_frames`). Without
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
