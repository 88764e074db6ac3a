"""The run ledger: one row per pipeline run and one per task of it, in ``<data_dir>/runs.duckdb``.

A DuckDB file of its own, next to the warehouse, so recording a run never waits for (or blocks)
the warehouse's single writer. Only the run holding the run lock writes it (see ``churn.runs``);
each write opens, commits and closes at once, so readers (``churn runs``, tests) get in between.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from churn.store import tables
from churn.store.tables import RUN_STATUSES
from churn.store.warehouse import Warehouse

__all__ = ["LEDGER_FILE", "RUN_STATUSES", "RunLedger"]

LEDGER_FILE = "runs.duckdb"
LOCK_WAIT_S = 10.0  # how long an open waits for another process's open of the ledger


class RunLedger:
    """The ledger of one data dir.

    Args:
        data_dir: the workspace's data folder (the ledger is ``data_dir/runs.duckdb``).
    """

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.path = Path(data_dir) / LEDGER_FILE

    def _connect(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        """Open the ledger, waiting out another process's short open (a reader blocks a writer
        in DuckDB and the other way round; every open here lasts milliseconds)."""
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @contextmanager
    def _writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = self._connect(read_only=False)
        try:
            tables.ensure(con, tables.LEDGER)
            tables.create(con, tables.RUNS, tables.RUN_TASKS)
            with Warehouse.transaction(con):
                yield con
        finally:
            con.close()

    def start(self, row: dict[str, Any]) -> None:
        """Insert a run in status ``running`` (keys: the ``runs`` columns but status/finished_at)."""
        with self._writer() as con:
            con.execute(
                "INSERT INTO runs (run_id, as_of, params, code_version, status, pid, host, started_at, planned, "
                "forced, repaired_run) VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?)",
                [row["run_id"], row.get("as_of"), _json(row.get("params", {})), row.get("code_version"),
                 row["pid"], row["host"], row["started_at"], _json(row.get("planned", [])),
                 _json(row.get("forced", {})), row.get("repaired_run")],
            )  # fmt: skip

    def finish(self, run_id: str, status: str, tasks: list[dict[str, Any]], error: str | None = None) -> None:
        """Close a run with its final status and its per-task rows, in one transaction."""
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}: expected one of {', '.join(RUN_STATUSES)}")
        with self._writer() as con:
            con.execute(
                "UPDATE runs SET status = ?, finished_at = ?, error = ? WHERE run_id = ?",
                [status, _now(), error, run_id],
            )
            con.execute("DELETE FROM run_tasks WHERE run_id = ?", [run_id])
            for task in tasks:
                con.execute(
                    "INSERT INTO run_tasks VALUES (?, ?, ?, ?, ?)",
                    [
                        run_id,
                        task["task"],
                        task["status"],
                        task.get("elapsed_s"),
                        _json(task.get("outputs")) if task.get("outputs") is not None else None,
                    ],
                )

    def mark_died(self, run_id: str, note: str) -> None:
        with self._writer() as con:
            con.execute(
                "UPDATE runs SET status = 'died', finished_at = ?, error = ? WHERE run_id = ?", [_now(), note, run_id]
            )

    def runs(self, status: str | None = None) -> pd.DataFrame:
        """Every run, oldest first (optionally only those in ``status``); empty without a ledger."""
        where, params = ("WHERE status = ?", [status]) if status else ("", [])
        return self._read(f"SELECT * FROM runs {where} ORDER BY started_at, run_id", params)

    def tasks(self, run_id: str) -> pd.DataFrame:
        return self._read("SELECT * FROM run_tasks WHERE run_id = ? ORDER BY task", [run_id])

    def _read(self, sql: str, params: list[Any]) -> pd.DataFrame:
        if not self.path.exists():
            return pd.DataFrame()
        con = self._connect(read_only=True)
        try:
            tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
            return con.execute(sql, params).df() if {"runs", "run_tasks"} <= tables else pd.DataFrame()
        finally:
            con.close()


def _now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC").tz_localize(None)


def _json(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)
