"""Expectation suites for the raw tables (users, events, billing) of ``churn.data.schema``.

Cross-table rules (every event's user exists) are expressed as plain GE expectations on
helper columns that :func:`prepare_raw_frames` derives, so the suites stay declarative and
render in Data Docs.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from churn.data.schema import BILLING_TYPES, EVENT_TYPES, PLANS, RAW_TABLES, TableSchema
from churn.quality.runner import import_gx
from churn.store.warehouse import Warehouse

if TYPE_CHECKING:
    from great_expectations import ExpectationSuite
    from great_expectations.expectations import Expectation

USER_KNOWN = "user_known"
"""Derived boolean on events/billing: the row's user_id exists in users.user_id."""
AFTER_CHURN = "after_churn"
"""Derived boolean on events/billing: the row is at or after its user's churned_at."""

DERIVED_COLUMNS: dict[str, tuple[str, ...]] = {
    "users": (),
    "events": (USER_KNOWN, AFTER_CHURN),
    "billing": (USER_KNOWN, AFTER_CHURN),
}
"""Columns :func:`prepare_raw_frames` appends after the schema columns, per table."""

TIMESTAMP_COLUMNS: dict[str, tuple[str, ...]] = {
    "users": ("signup_at", "churned_at"),
    "events": ("event_at",),
    "billing": ("billed_at",),
}
ALLOWED_VALUES: dict[str, dict[str, tuple[str, ...]]] = {
    "users": {"plan": tuple(PLANS)},
    "events": {"event_type": EVENT_TYPES},
    "billing": {"billing_type": BILLING_TYPES, "plan": tuple(PLANS)},
}
NON_NEGATIVE: dict[str, tuple[str, ...]] = {"users": ("monthly_price",), "billing": ("amount",)}
_SOURCE = "churn.quality.suites"
_NS = np.dtype("datetime64[ns]")


def prepare_raw_frames(
    users: pd.DataFrame, events: pd.DataFrame, billing: pd.DataFrame
) -> dict[str, pd.DataFrame]:
    """Raw tables keyed by name, ready for :func:`raw_data_suites`.

    Adds ``user_known`` to events/billing and casts timestamps to nanoseconds (see
    :func:`_ns_timestamps`). The inputs are not modified.
    """
    known_ids = users["user_id"] if "user_id" in users.columns else pd.Series([], dtype="int64")
    frames = {
        "users": users,
        "events": _with_after_churn(_with_user_known(events, known_ids), users, "event_at"),
        "billing": _with_after_churn(_with_user_known(billing, known_ids), users, "billed_at"),
    }
    return {name: _ns_timestamps(frame, TIMESTAMP_COLUMNS[name]) for name, frame in frames.items()}


def _ns_timestamps(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """Cast naive timestamp columns to ``datetime64[ns]``.

    GE 1.x only vectorises the between-check for ns (or tz-aware) datetimes; pandas 3 and
    DuckDB produce ``datetime64[us]``, which GE checks row by row in Python (~10 s per
    million rows). Values outside the ns range (years < 1678 or > 2261) keep their unit:
    slow but still reported.
    """
    casts = {}
    for column in columns:
        dtype = frame[column].dtype if column in frame.columns else None
        # tz-aware dtypes are not np.dtype and are vectorised by GE already
        if isinstance(dtype, np.dtype) and dtype.kind == "M" and dtype != _NS:
            try:
                casts[column] = frame[column].astype("datetime64[ns]")
            except (OverflowError, ValueError):  # OutOfBoundsDatetime is a ValueError
                continue
    return frame.assign(**casts) if casts else frame


def _with_user_known(frame: pd.DataFrame, known_ids: pd.Series) -> pd.DataFrame:
    """Shallow copy of ``frame`` plus ``user_known`` (left out if user_id is missing)."""
    if "user_id" not in frame.columns:
        # the column-list expectation reports the missing column; nothing to derive from
        return frame
    return frame.assign(**{USER_KNOWN: frame["user_id"].isin(known_ids)})


def _with_after_churn(frame: pd.DataFrame, users: pd.DataFrame, ts: str) -> pd.DataFrame:
    """``frame`` plus ``after_churn`` (left out when a needed column is missing)."""
    if not {"user_id", ts} <= set(frame.columns) or not {"user_id", "churned_at"} <= set(users.columns):
        return frame
    churned_at = frame["user_id"].map(users.drop_duplicates("user_id").set_index("user_id")["churned_at"])
    return frame.assign(**{AFTER_CHURN: (frame[ts] >= churned_at).fillna(False).astype(bool)})


SAMPLE_KEYS = {"users": "user_id", "events": "event_id", "billing": "billing_id"}
"""The key each table's Great Expectations sample is drawn by (:mod:`churn.quality.gate`)."""
PANDAS_TYPES = {"BIGINT": "int64", "DOUBLE": "float64", "VARCHAR": "str", "TIMESTAMP": "datetime64"}
"""The pandas type a DuckDB column of the documented schema arrives as."""


def type_rules(columns: dict[str, str]) -> list[Expectation]:
    """Great Expectations type checks (column -> DuckDB type of the documented schema), validated
    on the gate's sample: a loader writing ids as text or times as strings fails them."""
    return [
        _rule("ExpectColumnValuesToBeOfType", "column_type", f"{column} is {dtype} (churn.data.schema).",
              column=column, type_=PANDAS_TYPES[dtype])
        for column, dtype in columns.items()
    ]


def validate_raw(
    warehouse: Warehouse,
    *,
    max_timestamp: datetime,
    churn_rate_bounds: tuple[float, float] = (0.02, 0.30),
    increment: Any = None,
    report_dir: Any = None,
    sample_rows: int | None = None,
) -> Any:
    """The simulator's raw tables through the quality gate (:func:`churn.quality.gate.validate_warehouse`):
    :func:`raw_data_suites` over every row in DuckDB, the column types on a seeded sample.
    ``increment``: a daily run's gate (:func:`churn.store.raw_checks.increment`): the rows of
    events and billing loaded since the last passing gate are judged row by row, their ids
    against every row; users (replaced whole by every load) and the aggregates whole."""
    from churn.quality import gate

    return gate.validate_warehouse(
        warehouse,
        raw_data_suites(max_timestamp=max_timestamp, churn_rate_bounds=churn_rate_bounds),
        keys=SAMPLE_KEYS,
        type_rules={name: type_rules({c.name: c.dtype for c in schema.columns}) for name, schema in RAW_TABLES.items()},
        increment=increment,
        report_dir=report_dir,
        sample_rows=gate.SAMPLE_ROWS if sample_rows is None else sample_rows,
    )


def raw_data_suites(
    *,
    max_timestamp: datetime,
    min_timestamp: datetime | None = None,
    churn_rate_bounds: tuple[float, float] = (0.02, 0.30),
) -> dict[str, ExpectationSuite]:
    """One GE suite per raw table; validate frames from :func:`prepare_raw_frames` with it."""
    if min_timestamp is not None and min_timestamp > max_timestamp:
        raise ValueError(f"min_timestamp {min_timestamp} is after max_timestamp {max_timestamp}")
    gx = import_gx()
    suites = {}
    for name, schema in RAW_TABLES.items():
        expectations = [
            *_structure_rules(schema),
            *_value_rules(name, min_timestamp, max_timestamp),
            *_cross_table_rules(name, churn_rate_bounds),
        ]
        meta = {"source": _SOURCE, "table": name, "schema_columns": schema.column_names}
        suites[name] = gx.ExpectationSuite(name=f"raw_{name}", expectations=expectations, meta=meta)
    return suites


def _rule(kind: str, rule: str, notes: str, **kwargs: Any) -> Expectation:
    """Build expectation class ``kind`` with a rule id in meta and a plain-language note."""
    import great_expectations.expectations as gxe

    return getattr(gxe, kind)(meta={"rule": rule, "source": _SOURCE}, notes=notes, **kwargs)


def _structure_rules(schema: TableSchema) -> list[Expectation]:
    """Exact column list, non-empty table, non-null required columns, unique primary key."""
    columns = [*schema.column_names, *DERIVED_COLUMNS[schema.name]]
    derived = ", ".join(DERIVED_COLUMNS[schema.name]) or "none"
    rules = [
        _rule(
            "ExpectTableColumnsToMatchOrderedList", "schema_columns",
            f"Columns must match churn.data.schema exactly, in order "
            f"(plus derived columns appended by prepare_raw_frames: {derived}).",
            column_list=columns,
        ),
        _rule("ExpectTableRowCountToBeBetween", "non_empty", "The table must not be empty.",
              min_value=1),
        _rule("ExpectColumnValuesToBeUnique", "primary_key_unique",
              f"{schema.primary_key} is the primary key: no duplicates.",
              column=schema.primary_key),
    ]
    rules += [
        _rule("ExpectColumnValuesToNotBeNull", "not_null",
              f"{c.name} is declared NOT NULL: {c.doc}.", column=c.name)
        for c in schema.columns
        if not c.nullable
    ]
    return rules


def _value_rules(table: str, low: datetime | None, high: datetime) -> list[Expectation]:
    """Timestamps in range, non-negative money, categorical values in their documented sets.

    Without ``low`` any past date is accepted: only future timestamps are refused."""
    window = f"[{low}, {high}]" if low is not None else f"(-inf, {high}]"
    rules = [
        _rule("ExpectColumnValuesToBeBetween", "timestamp_in_range",
              f"{column} must lie in the data window {window} (nothing from the future).",
              column=column, max_value=high, **({"min_value": low} if low is not None else {}))
        for column in TIMESTAMP_COLUMNS[table]
    ]
    rules += [
        _rule("ExpectColumnValuesToBeBetween", "non_negative", f"{column} is in USD and >= 0.",
              column=column, min_value=0)
        for column in NON_NEGATIVE.get(table, ())
    ]
    rules += [
        _rule("ExpectColumnValuesToBeInSet", "allowed_values",
              f"{column} must be one of {list(values)} (churn.data.schema).",
              column=column, value_set=list(values))
        for column, values in ALLOWED_VALUES[table].items()
    ]
    return rules


def _cross_table_rules(table: str, churn_rate_bounds: tuple[float, float]) -> list[Expectation]:
    """Users: plausible churn share. Events/billing: every row's user exists, none after churn."""
    if table == "users":
        low, high = churn_rate_bounds
        return [_rule(
            "ExpectColumnProportionOfNonNullValuesToBeBetween", "churn_share",
            f"Share of churned users (churned_at set) must be within [{low}, {high}]; "
            "outside it the data or the label is probably broken.",
            column="churned_at", min_value=low, max_value=high,
        )]
    return [_user_exists_rule(table), _nothing_after_churn_rule(table)]


def _flagged_rows_rule(rule: str, notes: str, flag: str, flagged: bool) -> Expectation:
    """No row may have ``flag == flagged``; the offending user_ids are the examples.

    Restricting to the flagged rows and allowing no value at all makes every such row
    unexpected, so GE reports the user_ids (not just a boolean)."""
    from great_expectations.expectations.row_conditions import Column

    return _rule("ExpectColumnValuesToBeInSet", rule, notes, column="user_id", value_set=[],
                 row_condition=Column(flag) == flagged)


def _user_exists_rule(table: str) -> Expectation:
    return _flagged_rows_rule(
        "user_exists",
        f"Every {table} row's user_id must exist in users.user_id "
        f"(rows with {USER_KNOWN} == False, derived by prepare_raw_frames, are violations).",
        USER_KNOWN, False)


def _nothing_after_churn_rule(table: str) -> Expectation:
    return _flagged_rows_rule(
        "nothing_after_churn",
        f"No {table} row may be at or after its user's churned_at "
        f"(rows with {AFTER_CHURN} == True, derived by prepare_raw_frames, are violations).",
        AFTER_CHURN, True)
