"""Warehouse: schemas, all-or-nothing writes, readers never blocked, backups."""

from __future__ import annotations

import hashlib
import multiprocessing as mp

import duckdb
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
        with pytest.raises(WarehouseLockedError, match="locked by another writing process"), warehouse.writer():
            pass
    finally:
        release.set()
        proc.join(30)


def test_reader_on_missing_warehouse_says_how_to_create_it(warehouse):
    """Reading before any build explains what to run."""
    with pytest.raises(WarehouseError, match="make build"), warehouse.reader():
        pass


def test_read_missing_table_names_it(warehouse):
    with warehouse.writer() as con, pytest.raises(WarehouseError, match="ml_pipeline.nope does not exist"):
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


def _try_write(path: str, out) -> None:
    """In another process: write through the project's writer; report 'wrote' or 'locked'."""
    from churn.store.warehouse import Warehouse, WarehouseLockedError

    try:
        with Warehouse(path).writer() as con:
            con.execute("CREATE OR REPLACE TABLE raw_data.t AS SELECT 999 AS id, 0.0 AS value")
        out.put("wrote")
    except WarehouseLockedError:
        out.put("locked")


def _concurrent_write(path) -> str:
    """Run one writer in a fresh process, now, and return what happened to it."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_try_write, args=(str(path), out))
    proc.start()
    proc.join(120)
    return out.get(timeout=5)


def test_snapshot_is_published_under_the_write_lock(warehouse, monkeypatch):
    """While the snapshot is being copied, another process cannot start writing (it would tear
    the copy); the published snapshot is exactly the committed table."""
    copy, seen = wh_module.shutil.copyfile, []

    def copy_with_concurrent_writer(src, dst, **kwargs):
        if src == warehouse.path:
            seen.append(_concurrent_write(warehouse.path))
        return copy(src, dst, **kwargs)

    monkeypatch.setattr(wh_module.shutil, "copyfile", copy_with_concurrent_writer)
    with warehouse.writer() as con:
        Warehouse.replace_table(con, "raw_data.t", _frame(5))
    assert seen == ["locked"]
    with warehouse.reader() as con:
        assert con.execute("SELECT count(*), sum(id) FROM raw_data.t").fetchall() == [(5, 10)]
    assert sorted(p.name for p in warehouse.path.parent.iterdir() if ".tmp" in p.name) == []


def test_restore_holds_the_lock_from_check_to_replace(warehouse, tmp_path, monkeypatch):
    """A writer starting while restore imports is refused (before, it wrote into the file that
    restore then replaced, and its write vanished); the restored tables are the backup's."""
    with warehouse.writer() as con:
        Warehouse.replace_table(con, "raw_data.t", _frame(50))
    folder = wh_module.backup(warehouse, tmp_path / "backups")
    connect, seen = wh_module.duckdb.connect, []

    def connect_with_concurrent_writer(database, *args, **kwargs):
        if str(database).endswith(".restoring"):
            seen.append(_concurrent_write(warehouse.path))
        return connect(database, *args, **kwargs)

    monkeypatch.setattr(wh_module.duckdb, "connect", connect_with_concurrent_writer)
    wh_module.restore(warehouse, folder)
    assert seen == ["locked"]
    with warehouse.reader() as con:
        assert con.execute("SELECT count(*), sum(id) FROM raw_data.t").fetchall() == [(50, 1225)]


def test_second_writer_in_another_process_gets_a_clear_lock_error(warehouse):
    """Our own lock names the warehouse; the same process may nest writers (reentrant)."""
    with warehouse.writer() as con, warehouse.writer() as inner:
        Warehouse.replace_table(con, "raw_data.t", _frame(3))
        assert inner.execute("SELECT count(*) FROM raw_data.t").fetchall() == [(3,)]
        assert _concurrent_write(warehouse.path) == "locked"
    assert _concurrent_write(warehouse.path) == "wrote"


def test_backup_writes_a_sha256_manifest_of_every_file(warehouse, tmp_path):
    """MANIFEST.sha256 lists each exported file with its sha256 (`sha256sum -c` format)."""
    with warehouse.writer() as con:
        Warehouse.replace_table(con, "raw_data.t", _frame(10))
    folder = wh_module.backup(warehouse, tmp_path / "backups")
    listed = dict(reversed(line.split("  ", 1)) for line in (folder / "MANIFEST.sha256").read_text().splitlines())
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert sorted(listed) == [f for f in files if f not in ("COMPLETE", "MANIFEST.sha256")]
    assert all(hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest for name, digest in listed.items())


def test_restore_refuses_a_replaced_parquet_naming_it(warehouse, tmp_path):
    """A parquet swapped for another valid one (501 rows) after the backup is refused, naming
    the file, and the warehouse keeps its current tables."""
    with warehouse.writer() as con:
        Warehouse.replace_table(con, "raw_data.t", _frame(500))
    folder = wh_module.backup(warehouse, tmp_path / "backups")
    with warehouse.writer() as con:
        Warehouse.replace_table(con, "raw_data.t", _frame(7))
    (parquet,) = [p for p in folder.glob("*.parquet") if "t" in p.stem.split("_")]
    duckdb.sql(f"COPY (SELECT range AS id, range::DOUBLE AS value FROM range(501)) TO '{parquet}' (FORMAT parquet)")
    with pytest.raises(WarehouseError, match=rf"{parquet.name} does not match its sha256"):
        wh_module.restore(warehouse, folder)
    (folder / "extra.parquet").write_bytes(b"x")
    with pytest.raises(WarehouseError, match="extra.parquet is not in its manifest"):
        wh_module.restore(warehouse, folder)
    with warehouse.reader() as con:
        assert con.execute("SELECT count(*) FROM raw_data.t").fetchall() == [(7,)]


def test_latest_backup_is_chosen_by_a_valid_timestamp_name(warehouse, tmp_path):
    """Stray folders (``partial_schema.sql``, an impossible date, a .partial) never win, even
    with markers in them."""
    with warehouse.writer() as con:
        Warehouse.replace_table(con, "raw_data.t", _frame(3))
    root = tmp_path / "backups"
    real = wh_module.backup(warehouse, root)
    for name in ("partial_schema.sql", "99991399T999999", "20991231T235959.partial", "zzz"):
        (root / name).mkdir()
        for marker in ("COMPLETE", "MANIFEST.sha256", "schema.sql", "load.sql"):
            (root / name / marker).write_text("")
    assert wh_module.latest_backup(root) == real


def test_model_artifacts_are_backed_up_and_restored_with_the_warehouse(warehouse, tmp_path):
    """data/models is in the backup and its manifest; after a restore the registry loads the
    backed-up artifact with its sha256 verified, and a newer artifact is gone with its row."""
    from churn.registry import ModelRegistry

    models = tmp_path / "models"
    registry = ModelRegistry(warehouse, models)
    registry.register_model("churn_model", model={"weights": [1.0, 2.0]})
    folder = wh_module.backup(warehouse, tmp_path / "backups", models)
    assert any(line.endswith(".joblib") or "models/" in line
               for line in (folder / "MANIFEST.sha256").read_text().splitlines())
    registry.register_model("churn_model", model={"weights": [3.0]})
    first = registry.get_model("churn_model", version=1)
    first.artifact_path.write_bytes(b"overwritten")
    wh_module.restore(warehouse, folder, models)
    model, record = registry.load_model("churn_model", version=1)
    assert model == {"weights": [1.0, 2.0]} and record.version == 1
    assert [m.version for m in registry.list_models("churn_model")] == [1]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("models")) == ["models"]


def test_cli_backup_and_restore_include_the_models_folder(warehouse, tmp_path, capsys):
    """`make db-backup` / `make db-restore` pass data/models; the CLI's default is models/ next
    to the warehouse."""
    with warehouse.writer() as con:
        Warehouse.replace_table(con, "raw_data.t", _frame(4))
    (warehouse.path.parent / "models").mkdir()
    (warehouse.path.parent / "models" / "a.joblib").write_bytes(b"artifact")
    assert wh_module.main(["backup", "--warehouse", str(warehouse.path)]) == 0
    (warehouse.path.parent / "models" / "a.joblib").write_bytes(b"changed")
    assert wh_module.main(["restore", "--warehouse", str(warehouse.path)]) == 0
    assert (warehouse.path.parent / "models" / "a.joblib").read_bytes() == b"artifact"


def test_a_pipeline_run_publishes_its_writes_once_and_readers_never_see_them_half_done(warehouse, monkeypatch):
    """Inside a pipeline run (the run hooks name the warehouse in CHURN_DEFER_SNAPSHOT) writes
    do not copy the file: the phase's own reads see them at once (also a reader nested in a
    writer block and a writer nested in a reader), other readers keep the last published
    snapshot, and publish_pending copies once; then nothing is pending."""
    with warehouse.writer() as con:
        Warehouse.replace_table(con, "raw_data.t", _frame(5))  # published: not in a run yet
    copies = []
    copy = wh_module.shutil.copyfile
    monkeypatch.setattr(wh_module.shutil, "copyfile", lambda src, dst, **kw: copies.append(src) or copy(src, dst, **kw))
    monkeypatch.setenv(wh_module.DEFER_ENV, str(warehouse.path))
    assert warehouse.deferred and not Warehouse(warehouse.path.with_name("other.duckdb")).deferred
    for n in (6, 7, 8):
        with warehouse.writer() as con, warehouse.transaction(con):
            Warehouse.replace_table(con, "raw_data.t", _frame(n))
            with warehouse.reader() as inner:  # committed state only: the replace is not yet
                assert inner.execute("SELECT count(*) FROM raw_data.t").fetchall() == [(n - 1,)]
        with warehouse.reader() as con:
            assert con.execute("SELECT count(*) FROM raw_data.t").fetchall() == [(n,)]
    with warehouse.reader() as con, warehouse.writer() as inner:
        Warehouse.replace_table(inner, "raw_data.u", _frame(2))
        assert con.execute("SELECT count(*) FROM raw_data.t").fetchall() == [(8,)]
    assert copies == [] and warehouse.unpublished_path.exists()
    monkeypatch.delenv(wh_module.DEFER_ENV)
    with warehouse.reader() as con:  # the API's view: the last published state, whole
        assert con.execute("SELECT count(*) FROM raw_data.t").fetchall() == [(5,)]
        assert not Warehouse.table_exists(con, "raw_data.u")
    assert warehouse.publish_pending() and copies == [warehouse.path]
    assert not warehouse.unpublished_path.exists() and not warehouse.publish_pending()
    with warehouse.reader() as con:
        assert con.execute("SELECT count(*) FROM raw_data.t").fetchall() == [(8,)]
        assert Warehouse.table_exists(con, "raw_data.u")


def _count(wh: Warehouse) -> int:
    with wh.reader() as con:
        return con.execute("SELECT count(*) FROM ml_pipeline.t").fetchone()[0]


def _write(wh: Warehouse, n: int) -> None:
    with wh.writer() as con:
        Warehouse.replace_table(con, "ml_pipeline.t", _frame(n))


def test_readers_share_one_open_snapshot_and_see_each_new_publish(tmp_path):
    """Readers of the published snapshot share one open database (opening one costs ~12 ms); a
    publish replaces the file and the next reader sees it; a reader still inside its block keeps
    a consistent view of the snapshot it started on, whose database is closed once it is done."""
    wh = Warehouse(tmp_path / "w.duckdb")
    _write(wh, 3)
    opened = []
    real_connect = wh._connect
    wh._connect = lambda path, read_only: (  # type: ignore[method-assign]
        (opened.append(path) if path == wh.snapshot_path else None) or real_connect(path, read_only)
    )
    assert [_count(wh) for _ in range(5)] == [3] * 5 and len(opened) == 1
    with wh.reader() as outer:
        _write(wh, 7)  # published while a reader is inside its block
        assert outer.execute("SELECT count(*) FROM ml_pipeline.t").fetchone()[0] == 3  # its own view
    assert [_count(wh) for _ in range(3)] == [7] * 3  # once it is done: the new snapshot
    assert len(opened) == 2  # one more open for the new file, none per reader
    with pytest.raises(duckdb.ConnectionException):
        outer.execute("SELECT 1")  # the block's cursor closed with it
    _write(wh, 9)
    assert _count(wh) == 9 and len(opened) == 3


def test_a_process_holding_a_snapshot_open_does_not_block_another_process_writing(tmp_path):
    wh = Warehouse(tmp_path / "w.duckdb")
    _write(wh, 3)
    assert _count(wh) == 3  # this process now holds the snapshot open
    ctx = mp.get_context("spawn")
    child = ctx.Process(target=_write, args=(Warehouse(tmp_path / "w.duckdb"), 5))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert _count(wh) == 5


def test_readers_in_threads_read_consistently_across_publishes(tmp_path):
    import threading

    wh = Warehouse(tmp_path / "w.duckdb")
    _write(wh, 1)
    seen: list[int] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(30):
                seen.append(_count(wh))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for n in (2, 3, 4):
        _write(wh, n)
    for t in threads:
        t.join(60)
    assert not errors and set(seen) <= {1, 2, 3, 4} and _count(wh) == 4
