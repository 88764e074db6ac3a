"""Run lock, ledger and the receipt check that crash repair relies on."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from churn.runs import RunLock, RunLockedError, _fingerprinted_tables, describe_holder, unconfirmed_receipts
from churn.store.runs import RunLedger
from churn.store.warehouse import Warehouse

HOLD = """
import sys, time
from churn.runs import RunLock
lock = RunLock(sys.argv[1])
lock.acquire({"pid": __import__("os").getpid(), "run_id": "run-A", "started_at": "2026-12-05 01:02:03"})
print("held", flush=True)
time.sleep(60)
"""


def test_a_second_run_stops_at_once_naming_the_holder(tmp_path: Path):
    """While another process holds the data dir, acquiring fails immediately with its pid, run id
    and start time; once that process is gone (even killed) the lock is free again."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        start = time.monotonic()
        with pytest.raises(RunLockedError) as caught:
            RunLock(tmp_path).acquire({"pid": 1, "run_id": "run-B", "started_at": "now"})
        assert time.monotonic() - start < 5  # "at once": never waits for the holder
        message = str(caught.value)
        assert f"pid {holder.pid}" in message and "run run-A" in message and "2026-12-05 01:02:03" in message
    finally:
        holder.kill()
        holder.wait()
    lock = RunLock(tmp_path)
    lock.acquire({"pid": 2, "run_id": "run-C", "started_at": "later"})
    assert lock.held
    lock.release()
    assert not lock.held


def test_holder_description_survives_an_unreadable_lock_file():
    assert describe_holder("") == "a process that did not say who it is"
    assert describe_holder('{"pid": 5, "run_id": "r", "started_at": "t"}') == "pid 5, run r, started t UTC"


def test_ledger_records_a_run_its_tasks_and_a_death(tmp_path: Path):
    """start -> finish keeps the parameters, plan and each task's outputs; mark_died closes a
    run that never finished; an unknown status is refused."""
    ledger = RunLedger(tmp_path)
    assert ledger.runs().empty
    base = {"params": {"seed": 42}, "code_version": "abc", "pid": 1, "host": "h", "planned": ["a", "b"]}
    ledger.start({**base, "run_id": "r1", "started_at": pd.Timestamp("2026-12-05 01:00")})
    ledger.finish(
        "r1",
        "succeeded",
        [
            {"task": "a", "status": "Executed", "elapsed_s": 1.5, "outputs": {"rows": 3}},
            {"task": "b", "status": "Skipped"},
        ],
    )
    ledger.start({**base, "run_id": "r2", "started_at": pd.Timestamp("2026-12-05 02:00")})
    assert list(ledger.runs("running").run_id) == ["r2"]
    ledger.mark_died("r2", "killed")
    runs = ledger.runs()
    assert list(runs.status) == ["succeeded", "died"]
    assert json.loads(runs.params.iloc[0]) == {"seed": 42}
    tasks = ledger.tasks("r1").set_index("task")
    assert json.loads(tasks.loc["a", "outputs"]) == {"rows": 3} and tasks.loc["a", "elapsed_s"] == 1.5
    assert pd.isna(tasks.loc["b", "outputs"])
    with pytest.raises(ValueError, match="unknown run status 'done'"):
        ledger.finish("r1", "done", [])


class _Task:
    """The part of a Ploomber task the receipt check reads: ``product["receipt"]``."""

    def __init__(self, receipt: Path) -> None:
        self.product = {"receipt": receipt}


def test_a_receipt_whose_fingerprints_left_the_warehouse_is_unconfirmed(tmp_path: Path):
    """generate-data's receipt names raw tables with fingerprints: equal to the warehouse ->
    confirmed; a table rewritten afterwards (another seed) or missing -> unconfirmed."""
    wh = Warehouse(tmp_path / "churn.duckdb")
    with wh.writer() as con:
        Warehouse.replace_table(con, "raw_data.users", pd.DataFrame({"user_id": [1, 2, 3]}))
        fingerprint = Warehouse.content_hash(con, "raw_data.users")
    receipt = tmp_path / "generate_data.json"
    receipt.write_text(json.dumps({"tables": {"users": {"rows": 3, "fingerprint": fingerprint}}}))
    dag = {"generate-data": _Task(receipt), "no-receipt": _Task(tmp_path / "missing.json")}
    assert unconfirmed_receipts(dag, wh) == {}
    with wh.writer() as con:
        Warehouse.replace_table(con, "raw_data.users", pd.DataFrame({"user_id": [1, 2, 4]}))
    assert "raw_data.users" in unconfirmed_receipts(dag, wh)["generate-data"]
    with wh.writer() as con:
        con.execute("DROP TABLE raw_data.users")
    assert "missing" in unconfirmed_receipts(dag, wh)["generate-data"]


def test_receipt_tables_are_qualified():
    receipt = {
        "tables": {
            "users": {"fingerprint": "3:1"},
            "ml_pipeline.features": {"fingerprint": "9:2"},
            "odd": "no fingerprint",
        }
    }
    assert _fingerprinted_tables(receipt) == {"raw_data.users": "3:1", "ml_pipeline.features": "9:2"}
    assert _fingerprinted_tables({"tables": None}) == {}
