"""Monitoring storage: ``monitoring.drift_reports``, ``metrics_timeline``, ``alerts``,
``retraining_decisions``, ``api_metrics``.

Every run appends its rows under its ``as_of`` (a re-run of the same run replaces them). Alerts
have a life: a breached condition (metric, subject) opens one alert row, which stays open while
the condition holds on later runs and is resolved, with the date, on the first run where it
clears. Tables are declared with explicit columns; a warehouse written by an older version gets
the missing columns added in place (declared in :mod:`churn.store.tables`).
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import duckdb
import pandas as pd

from churn.store import tables
from churn.store.warehouse import Warehouse

DRIFT, TIMELINE, ALERTS, DECISIONS = ("monitoring.drift_reports", "monitoring.metrics_timeline",
                                      "monitoring.alerts", "monitoring.retraining_decisions")
API_METRICS = "monitoring.api_metrics"

TABLES = {DRIFT: tables.DRIFT_REPORTS, TIMELINE: tables.METRICS_TIMELINE, ALERTS: tables.ALERTS,
          DECISIONS: tables.RETRAINING_DECISIONS}


def _now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC").tz_localize(None)


def declare(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Create ``table`` from its declaration in :mod:`churn.store.tables` unless it exists (the
    writer's ``ensure`` already added the columns an older warehouse lacks)."""
    tables.create(con, TABLES[table])
    if table == ALERTS:  # rows written before alerts had a life: their condition is metric:subject
        con.execute(f"UPDATE {ALERTS} SET condition = metric || ':' || coalesce(subject, '') WHERE condition IS NULL")


def _names(table: str, frame: pd.DataFrame) -> list[str]:
    """The declared columns of ``table`` that ``frame`` has, in declared order."""
    return [c for c in TABLES[table].column_names if c in frame.columns]


def _replace_run(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame, run_id: str) -> None:
    """Replace the rows of run ``run_id`` in ``table`` with ``frame`` (declared columns only)."""
    declare(con, table)
    con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
    if len(frame):
        names = _names(table, frame)
        rows = frame[names]  # noqa: F841 - read by DuckDB
        con.execute(f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(names)} FROM rows")


def matured_snapshots(warehouse: Warehouse, model_version: int, before_run: str) -> set[pd.Timestamp]:
    """Snapshots whose performance an earlier run (not ``before_run``) of ``model_version`` stored."""
    sql = f"SELECT DISTINCT snapshot_at FROM {TIMELINE} WHERE model_version = ? AND run_id <> ?"
    frame = warehouse.read_if_exists(TIMELINE, sql, [int(model_version), before_run])
    return {pd.Timestamp(s) for s in frame.get("snapshot_at", [])}


def write_monitoring_run(warehouse: Warehouse, run_id: str, drift: pd.DataFrame, timeline: pd.DataFrame,
                         alerts: pd.DataFrame, as_of: date | None = None) -> dict[str, int]:
    """Store one monitoring run and move the alerts' life on, in one transaction.

    ``alerts`` are the conditions breached now (``condition`` = metric:subject); an open alert of
    a condition breached again stays open (``last_seen_on`` moves), one whose condition cleared
    (or is no longer observed) is resolved on ``as_of``, a newly breached condition opens a new
    alert. Returns counts: ``new``, ``still_open``, ``resolved``.
    """
    on = as_of or _now().date()
    with warehouse.writer() as con, warehouse.transaction(con):
        _replace_run(con, DRIFT, drift.assign(run_id=run_id, run_at=_now(), as_of=on), run_id)
        _replace_run(con, TIMELINE, timeline.assign(run_id=run_id, run_at=_now(), as_of=on), run_id)
        return _advance_alerts(con, alerts, on)


def _advance_alerts(con: duckdb.DuckDBPyConnection, alerts: pd.DataFrame, on: date) -> dict[str, int]:
    declare(con, ALERTS)
    opened = con.execute(f"SELECT alert_key, condition FROM {ALERTS} WHERE status = 'open'").df()
    breached = alerts.assign(condition=alerts.metric + ":" + alerts.subject.fillna("")) if len(alerts) else alerts
    now = set(breached.condition) if len(breached) else set()
    held = opened[opened.condition.isin(now)]
    cleared = opened[~opened.condition.isin(now)]
    for row in breached[breached.condition.isin(set(held.condition))].itertuples() if len(breached) else []:
        con.execute(f"UPDATE {ALERTS} SET last_seen_on = ?, value = ?, message = ? "
                    "WHERE status = 'open' AND condition = ?", [on, row.value, row.message, row.condition])
    for key in cleared.alert_key:
        con.execute(f"UPDATE {ALERTS} SET status = 'resolved', resolved_on = ?, resolved_at = ?, resolution = "
                    "'the condition cleared (or is no longer observed)' WHERE alert_key = ?", [on, _now(), key])
    fresh = breached[~breached.condition.isin(set(opened.condition))] if len(breached) else breached
    new = 0
    if len(fresh):
        rows = fresh.assign(status="open", raised_at=_now(), raised_on=on, last_seen_on=on)
        names = _names(ALERTS, rows)
        before = con.execute(f"SELECT count(*) FROM {ALERTS}").fetchall()[0][0]
        con.execute(f"INSERT OR IGNORE INTO {ALERTS} ({', '.join(names)}) SELECT {', '.join(names)} FROM rows")
        new = int(con.execute(f"SELECT count(*) FROM {ALERTS}").fetchall()[0][0] - before)
    return {"new": new, "still_open": len(held), "resolved": len(cleared)}


def write_retraining_decision(warehouse: Warehouse, model_name: str, model_version: int,
                              triggers: pd.DataFrame, action: str, candidate_version: int | None,
                              as_of: date | None = None, reasons: list[str] | None = None,
                              matured_labels: int | None = None) -> None:
    """Append one decision with its triggers (JSON) and the reasons for the action taken."""
    row = pd.DataFrame([{
        "decided_at": _now(), "model_name": model_name, "model_version": int(model_version),
        "retrain": bool(triggers["fired"].any()), "action": action,
        "candidate_version": candidate_version, "triggers": json.dumps(triggers.to_dict("records"), default=str),
        "as_of": as_of, "reasons": json.dumps(reasons or []), "matured_labels": matured_labels,
    }])  # fmt: skip
    with warehouse.writer() as con, warehouse.transaction(con):
        declare(con, DECISIONS)
        names = _names(DECISIONS, row)
        con.execute(f"INSERT INTO {DECISIONS} ({', '.join(names)}) SELECT {', '.join(names)} FROM row")


def read_table(warehouse: Warehouse, table: str, where: str = "", params: list[Any] | None = None) -> pd.DataFrame:
    """A monitoring table (empty frame when the phase that fills it has not run yet)."""
    return warehouse.read_if_exists(table, f"SELECT * FROM {table} {where}", params)


def latest_run(warehouse: Warehouse, table: str) -> pd.DataFrame:
    return read_table(warehouse, table, f"WHERE run_at = (SELECT max(run_at) FROM {table})")


def runs_by_as_of(warehouse: Warehouse, table: str) -> pd.DataFrame:
    """The rows of the newest run of each ``as_of`` (one run per day, re-runs replaced)."""
    return read_table(warehouse, table, "QUALIFY run_at = max(run_at) OVER (PARTITION BY as_of) ORDER BY as_of")


def write_api_metrics(warehouse: Warehouse, run_id: str, figures: dict[str, Any]) -> None:
    """Append the serving API's operational figures as seen by one monitoring run."""
    row = pd.DataFrame([{"run_id": run_id, "run_at": _now(), **figures}])
    with warehouse.writer() as con, warehouse.transaction(con):
        Warehouse.append(con, API_METRICS, row, create=True)
