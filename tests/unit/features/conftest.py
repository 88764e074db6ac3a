"""Tiny hand-made raw tables in an in-memory DuckDB, in the documented raw schema."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import duckdb
import pandas as pd
import pytest

from churn.data.schema import RAW_SCHEMA_NAME, RAW_TABLES

USER_DEFAULTS = {"plan": "basic", "monthly_price": 9.99, "country": "US",
                 "acquisition_channel": "organic", "churned_at": None}  # fmt: skip
Rows = Callable[..., None]


@pytest.fixture()
def raw_con() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory database holding empty raw_data.users/events/billing tables."""
    con = duckdb.connect(config={"threads": 1})
    con.execute(f"CREATE SCHEMA {RAW_SCHEMA_NAME}")
    for table in RAW_TABLES.values():
        con.execute(table.ddl())
    yield con
    con.close()


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict]) -> None:
    """Append dict rows to ``raw_data.<table>``, filling ids and user defaults."""
    if not rows:
        return
    frame = pd.DataFrame(rows)
    if table == "users":
        frame = pd.DataFrame([{**USER_DEFAULTS, **r} for r in rows])
        frame["churned_at"] = pd.to_datetime(frame["churned_at"], format="ISO8601")
    key = RAW_TABLES[table].primary_key
    if key not in frame:
        start = con.execute(f"SELECT coalesce(max({key}), 0) + 1 FROM raw_data.{table}").fetchall()[0][0]
        frame[key] = range(start, start + len(frame))
    for column in frame.columns:
        if column.endswith("_at"):
            frame[column] = pd.to_datetime(frame[column], format="ISO8601").astype("datetime64[us]")
    con.execute(f"INSERT INTO raw_data.{table} BY NAME SELECT * FROM frame")


@pytest.fixture()
def add_rows(raw_con: duckdb.DuckDBPyConnection) -> Rows:
    """``add_rows("events", [{...}, ...])`` appends to the fixture database."""
    return lambda table, rows: insert_rows(raw_con, table, rows)
