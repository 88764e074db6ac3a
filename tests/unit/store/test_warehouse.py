"""Warehouse: schemas, all-or-nothing writes, readers never blocked, backups."""

from __future__ import annotations

import multiprocessing as mp

import pandas as pd
import pytest

from churn.store import warehouse as wh_module
from churn.store.warehouse import Warehouse, WarehouseError, WarehouseLockedError


def _frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"id": range(n), "value": [float(i) for i in range(n)]})


def test_writer_creates_the_platform_schemas(warehouse):
    """raw_data, ml_pipeline, monitoring (and the simulator's own schema) exist after a write."""
    with warehouse.writer() as con:
        schemas = {r[0] for r in con.execute("SELECT schema_name FROM information_schema.schemata").fetchall()}
    assert {"raw_data", "ml_pipeline", "monitoring", "simulator"} <= schemas


def test_failed_transaction_leaves_previous_table_intact(warehouse):
    """An error half-way through a replace rolls back to the previous table."""
    with warehouse.writer() as con, warehouse.transaction(con):
        Warehouse.replace_table(con, "raw_data.t", _frame(3))
    with pytest.raises(RuntimeError), warehouse.writer() as con, warehouse.transaction(con):
        Warehouse.replace_table(con, "raw_data.t", _frame(10))
        raise RuntimeError("task failed")
    with warehouse.reader() as con:
        assert con.execute("SELECT count(*) FROM raw_data.t").fetchall() == [(3,)]


def test_ddl_enforces_not_null(warehouse):
    """Tables created from the schema DDL refuse NULLs in required columns."""
    frame = pd.DataFrame({"id": [1, None]})
    with pytest.raises(Exception, match="NOT NULL"), warehouse.writer() as con, warehouse.transaction(con):
        Warehouse.replace_table(con, "raw_data.t", frame, ddl="CREATE TABLE raw_data.t (id BIGINT NOT NULL)")


def _hold_write_lock(path: str, ready, release) -> None:
    import duckdb

    con = duckdb.connect(path)
    con.execute("CREATE TABLE IF NOT EXISTS x AS SELECT 1 AS a")
    ready.set()
    release.wait(30)
    con.close()


def test_readers_work_while_another_process_writes(warehouse):
    """A reader opens the published snapshot while a writer holds the lock; a second writer
    gets a clear lock error naming the file."""
    with warehouse.writer() as con, warehouse.transaction(con):
        Warehouse.replace_table(con, "raw_data.t", _frame(5))
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_write_lock, args=(str(warehouse.path), ready, release))
    proc.start()
    try:
        assert ready.wait(60)
        with warehouse.reader() as con:
            assert con.execute("SELECT count(*) FROM raw_data.t").fetchall() == [(5,)]
        with pytest.raises(WarehouseLockedError, match="locked by another writing process"):
            with warehouse.writer():
                pass
    finally:
        release.set()
        proc.join(30)


def test_reader_on_missing_warehouse_says_how_to_create_it(warehouse):
    """Reading before any build explains what to run."""
    with pytest.raises(WarehouseError, match="make build"), warehouse.reader():
        pass


def test_read_missing_table_names_it(warehouse):
    with warehouse.writer() as con:
        with pytest.raises(WarehouseError, match="ml_pipeline.nope does not exist"):
            Warehouse.read_table(con, "ml_pipeline.nope")


def test_invalid_table_name_is_refused(warehouse):
    with warehouse.writer() as con, pytest.raises(WarehouseError, match="invalid table name"):
        Warehouse.read_table(con, "raw_data.t; DROP TABLE x")


def test_content_hash_ignores_row_order_but_not_content(warehouse):
    with warehouse.writer() as con:
        Warehouse.replace_table(con, "raw_data.a", _frame(100))
        Warehouse.replace_table(con, "raw_data.b", _frame(100).iloc[::-1])
        Warehouse.replace_table(con, "raw_data.c", _frame(100).assign(value=lambda f: f.value + (f.id == 7)))
        hashes = [Warehouse.content_hash(con, f"raw_data.{t}") for t in "abc"]
    assert hashes[0] == hashes[1] != hashes[2]


def test_backup_and_restore_round_trip(warehouse, tmp_path):
    """EXPORT/IMPORT DATABASE restores the tables exactly."""
    with warehouse.writer() as con:
        Warehouse.replace_table(con, "raw_data.t", _frame(50))
    folder = wh_module.backup(warehouse, tmp_path / "backups")
    assert (folder / "COMPLETE").exists()
    with warehouse.writer() as con:
        con.execute("DELETE FROM raw_data.t")
    wh_module.restore(warehouse, wh_module.latest_backup(tmp_path / "backups"))
    with warehouse.reader() as con:
        assert con.execute("SELECT count(*), sum(id) FROM raw_data.t").fetchall() == [(50, 1225)]


def test_restore_refuses_partial_backup_and_keeps_data(warehouse, tmp_path):
    """A backup folder without its COMPLETE marker is refused; the warehouse is untouched."""
    with warehouse.writer() as con:
        Warehouse.replace_table(con, "raw_data.t", _frame(5))
    partial = tmp_path / "backups" / "20260101T000000"
    partial.mkdir(parents=True)
    (partial / "schema.sql").write_text("")
    with pytest.raises(WarehouseError, match="missing or partial"):
        wh_module.restore(warehouse, partial)
    with pytest.raises(WarehouseError, match="missing or partial"):
        wh_module.restore(warehouse, tmp_path / "nope")
    with warehouse.reader() as con:
        assert con.execute("SELECT count(*) FROM raw_data.t").fetchall() == [(5,)]


def test_cli_restore_without_backups_fails_clearly(warehouse, capsys):
    assert wh_module.main(["restore", "--warehouse", str(warehouse.path)]) == 1
    assert "no complete backup" in capsys.readouterr().err
