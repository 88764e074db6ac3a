"""The model registry's tables: ``ml_pipeline.models`` and ``ml_pipeline.model_events``.

Only SQL lives here; the registry's rules (stages, rollback, immutability, artifacts) stay in
``churn.registry``. Every function runs on the caller's connection: writes inside the caller's
transaction, reads on a reader or inside that transaction (to see its own writes).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from churn.store import tables
from churn.store.warehouse import Warehouse

Con = duckdb.DuckDBPyConnection
MODELS_TABLE = tables.MODELS.name
EVENTS_TABLE = tables.MODEL_EVENTS.name
VERSION_COLUMNS: list[str] = tables.MODELS.column_names
EVENT_COLUMNS: list[str] = tables.MODEL_EVENTS.column_names
_QUOTED_EVENTS = ", ".join(f'"{c}"' for c in EVENT_COLUMNS)  # "at" is a keyword


def create(con: Con) -> None:
    """Create both tables if they are missing (inside the caller's transaction)."""
    tables.create(con, tables.MODELS, tables.MODEL_EVENTS)


def exist(con: Con) -> bool:
    """Whether anything was ever registered in this warehouse."""
    return Warehouse.table_exists(con, MODELS_TABLE)


def select_versions(
    con: Con, model_name: str | None = None, stage: str | None = None, version: int | None = None
) -> list[tuple[Any, ...]]:
    """Rows of ``ml_pipeline.models`` (columns in :data:`VERSION_COLUMNS` order) matching every
    given filter, by name and version."""
    filters = {"model_name": model_name, "stage": stage, "version": version}
    given = {k: v for k, v in filters.items() if v is not None}
    where = " AND ".join(f"{k} = ?" for k in given)
    sql = (f"SELECT {', '.join(VERSION_COLUMNS)} FROM {MODELS_TABLE} {'WHERE ' + where if where else ''} "
           "ORDER BY model_name, version")  # fmt: skip
    return con.execute(sql, list(given.values())).fetchall()


def production_artifact(con: Con, model_name: str) -> tuple[int, str] | None:
    """(version, artifact sha256) of the production version, None without one."""
    rows = con.execute(
        f"SELECT version, artifact_sha256 FROM {MODELS_TABLE} WHERE model_name = ? AND stage = 'production'",
        [model_name],
    ).fetchall()
    return (int(rows[0][0]), str(rows[0][1])) if rows else None


def count_production(con: Con, model_name: str) -> int:
    rows = con.execute(
        f"SELECT count(*) FROM {MODELS_TABLE} WHERE model_name = ? AND stage = 'production'", [model_name]
    ).fetchall()
    return int(rows[0][0])


def next_version(con: Con, model_name: str) -> int:
    """One more than the highest version of ``model_name`` (1 for a new name)."""
    rows = con.execute(
        f"SELECT coalesce(max(version), 0) + 1 FROM {MODELS_TABLE} WHERE model_name = ?", [model_name]
    ).fetchall()
    return int(rows[0][0])


def insert_version(con: Con, row: dict[str, Any], at: datetime) -> None:
    """Insert a new version in stage ``none``; JSON columns are given as text."""
    con.execute(
        f"INSERT INTO {MODELS_TABLE} ({', '.join(VERSION_COLUMNS)}) VALUES (?, ?, 'none', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            row["model_name"], row["version"], row["metrics"], row["params"], row["features"],
            row.get("training_data_fingerprint"), row.get("code_version"),
            row["artifact_path"], row["artifact_sha256"], at, at,
        ],
    )  # fmt: skip


def update_stage(con: Con, model_name: str, version: int, stage: str, at: datetime) -> None:
    con.execute(
        f"UPDATE {MODELS_TABLE} SET stage = ?, updated_at = ? WHERE model_name = ? AND version = ?",
        [stage, at, model_name, version],
    )


def add_event(
    con: Con, model_name: str, version: int, event: str, from_stage: str | None,
    to_stage: str | None, reason: str, at: datetime,
) -> None:  # fmt: skip
    """Append one history row; event_id is max + 1 (safe: DuckDB allows a single writer)."""
    con.execute(
        f"INSERT INTO {EVENTS_TABLE} ({_QUOTED_EVENTS}) SELECT coalesce(max(event_id), 0) + 1, ?, ?, ?, ?, ?, ?, ? "
        f"FROM {EVENTS_TABLE}",
        [model_name, version, event, from_stage, to_stage, reason, at],
    )


def select_events(con: Con, model_name: str | None = None) -> pd.DataFrame:
    """The change history (oldest first), optionally of one model name."""
    if not Warehouse.table_exists(con, EVENTS_TABLE):
        return pd.DataFrame(columns=EVENT_COLUMNS)
    where, params = ("WHERE model_name = ?", [model_name]) if model_name is not None else ("", [])
    return con.execute(f"SELECT {_QUOTED_EVENTS} FROM {EVENTS_TABLE} {where} ORDER BY event_id", params).df()


def last_production_exit(con: Con, model_name: str, exclude: int) -> int | None:
    """The version most recently demoted from production other than by a rollback (not ``exclude``)."""
    rows = con.execute(
        f"""
        WITH last_exit AS (
            SELECT version, arg_max(event, event_id) AS event, max(event_id) AS last_id
            FROM {EVENTS_TABLE}
            WHERE model_name = ? AND from_stage = 'production' AND to_stage <> 'production'
            GROUP BY version)
        SELECT version FROM last_exit WHERE event <> 'rolled_back' AND version <> ?
        ORDER BY last_id DESC LIMIT 1""",
        [model_name, exclude],
    ).fetchall()
    return int(rows[0][0]) if rows else None
