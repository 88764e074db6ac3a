"""Monitoring storage: ``monitoring.drift_reports``, ``metrics_timeline``, ``alerts``,
``retraining_decisions``, ``api_metrics``.

Every run appends its rows under its ``as_of`` (a re-run of the same run replaces them). Alerts
have a life: a breached condition (metric, subject) opens one alert row, which stays open while
the condition holds on later runs and is resolved, with the date, on the first run where it
clears. Tables are declared with explicit columns; a warehouse written by an older version gets
the missing columns added in place (``ALTER TABLE ... ADD COLUMN IF NOT EXISTS``).
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import duckdb
import pandas as pd

from churn.store.warehouse import Warehouse

DRIFT, TIMELINE, ALERTS, DECISIONS = ("monitoring.drift_reports", "monitoring.metrics_timeline",
                                      "monitoring.alerts", "monitoring.retraining_decisions")
API_METRICS = "monitoring.api_metrics"

# table -> (column, type) in order; the first CREATE makes them, later versions only ADD.
COLUMNS: dict[str, list[tuple[str, str]]] = {
    DRIFT: [
        ("run_id", "VARCHAR NOT NULL"), ("run_at", "TIMESTAMP NOT NULL"), ("as_of", "DATE"),
        ("model_version", "INTEGER"), ("feature", "VARCHAR NOT NULL"), ("test", "VARCHAR NOT NULL"),
        ("status", "VARCHAR"), ("statistic", "DOUBLE"), ("p_value", "DOUBLE"), ("p_adjusted", "DOUBLE"),
        ("effect_size", "DOUBLE"), ("threshold", "DOUBLE"), ("drifted", "BOOLEAN"), ("n_reference", "BIGINT"),
        ("n_current", "BIGINT"), ("note", "VARCHAR"), ("expected_drift", "BOOLEAN"), ("drift_onset", "DATE"),
    ],
    TIMELINE: [
        ("run_id", "VARCHAR NOT NULL"), ("run_at", "TIMESTAMP NOT NULL"), ("as_of", "DATE"),
        ("model_version", "INTEGER"), ("snapshot_at", "TIMESTAMP NOT NULL"), ("vectors", "BIGINT"),
        ("churners", "BIGINT"), ("churn_rate", "DOUBLE"), ("auc", "DOUBLE"), ("precision", "DOUBLE"),
        ("recall", "DOUBLE"), ("brier", "DOUBLE"), ("mean_predicted", "DOUBLE"), ("in_training", "BOOLEAN"),
        ("note", "VARCHAR"), ("newly_matured", "BOOLEAN"),
    ],
    ALERTS: [
        ("alert_key", "VARCHAR PRIMARY KEY"), ("severity", "VARCHAR NOT NULL"), ("metric", "VARCHAR NOT NULL"),
        ("subject", "VARCHAR"), ("value", "DOUBLE"), ("threshold", "DOUBLE"), ("period", "VARCHAR"),
        ("message", "VARCHAR NOT NULL"), ("status", "VARCHAR NOT NULL"), ("raised_at", "TIMESTAMP NOT NULL"),
        ("condition", "VARCHAR"), ("raised_on", "DATE"), ("last_seen_on", "DATE"), ("resolved_on", "DATE"),
        ("resolved_at", "TIMESTAMP"), ("resolution", "VARCHAR"),
    ],
    DECISIONS: [
        ("decided_at", "TIMESTAMP NOT NULL"), ("model_name", "VARCHAR NOT NULL"), ("model_version", "INTEGER"),
        ("retrain", "BOOLEAN NOT NULL"), ("action", "VARCHAR NOT NULL"), ("candidate_version", "INTEGER"),
        ("triggers", "VARCHAR"), ("as_of", "DATE"), ("reasons", "VARCHAR"), ("matured_labels", "BIGINT"),
    ],
}


def _now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC").tz_localize(None)


def declare(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Create ``table`` with its declared columns, or add the ones an older warehouse lacks."""
    columns = COLUMNS[table]
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
    con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(f'{c} {t}' for c, t in columns)})")
    for column, kind in columns:
        # an added column cannot carry constraints: existing rows have no value for it
        bare = kind.replace(" NOT NULL", "").replace(" PRIMARY KEY", "")
        con.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {bare}")
    if table == ALERTS:  # rows written before alerts had a life: their condition is metric:subject
        con.execute(f"UPDATE {ALERTS} SET condition = metric || ':' || coalesce(subject, '') WHERE condition IS NULL")


def _replace_run(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame, run_id: str) -> None:
    """Replace the rows of run ``run_id`` in ``table`` with ``frame`` (declared columns only)."""
    declare(con, table)
    con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
    if len(frame):
        names = [c for c, _ in COLUMNS[table] if c in frame.columns]
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
        names = [c for c, _ in COLUMNS[ALERTS] if c in rows.columns]
        before = con.execute(f"SELECT count(*) FROM {ALERTS}").fetchall()[0][0]
        con.execute(f"INSERT OR IGNORE INTO {ALERTS} ({', '.join(names)}) SELECT {', '.join(names)} FROM rows")
        new = int(con.execute(f"SELECT count(*) FROM {ALERTS}").fetchall()[0][0] - before)
    return {"new": new, "still_open": len(held), "resolved": len(cleared)}


def write_retraining_decision(warehouse: Warehouse, model_name: str, model_version: int,
                              triggers: pd.DataFrame, action: str, candidate_version: int | None,
                              as_of: date | None = None, reasons: list[str] | None = None,
                              matured_labels: int | None = None) -> None:
    """Append one decision with its triggers (JSON) and the reasons for the action taken."""
    row = pd.DataFrame([{  # noqa: F841 - read by DuckDB
        "decided_at": _now(), "model_name": model_name, "model_version": int(model_version),
        "retrain": bool(triggers["fired"].any()), "action": action,
        "candidate_version": candidate_version, "triggers": json.dumps(triggers.to_dict("records"), default=str),
        "as_of": as_of, "reasons": json.dumps(reasons or []), "matured_labels": matured_labels,
    }])  # fmt: skip
    with warehouse.writer() as con, warehouse.transaction(con):
        declare(con, DECISIONS)
        names = [c for c, _ in COLUMNS[DECISIONS]]
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
