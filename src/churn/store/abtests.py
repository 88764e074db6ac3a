"""A/B test storage: ``ml_pipeline.ab_tests``, ``ab_assignments``, ``ab_results`` (per user) and
``ab_looks`` (one row per sequential look of a test that spans daily cycles)."""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pandas as pd

from churn.store.warehouse import Warehouse

TESTS, ASSIGNMENTS, RESULTS = "ml_pipeline.ab_tests", "ml_pipeline.ab_assignments", "ml_pipeline.ab_results"
LOOKS = "ml_pipeline.ab_looks"
LOOK_COLUMNS: list[tuple[str, str]] = [
    ("test_name", "VARCHAR NOT NULL"), ("look", "INTEGER NOT NULL"), ("as_of", "DATE NOT NULL"),
    ("test_day", "INTEGER NOT NULL"), ("n_control", "BIGINT NOT NULL"), ("conv_control", "BIGINT NOT NULL"),
    ("n_variant", "BIGINT NOT NULL"), ("conv_variant", "BIGINT NOT NULL"), ("difference", "DOUBLE"),
    ("likelihood_ratio", "DOUBLE"), ("p_value", "DOUBLE"), ("alpha", "DOUBLE NOT NULL"),
    ("decision", "VARCHAR NOT NULL"), ("looked_at", "TIMESTAMP NOT NULL"),
]
LOOKS_DDL = (f"CREATE TABLE IF NOT EXISTS {LOOKS} ({', '.join(f'{c} {t}' for c, t in LOOK_COLUMNS)}, "
             "PRIMARY KEY (test_name, look), UNIQUE (test_name, as_of))")
DDL = (
    f"""CREATE TABLE IF NOT EXISTS {TESTS} (
        test_name VARCHAR PRIMARY KEY, model_name VARCHAR NOT NULL, control_version INTEGER NOT NULL,
        variant_version INTEGER NOT NULL, traffic_split DOUBLE NOT NULL, status VARCHAR NOT NULL,
        params JSON NOT NULL, started_at TIMESTAMP NOT NULL, concluded_at TIMESTAMP,
        decision VARCHAR, reasons JSON)""",
    f"""CREATE TABLE IF NOT EXISTS {ASSIGNMENTS} (
        test_name VARCHAR NOT NULL, user_id BIGINT NOT NULL, arm VARCHAR NOT NULL,
        assigned_at TIMESTAMP NOT NULL, PRIMARY KEY (test_name, user_id))""",
    f"""CREATE TABLE IF NOT EXISTS {RESULTS} (
        test_name VARCHAR NOT NULL, user_id BIGINT NOT NULL, arm VARCHAR NOT NULL, score DOUBLE NOT NULL,
        offered BOOLEAN NOT NULL, churned BOOLEAN NOT NULL, observed_day INTEGER NOT NULL, log_loss DOUBLE NOT NULL,
        PRIMARY KEY (test_name, user_id))""",
)


def _now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC").tz_localize(None)


def create_test(warehouse: Warehouse, row: dict[str, Any], assignments: pd.DataFrame) -> None:
    """Insert a test and its assignments in one transaction (nothing half-created on error)."""
    with warehouse.writer() as con, warehouse.transaction(con):
        for ddl in DDL:
            con.execute(ddl)
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
        con.execute(DDL[2])
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
    con.execute(LOOKS_DDL)
    row = pd.DataFrame([{**look, "looked_at": _now()}])[[c for c, _ in LOOK_COLUMNS]]  # noqa: F841 - read by DuckDB
    con.execute(f"INSERT INTO {LOOKS} SELECT * FROM row")


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
