"""The warehouse: the one place that opens the DuckDB file.

DuckDB allows a single writing process per file, and refuses read-only openers while a writer
holds it. So pipeline tasks write to ``churn.duckdb`` and publish an atomic copy
(``churn.snapshot.duckdb``) that readers (API, dashboards) open read-only: a running build never
makes a reader fail with a lock error.

When to publish: outside a pipeline run, after every committed write. Inside one (the run hooks of
:mod:`churn.runs` name the run's warehouse in ``CHURN_DEFER_SNAPSHOT`` for the phase kernels they
start), a write only marks the snapshot stale (``churn.duckdb.unpublished``) and the phases read
the warehouse file itself; the run publishes once when it succeeds (:meth:`Warehouse.publish_pending`).
So a cycle copies the file once, not after each of its dozen writes, and readers only ever see
the state of a finished run, never a half-done one.

Every writer, the snapshot copy, backup, restore and clean hold our own lock file
(``churn.duckdb.lock``, see :meth:`Warehouse.lock`) from start to end, so no other process can
change the file while it is copied (no torn snapshot) or swapped (no check-then-act in restore).
Backups carry a sha256 manifest checked before anything is restored, and the model artifacts.

DuckDB 2.0 notes (STACK-NOTES): ``con.sql(...).fetchone()`` is gone, so reads go through
``con.execute(...).fetchall()`` / ``.df()``, and results are always drained.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import duckdb
import pandas as pd

if TYPE_CHECKING:
    from churn.store.tables import Table

SCHEMAS: tuple[str, ...] = ("raw_data", "ml_pipeline", "monitoring", "simulator")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
BACKUP_NAME = "%Y%m%dT%H%M%S"  # a backup folder's name is its creation time
MANIFEST = "MANIFEST.sha256"  # `sha256sum -c` format: "<hex>  <relative path>" per file
_MARKERS = ("COMPLETE", MANIFEST)
# Locks this process holds, by lock-file path: [open file, depth]. Reentrant, because a writer
# publishes (and backup/restore write) while already holding the lock.
_HELD: dict[str, list[Any]] = {}
_HELD_GUARD = threading.Lock()
DEFER_ENV = "CHURN_DEFER_SNAPSHOT"
"""Set by the pipeline's run hooks to the run's warehouse path: its phases defer publishing."""
UNPUBLISHED_SUFFIX = ".unpublished"


class _Snapshot:
    """One published snapshot file opened read-only in this process, and its readers."""

    def __init__(self, stamp: tuple[int, int, int] | None, con: duckdb.DuckDBPyConnection) -> None:
        self.stamp, self.con, self.users, self.retired, self.closed = stamp, con, 0, False, False

    def retire(self) -> None:
        """Close once no reader uses it (a newer snapshot replaced it)."""
        self.retired = True
        if self.users == 0 and not self.closed:
            self.con.close()
            self.closed = True


# Opening a DuckDB database costs ~12 ms of CPU (a new instance and its catalog), a cursor on an
# open one a fraction of a millisecond: readers of a published snapshot share one open database
# per file (keyed by path, renewed when a publish replaces the file: a new inode/mtime/size).
# Only snapshots: they are never written in place, so holding one open blocks no writer.
_SNAPSHOTS: dict[str, _Snapshot] = {}
_SNAPSHOTS_GUARD = threading.Lock()


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


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


def sql_timestamp(value: datetime | pd.Timestamp) -> str:
    """A DuckDB ``TIMESTAMP '...'`` literal of a naive (UTC) moment; refuses a missing or
    time-zone-aware one (a TIMESTAMP column holds naive UTC, so either would compare wrongly)."""
    stamp = pd.Timestamp(value)
    if pd.isna(stamp) or stamp.tzinfo is not None:
        raise ValueError(f"timestamp {value!r} must be naive (UTC)")
    return f"TIMESTAMP '{stamp.isoformat(sep=' ')}'"


class Warehouse:
    """The DuckDB warehouse file plus its read-only snapshot for concurrent readers.

    Args:
        path: the DuckDB file (``data/churn.duckdb`` by default in ``env.yaml``).
        threads: DuckDB worker threads (None: DuckDB's default).
    """

    def __init__(self, path: str | os.PathLike[str], threads: int | None = None) -> None:
        self.path = Path(path)
        self.snapshot_path = self.path.with_name(self.path.stem + ".snapshot" + self.path.suffix)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.unpublished_path = self.path.with_name(self.path.name + UNPUBLISHED_SUFFIX)
        self.threads = threads

    @property
    def deferred(self) -> bool:
        """Whether this process runs a phase of a pipeline run on this warehouse: its writes are
        published once, when the run succeeds, and its reads see the warehouse file itself."""
        run = os.environ.get(DEFER_ENV)
        return run is not None and run != "" and Path(run).resolve() == self.path.resolve()

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the warehouse's write lock, or raise :class:`WarehouseLockedError` at once.

        An ``flock`` on ``<warehouse>.lock``, reentrant within this process (DuckDB shares one
        database between a process's connections too); the kernel drops it if the process dies.
        """
        key = str(self.lock_path.resolve())
        with _HELD_GUARD:
            if key in _HELD:
                _HELD[key][1] += 1
            else:
                _HELD[key] = [self._acquire(), 1]
        try:
            yield
        finally:
            with _HELD_GUARD:
                _HELD[key][1] -= 1
                if _HELD[key][1] == 0:
                    _HELD.pop(key)[0].close()  # closing the file releases the flock

    def _acquire(self) -> TextIO:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.lock_path, "a+")  # noqa: SIM115 - held open for the lock's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            raise WarehouseLockedError(
                f"warehouse {self.path} is locked by another writing process"
                f"{f' (PID {holder})' if holder.isdigit() else ''}; wait for it to finish (a "
                "running `ploomber build` or `make db-backup`?) or stop it, then retry"
            ) from None
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        return handle

    # -- connections ---------------------------------------------------------------------------
    def _connect(self, path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
        config: dict[str, str | bool | int | float | list[str]] = {"threads": self.threads} if self.threads else {}
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
        """Read-write connection that creates the schemas and upgrades the tables of an older
        release (:func:`churn.store.tables.ensure`); publishes a reader snapshot on exit (inside
        a pipeline run: marks it stale, the run publishes once at its end, see the module doc).

        The lock is held until the snapshot is published, so the copy is never torn by another
        writer.
        """
        from churn.store import tables

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock():
            con = self._connect(self.path, read_only=False)
            try:
                for schema in SCHEMAS:
                    con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
                tables.ensure(con)
                yield con
                con.execute("CHECKPOINT")
            finally:
                con.close()
            if publish and self.deferred:
                self.unpublished_path.touch()  # after the commit: the snapshot now lags the file
            elif publish:
                self.publish_snapshot()

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Read-only connection to the latest published snapshot (never blocked by a writer).

        Inside a pipeline run (:attr:`deferred`) the warehouse file itself, under the lock: a
        phase sees what the phases before it committed, which is published only at the run's end.
        That connection is opened like a writer's (DuckDB refuses to open one file both read-only
        and read-write in a process, and a phase may nest a reader and a writer block); only the
        writer block commits anything.
        """
        if self.deferred and self.path.exists():
            with self._opened(self.path, read_only=False, locked=True) as con:
                yield con
            return
        if self.snapshot_path.exists():
            with self._snapshot_cursor() as con:
                yield con
            return
        if not self.path.exists():
            raise WarehouseError(
                f"warehouse {self.path} does not exist yet: run `make build` to create it"
            )
        with self._opened(self.path, read_only=True) as con:
            yield con

    @contextmanager
    def _snapshot_cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on this process's open database of the published snapshot (opened once per
        published file, :data:`_SNAPSHOTS`); the database is closed once a newer snapshot was
        published and no reader uses it any more."""
        key = str(self.snapshot_path.resolve())
        with _SNAPSHOTS_GUARD:
            held, stamp = _SNAPSHOTS.get(key), _stamp(self.snapshot_path)
            if held is not None and held.stamp != stamp:
                held.retire()  # closed now if no reader uses it
                held = None if held.closed else held
            if held is None:
                held = _SNAPSHOTS[key] = _Snapshot(stamp, self._connect(self.snapshot_path, read_only=True))
            # a newer file is published while readers still use the older one: DuckDB hands out
            # that open database for this path until they are done, so this reader gets its own
            shared = not held.retired
            if shared:
                held.users += 1
                cursor = held.con.cursor()
        if not shared:
            with self._opened(self.snapshot_path, read_only=True) as con:
                yield con
            return
        try:
            yield cursor
        finally:
            with _SNAPSHOTS_GUARD:
                cursor.close()
                held.users -= 1
                if held.retired:
                    held.retire()

    @contextmanager
    def direct_reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Read-only connection to the warehouse file itself, not the snapshot, under the write
        lock: what was committed, even if a crash came before the snapshot was published."""
        with self._opened(self.path, read_only=True, locked=True) as con:
            yield con

    @contextmanager
    def _opened(self, path: Path, read_only: bool, locked: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to ``path``, closed on exit; ``locked``: held under the write lock."""
        with self.lock() if locked else nullcontext():
            con = self._connect(path, read_only=read_only)
            try:
                yield con
            finally:
                con.close()

    def file_stamp(self) -> tuple[int, int, int] | None:
        """Identity (inode, mtime, size) of the file ``reader()`` opens (the published snapshot,
        else the warehouse); None if there is none. Changes whenever a new snapshot is published."""
        return _stamp(self.snapshot_path) or _stamp(self.path)

    @staticmethod
    @contextmanager
    def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
        """All-or-nothing block: on any error the previous tables stay exactly as they were
        (any DuckDB connection: the warehouse's writer or another file's, e.g. the run ledger)."""
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def publish_snapshot(self) -> Path:
        """Atomically replace the reader snapshot with a copy of the warehouse file, taken under
        the write lock (no writer can change the file mid-copy); tmp file + rename."""
        with self.lock():
            _atomic_copy(self.path, self.snapshot_path)
            self.unpublished_path.unlink(missing_ok=True)
        return self.snapshot_path

    def publish_pending(self) -> bool:
        """Publish the snapshot if writes since the last publish are waiting for it (a pipeline
        run's deferred writes, or a run killed before it could publish); True if it did."""
        with self.lock():
            if not self.path.exists() or (self.snapshot_path.exists() and not self.unpublished_path.exists()):
                return False
            self.publish_snapshot()
        return True

    # -- helpers used by the store modules -----------------------------------------------------
    @staticmethod
    def replace_table(
        con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame, ddl: str | Table | None = None
    ) -> int:
        """Replace ``name`` with ``frame`` (inside the caller's transaction); returns rows written.

        With ``ddl`` (the table's declaration in :mod:`churn.store.tables`, or a ``CREATE TABLE``
        statement) the declared types and NOT NULL constraints are enforced; the frame's columns
        are matched by name (an open table takes the frame's column order, and its undeclared
        columns the frame's types).
        """
        from churn.store import tables

        qualified(name)
        con.execute(f"DROP TABLE IF EXISTS {name}")
        if ddl is None:
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
            return len(frame)
        if isinstance(ddl, str):
            con.execute(ddl)
        else:
            if ddl.name != name:
                raise WarehouseError(f"declaration {ddl.name} given for table {name}")
            extra = tables.frame_columns(con, frame) if ddl.open_columns else ()
            tables.create(con, ddl, extra=extra)
        Warehouse.append(con, name, frame)
        return len(frame)

    @staticmethod
    def append(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame, create: bool = False) -> int:
        """Append ``frame`` to ``name``, matching columns by name; with ``create`` the first
        append creates the table (from its declaration in :mod:`churn.store.tables`, else from
        the frame)."""
        from churn.store import tables

        qualified(name)
        if create and not Warehouse.table_exists(con, name):
            return Warehouse.replace_table(con, name, frame, tables.TABLES.get(name))
        # DuckDB's replacement scan reads the local DataFrame `frame` directly (no register()).
        con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM frame")
        return len(frame)

    def read_if_exists(self, table: str, sql: str | None = None, params: list[Any] | None = None) -> pd.DataFrame:
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
        return bool(rows[0][0] > 0)

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


def _atomic_copy(source: Path, target: Path) -> None:
    """Copy to a tmp file, fsync, rename over ``target``: readers see the old or the new file."""
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    try:
        shutil.copyfile(source, tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)  # readers holding the old file keep their inode
    finally:
        tmp.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _backup_files(folder: Path) -> list[str]:
    """Every file of a backup folder (relative, sorted) except its markers."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and p.relative_to(folder).as_posix() not in _MARKERS)


def write_manifest(folder: Path) -> Path:
    """``MANIFEST.sha256`` listing the sha256 of every file in ``folder``."""
    lines = [f"{_sha256(folder / name)}  {name}\n" for name in _backup_files(folder)]
    (folder / MANIFEST).write_text("".join(lines))
    return folder / MANIFEST


def verify_backup(folder: Path) -> None:
    """Refuse a backup that is partial, or whose files differ from its manifest (naming them)."""
    for required in ("COMPLETE", MANIFEST, "schema.sql", "load.sql"):
        if not (folder / required).exists():
            raise WarehouseError(
                f"backup {folder} is missing or partial (no {required}); refusing to restore"
            )
    listed = {}
    for line in (folder / MANIFEST).read_text().splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    for name in _backup_files(folder):
        if name not in listed:
            raise WarehouseError(f"backup {folder}: {name} is not in its manifest; refusing to restore")
    for name, digest in listed.items():
        path = folder / name
        if not path.is_file():
            raise WarehouseError(f"backup {folder}: {name} is listed in the manifest but missing; "
                                 "refusing to restore")
        if _sha256(path) != digest:
            raise WarehouseError(f"backup {folder}: {name} does not match its sha256 in {MANIFEST} "
                                 "(changed or corrupted after the backup); refusing to restore")


def backup(warehouse: Warehouse, backup_root: Path, models_dir: Path | None = None) -> Path:
    """EXPORT DATABASE (and copy ``models_dir``) into ``backup_root/<timestamp>``, under the
    write lock so tables and artifacts belong together; returns the folder."""
    target = backup_root / time.strftime(BACKUP_NAME)
    if target.exists():
        raise WarehouseError(f"backup folder {target} already exists; retry in a second")
    partial = target.with_name(target.name + ".partial")
    backup_root.mkdir(parents=True, exist_ok=True)
    with warehouse.writer(publish=False) as con:
        con.execute(f"EXPORT DATABASE '{partial}' (FORMAT parquet)")
        if models_dir is not None and Path(models_dir).is_dir():
            shutil.copytree(models_dir, partial / "models")
    write_manifest(partial)
    (partial / "COMPLETE").write_text(f"{warehouse.path}\n")
    os.replace(partial, target)  # only complete backups get a timestamp-only name
    return target


def restore(warehouse: Warehouse, backup_dir: Path, models_dir: Path | None = None) -> None:
    """IMPORT DATABASE from a verified backup into a fresh file, then swap it (and the backed-up
    model artifacts into ``models_dir``) in, all under the write lock."""
    backup_dir = Path(backup_dir)
    verify_backup(backup_dir)
    with warehouse.lock():
        if warehouse.path.exists():  # a writer outside this project's code holds DuckDB's lock
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
        staged = _stage_models(backup_dir, models_dir)
        os.replace(fresh, warehouse.path)
        if staged is not None and models_dir is not None:
            _swap_in(staged, Path(models_dir))
        warehouse.publish_snapshot()


def _stage_models(backup_dir: Path, models_dir: Path | None) -> Path | None:
    """Copy the backup's artifacts next to ``models_dir`` (None: nothing to restore)."""
    if models_dir is None or not (backup_dir / "models").is_dir():
        return None
    staged = Path(models_dir).with_name(Path(models_dir).name + ".restoring")
    shutil.rmtree(staged, ignore_errors=True)
    shutil.copytree(backup_dir / "models", staged)
    return staged


def _swap_in(staged: Path, target: Path) -> None:
    old = target.with_name(target.name + f".old{os.getpid()}")
    if target.exists():
        os.replace(target, old)
    os.replace(staged, target)
    shutil.rmtree(old, ignore_errors=True)


def _backup_time(folder: Path) -> datetime | None:
    """The creation time a backup folder's name encodes, or None for any other name."""
    if not re.fullmatch(r"\d{8}T\d{6}", folder.name):
        return None
    try:
        return datetime.strptime(folder.name, BACKUP_NAME)
    except ValueError:
        return None


def latest_backup(backup_root: Path) -> Path:
    """The newest complete backup under ``backup_root``, by the timestamp in its name; folders
    with other names (``partial_schema.sql``, ``x.partial``) never count."""
    dated = [(when, p) for p in backup_root.glob("*")
             if p.is_dir() and (when := _backup_time(p)) is not None
             and all((p / marker).exists() for marker in _MARKERS)]
    if not dated:
        raise WarehouseError(f"no complete backup under {backup_root}: run `make db-backup` first")
    return max(dated)[1]


def clean(warehouse: Warehouse) -> list[Path]:
    """Delete the warehouse file and its snapshot (refused while a writer holds it)."""
    with warehouse.lock():
        if warehouse.path.exists():
            warehouse._connect(warehouse.path, read_only=False).close()
        removed = []
        for path in (warehouse.path, warehouse.snapshot_path, warehouse.path.with_suffix(".duckdb.wal"),
                     warehouse.unpublished_path):
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
    parser.add_argument("--models-dir", default=None,
                        help="model artifacts backed up and restored too (default: models/ next to the warehouse)")
    args = parser.parse_args(argv)
    warehouse = Warehouse(args.warehouse)
    root = warehouse.path.parent / "backups"
    models_dir = Path(args.models_dir) if args.models_dir else warehouse.path.parent / "models"
    try:
        if args.action == "backup":
            if not warehouse.path.exists():
                raise WarehouseError(f"warehouse {warehouse.path} does not exist: nothing to back up")
            print(f"backup written to {backup(warehouse, root, models_dir)}")
        elif args.action == "restore":
            source = Path(args.backup) if args.backup else latest_backup(root)
            restore(warehouse, source, models_dir)
            print(f"warehouse {warehouse.path} restored from {source}")
        else:
            print("removed: " + (", ".join(map(str, clean(warehouse))) or "nothing"))
    except WarehouseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
