"""The warehouse: the one place that opens the DuckDB file.

DuckDB allows a single writing process per file, and refuses read-only openers while a writer
holds it. So pipeline tasks write to ``churn.duckdb`` and, after every committed write, publish an
atomic copy (``churn.snapshot.duckdb``) that readers (API, dashboards) open read-only: a running
build never makes a reader fail with a lock error.

DuckDB 2.0 notes (STACK-NOTES): ``con.sql(...).fetchone()`` is gone, so reads go through
``con.execute(...).fetchall()`` / ``.df()``, and results are always drained.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd

SCHEMAS: tuple[str, ...] = ("raw_data", "ml_pipeline", "monitoring", "simulator")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class WarehouseError(RuntimeError):
    """A warehouse problem explained for a person (locked file, missing table, bad backup)."""


class WarehouseLockedError(WarehouseError):
    """Another process holds the write lock on the DuckDB file."""


def qualified(name: str) -> str:
    """Validate ``schema.table`` (or ``table``) and return it; refuses anything but identifiers."""
    parts = name.split(".")
    if not 1 <= len(parts) <= 2 or not all(_IDENT.match(p) for p in parts):
        raise WarehouseError(f"invalid table name {name!r}: expected schema.table identifiers")
    return name


class Warehouse:
    """The DuckDB warehouse file plus its read-only snapshot for concurrent readers.

    Args:
        path: the DuckDB file (``data/churn.duckdb`` by default in ``env.yaml``).
        threads: DuckDB worker threads (None: DuckDB's default).
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        self.path = Path(path)
        self.snapshot_path = self.path.with_name(self.path.stem + ".snapshot" + self.path.suffix)
        self.threads = threads

    # -- connections ---------------------------------------------------------------------------
    def _connect(self, path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
        config = {"threads": self.threads} if self.threads else {}
        try:
            return duckdb.connect(str(path), read_only=read_only, config=config)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                holder = re.search(r"PID (\d+)", str(exc))
                who = f" (PID {holder.group(1)})" if holder else ""
                raise WarehouseLockedError(
                    f"warehouse {path} is locked by another writing process{who}; wait for it to "
                    "finish (a running `ploomber build`?) or stop it, then retry"
                ) from None
            raise WarehouseError(f"cannot open warehouse {path}: {exc}") from None

    @contextmanager
    def writer(self, publish: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """Read-write connection that creates the schemas; publishes a reader snapshot on exit."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = self._connect(self.path, read_only=False)
        try:
            for schema in SCHEMAS:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            yield con
            con.execute("CHECKPOINT")
        finally:
            con.close()
        if publish:
            self.publish_snapshot()

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Read-only connection to the latest published snapshot (never blocked by a writer)."""
        source = self.snapshot_path if self.snapshot_path.exists() else self.path
        if not source.exists():
            raise WarehouseError(
                f"warehouse {self.path} does not exist yet: run `make build` to create it"
            )
        con = self._connect(source, read_only=True)
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def transaction(self, con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
        """All-or-nothing block: on any error the previous tables stay exactly as they were."""
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def publish_snapshot(self) -> Path:
        """Atomically replace the reader snapshot with a copy of the (closed) warehouse file."""
        tmp = self.snapshot_path.with_suffix(f".tmp{os.getpid()}")
        shutil.copyfile(self.path, tmp)
        os.replace(tmp, self.snapshot_path)  # readers holding the old file keep their inode
        return self.snapshot_path

    # -- helpers used by the store modules -----------------------------------------------------
    @staticmethod
    def replace_table(
        con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame, ddl: str | None = None
    ) -> int:
        """Replace ``name`` with ``frame`` (inside the caller's transaction); returns rows written.

        With ``ddl`` (a ``CREATE TABLE name (...)`` statement) the declared types and NOT NULL
        constraints are enforced; the frame's columns are matched by name.
        """
        qualified(name)
        con.execute(f"DROP TABLE IF EXISTS {name}")
        if ddl is None:
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
        else:
            con.execute(ddl)
            Warehouse.append(con, name, frame)
        return len(frame)

    @staticmethod
    def append(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame, create: bool = False) -> int:
        """Append ``frame`` to ``name``, matching columns by name; with ``create`` the first
        append creates the table from the frame."""
        qualified(name)
        if create and not Warehouse.table_exists(con, name):
            return Warehouse.replace_table(con, name, frame)
        # DuckDB's replacement scan reads the local DataFrame `frame` directly (no register()).
        con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM frame")
        return len(frame)

    def read_if_exists(self, table: str, sql: str | None = None, params: list | None = None) -> pd.DataFrame:
        """``sql`` (default: the whole table) on the reader snapshot; an empty frame while the
        table does not exist yet (the phase filling it has not run)."""
        with self.reader() as con:
            if not Warehouse.table_exists(con, table):
                return pd.DataFrame()
            return con.execute(sql or f"SELECT * FROM {table}", params or []).df()

    @staticmethod
    def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
        schema, _, table = qualified(name).rpartition(".")
        rows = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [schema or "main", table],
        ).fetchall()
        return rows[0][0] > 0

    @staticmethod
    def read_table(con: duckdb.DuckDBPyConnection, name: str) -> pd.DataFrame:
        """Whole table as a DataFrame, with a clear error when it is missing."""
        if not Warehouse.table_exists(con, name):
            raise WarehouseError(f"table {name} does not exist: run the phase that creates it")
        return con.execute(f"SELECT * FROM {name}").df()

    @staticmethod
    def content_hash(con: duckdb.DuckDBPyConnection, name: str) -> str:
        """Row-order-independent fingerprint of a table's contents (for reproducibility checks)."""
        qualified(name)
        count, total = con.execute(
            f"SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0) FROM {name} t"
        ).fetchall()[0]
        return f"{count}:{total}"


def backup(warehouse: Warehouse, backup_root: Path) -> Path:
    """EXPORT DATABASE into ``backup_root/<timestamp>``; returns the folder."""
    target = backup_root / time.strftime("%Y%m%dT%H%M%S")
    if target.exists():
        raise WarehouseError(f"backup folder {target} already exists; retry in a second")
    partial = target.with_name(target.name + ".partial")
    backup_root.mkdir(parents=True, exist_ok=True)
    with warehouse.writer(publish=False) as con:
        con.execute(f"EXPORT DATABASE '{partial}' (FORMAT parquet)")
    (partial / "COMPLETE").write_text(f"{warehouse.path}\n")
    os.replace(partial, target)  # only complete backups get a timestamp-only name
    return target


def restore(warehouse: Warehouse, backup_dir: Path) -> None:
    """IMPORT DATABASE from a complete backup into a fresh file, then swap it in atomically."""
    for required in ("COMPLETE", "schema.sql", "load.sql"):
        if not (backup_dir / required).exists():
            raise WarehouseError(
                f"backup {backup_dir} is missing or partial (no {required}); refusing to restore"
            )
    if warehouse.path.exists():  # refuse to swap the file under a running writer
        warehouse._connect(warehouse.path, read_only=False).close()
    fresh = warehouse.path.with_suffix(".restoring")
    fresh.unlink(missing_ok=True)
    con = duckdb.connect(str(fresh))
    try:
        con.execute(f"IMPORT DATABASE '{backup_dir}'")
        con.execute("CHECKPOINT")
    except duckdb.Error as exc:
        con.close()
        fresh.unlink(missing_ok=True)
        raise WarehouseError(f"backup {backup_dir} could not be imported: {exc}") from None
    con.close()
    os.replace(fresh, warehouse.path)
    warehouse.publish_snapshot()


def latest_backup(backup_root: Path) -> Path:
    """The newest complete backup folder under ``backup_root``."""
    complete = sorted(p for p in backup_root.glob("*") if (p / "COMPLETE").exists())
    if not complete:
        raise WarehouseError(f"no complete backup under {backup_root}: run `make db-backup` first")
    return complete[-1]


def clean(warehouse: Warehouse) -> list[Path]:
    """Delete the warehouse file and its snapshot (refused while a writer holds it)."""
    if warehouse.path.exists():
        warehouse._connect(warehouse.path, read_only=False).close()
    removed = []
    for path in (warehouse.path, warehouse.snapshot_path, warehouse.path.with_suffix(".duckdb.wal")):
        if path.exists():
            path.unlink()
            removed.append(path)
    return removed


def main(argv: list[str] | None = None) -> int:
    """``backup`` / ``restore`` / ``clean`` for the Makefile's db-* targets."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m churn.store.warehouse")
    parser.add_argument("action", choices=["backup", "restore", "clean"])
    parser.add_argument("--warehouse", default="data/churn.duckdb")
    parser.add_argument("--backup", default=None, help="backup folder (restore; default latest)")
    args = parser.parse_args(argv)
    warehouse = Warehouse(args.warehouse)
    root = warehouse.path.parent / "backups"
    try:
        if args.action == "backup":
            if not warehouse.path.exists():
                raise WarehouseError(f"warehouse {warehouse.path} does not exist: nothing to back up")
            print(f"backup written to {backup(warehouse, root)}")
        elif args.action == "restore":
            source = Path(args.backup) if args.backup else latest_backup(root)
            restore(warehouse, source)
            print(f"warehouse {warehouse.path} restored from {source}")
        else:
            print("removed: " + (", ".join(map(str, clean(warehouse))) or "nothing"))
    except WarehouseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
