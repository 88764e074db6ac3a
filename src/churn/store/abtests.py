"""A/B test storage: ``ml_pipeline.ab_tests``, ``ab_assignments``, ``ab_results`` (per user) and
``ab_looks`` (one row per sequential look of a test that spans daily cycles)."""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pandas as pd

from churn.store import tables
from churn.store.warehouse import Warehouse

TESTS, ASSIGNMENTS, RESULTS = tables.AB_TESTS.name, tables.AB_ASSIGNMENTS.name, tables.AB_RESULTS.name
LOOKS = tables.AB_LOOKS.name


def _now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC").tz_localize(None)


def create_test(warehouse: Warehouse, row: dict[str, Any], assignments: pd.DataFrame) -> None:
    """Insert a test and its assignments in one transaction (nothing half-created on error)."""
    with warehouse.writer() as con, warehouse.transaction(con):
        tables.create(con, tables.AB_TESTS, tables.AB_ASSIGNMENTS, tables.AB_RESULTS)
        con.execute(
            f"INSERT INTO {TESTS} (test_name, model_name, control_version, variant_version, traffic_split, "
            "status, params, started_at) VALUES (?, ?, ?, ?, ?, 'running', ?, ?)",
            [row["test_name"], row["model_name"], row["control_version"], row["variant_version"],
             row["traffic_split"], json.dumps(row.get("params", {})), _now()],
        )
        Warehouse.append(con, ASSIGNMENTS, assignments.assign(test_name=row["test_name"], assigned_at=_now()))


def write_results(warehouse: Warehouse, test_name: str, outcomes: pd.DataFrame) -> int:
    """Replace the per-user outcomes of ``test_name``."""
    columns = ["user_id", "arm", "score", "offered", "churned", "observed_day", "log_loss"]
    with warehouse.writer() as con, warehouse.transaction(con):
        tables.create(con, tables.AB_RESULTS)
        con.execute(f"DELETE FROM {RESULTS} WHERE test_name = ?", [test_name])
        Warehouse.append(con, RESULTS, outcomes[columns].assign(test_name=test_name))
    return len(outcomes)


def conclude_test(warehouse: Warehouse, test_name: str, decision: str, reasons: list[str],
                  con: duckdb.DuckDBPyConnection | None = None) -> None:
    """Mark a running test concluded with its decision; with ``con`` inside the caller's
    transaction (the registry change the decision makes commits with it, or neither does)."""
    if con is None:
        with warehouse.writer() as own, warehouse.transaction(own):
            return conclude_test(warehouse, test_name, decision, reasons, own)
    updated = con.execute(f"UPDATE {TESTS} SET status = 'concluded', concluded_at = ?, decision = ?, reasons = ? "
                          "WHERE test_name = ? AND status = 'running' RETURNING test_name",
                          [_now(), decision, json.dumps(reasons), test_name]).fetchall()
    if not updated:
        raise ValueError(f"A/B test {test_name!r} is not running (unknown or already concluded)")


def write_look(con: duckdb.DuckDBPyConnection, look: dict[str, Any]) -> None:
    """Store one look inside the caller's transaction (with the conclusion it led to, if any)."""
    tables.create(con, tables.AB_LOOKS)
    names = tables.AB_LOOKS.column_names
    row = pd.DataFrame([{**look, "looked_at": _now()}])[names]  # noqa: F841 - read by DuckDB
    con.execute(f"INSERT INTO {LOOKS} ({', '.join(names)}) SELECT * FROM row")


def read_looks(warehouse: Warehouse, test_name: str | None = None) -> pd.DataFrame:
    """The looks of ``test_name`` (every test's without it), in order."""
    where, params = ("WHERE test_name = ?", [test_name]) if test_name else ("", [])
    return warehouse.read_if_exists(LOOKS, f"SELECT * FROM {LOOKS} {where} ORDER BY test_name, look", params)


def mark_rolled_back(con: duckdb.DuckDBPyConnection, test_name: str, reason: str) -> None:
    """A promoted test whose variant was rolled back: status ``rolled_back``, the reason appended."""
    rows = con.execute(f"SELECT reasons FROM {TESTS} WHERE test_name = ? AND decision = 'promote'", [test_name]).fetchall()
    if not rows:
        raise ValueError(f"A/B test {test_name!r} did not promote its variant: nothing to roll back")
    reasons = [*json.loads(rows[0][0] or "[]"), reason]
    con.execute(f"UPDATE {TESTS} SET status = 'rolled_back', reasons = ? WHERE test_name = ?",
                [json.dumps(reasons), test_name])


def get_test(warehouse: Warehouse, test_name: str) -> dict[str, Any] | None:
    frame = warehouse.read_if_exists(TESTS, f"SELECT * FROM {TESTS} WHERE test_name = ?", [test_name])
    if frame.empty:
        return None
    row = {str(k): v for k, v in frame.iloc[0].to_dict().items()}  # to_dict gives Python scalars
    row["params"] = json.loads(row["params"])
    row["reasons"] = json.loads(row["reasons"]) if isinstance(row.get("reasons"), str) else []
    return row


def list_tests(warehouse: Warehouse) -> pd.DataFrame:
    return warehouse.read_if_exists(TESTS, f"SELECT * FROM {TESTS} ORDER BY started_at")


def read_assignments(warehouse: Warehouse, test_name: str) -> pd.DataFrame:
    sql = f"SELECT user_id, arm FROM {ASSIGNMENTS} WHERE test_name = ? ORDER BY user_id"
    return warehouse.read_if_exists(ASSIGNMENTS, sql, [test_name])


def read_results(warehouse: Warehouse, test_name: str) -> pd.DataFrame:
    return warehouse.read_if_exists(RESULTS, f"SELECT * FROM {RESULTS} WHERE test_name = ? ORDER BY user_id", [test_name])
