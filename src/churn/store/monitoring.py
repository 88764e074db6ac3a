"""Monitoring storage: ``monitoring.drift_reports``, ``metrics_timeline``, ``alerts``,
``retraining_decisions``. Alerts are keyed, so each is raised once, not once per build."""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pandas as pd

from churn.store import tables
from churn.store.warehouse import Warehouse

DRIFT, TIMELINE, ALERTS, DECISIONS = ("monitoring.drift_reports", "monitoring.metrics_timeline",
                                      "monitoring.alerts", "monitoring.retraining_decisions")


def _now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC").tz_localize(None)


def _replace_where(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame, column: str, value: Any) -> None:
    """Replace the rows of ``table`` whose ``column`` equals ``value`` with ``frame``."""
    if Warehouse.table_exists(con, table):
        con.execute(f"DELETE FROM {table} WHERE {column} = ?", [value])
    Warehouse.append(con, table, frame, create=True)


def write_monitoring_run(warehouse: Warehouse, run_id: str, drift: pd.DataFrame, timeline: pd.DataFrame,
                         alerts: pd.DataFrame) -> int:
    """Store one monitoring run (drift + timeline replace that run's rows); returns new alerts."""
    with warehouse.writer() as con, warehouse.transaction(con):
        _replace_where(con, DRIFT, drift.assign(run_id=run_id, run_at=_now()), "run_id", run_id)
        _replace_where(con, TIMELINE, timeline.assign(run_id=run_id, run_at=_now()), "run_id", run_id)
        tables.create(con, tables.ALERTS)
        before = con.execute(f"SELECT count(*) FROM {ALERTS}").fetchall()[0][0]
        if len(alerts):
            fresh = alerts.assign(status="open", raised_at=_now())  # noqa: F841 - read by DuckDB
            con.execute(f"INSERT OR IGNORE INTO {ALERTS} BY NAME SELECT * FROM fresh")
        return int(con.execute(f"SELECT count(*) FROM {ALERTS}").fetchall()[0][0] - before)


def write_retraining_decision(warehouse: Warehouse, model_name: str, model_version: int,
                              triggers: pd.DataFrame, action: str, candidate_version: int | None) -> None:
    row = pd.DataFrame([{
        "decided_at": _now(), "model_name": model_name, "model_version": int(model_version),
        "retrain": bool(triggers["fired"].any()), "action": action,
        "candidate_version": candidate_version, "triggers": json.dumps(triggers.to_dict("records"), default=str),
    }])  # fmt: skip
    with warehouse.writer() as con, warehouse.transaction(con):
        Warehouse.append(con, DECISIONS, row, create=True)


def read_table(warehouse: Warehouse, table: str, where: str = "", params: list[Any] | None = None) -> pd.DataFrame:
    """A monitoring table (empty frame when the phase that fills it has not run yet)."""
    return warehouse.read_if_exists(table, f"SELECT * FROM {table} {where}", params)


def latest_run(warehouse: Warehouse, table: str) -> pd.DataFrame:
    return read_table(warehouse, table, f"WHERE run_at = (SELECT max(run_at) FROM {table})")


API_METRICS = "monitoring.api_metrics"


def write_api_metrics(warehouse: Warehouse, run_id: str, figures: dict[str, Any]) -> None:
    """Append the serving API's operational figures as seen by one monitoring run."""
    row = pd.DataFrame([{"run_id": run_id, "run_at": _now(), **figures}])
    with warehouse.writer() as con, warehouse.transaction(con):
        Warehouse.append(con, API_METRICS, row, create=True)
