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


ROOT = Path(__file__).resolve().parents[2]
CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


def _cron_field_ok(field: str, low: int, high: int) -> bool:
    for part in field.split(","):
        base, _, step = part.partition("/")
        if step and not step.isdigit():
            return False
        if base == "*":
            continue
        bounds = base.split("-")
        if not all(b.isdigit() and low <= int(b) <= high for b in bounds) or len(bounds) > 2:
            return False
    return True


@pytest.mark.parametrize("schedule", ["0 6 * * *", "30 2 * * 1-5"])
def test_make_schedule_prints_a_cron_line_for_this_checkout(schedule: str):
    """Five valid cron fields, then the daily cycle from this checkout with absolute paths (cron runs
    with a bare environment), its output appended to a log under data/."""
    out = subprocess.run(["make", "-s", "schedule", f"SCHEDULE={schedule}"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.strip()  # fmt: skip
    fields = out.split()
    assert " ".join(fields[:5]) == schedule
    assert all(_cron_field_ok(f, lo, hi) for f, (lo, hi) in zip(fields[:5], CRON_RANGES, strict=True))
    command = " ".join(fields[5:])
    assert command.startswith(f"cd {ROOT} && /") and " cycle >> " in command and command.endswith(" 2>&1")
    make = fields[8]
    assert Path(make).is_absolute() and Path(make).exists()
    assert f"{ROOT}/data/cron.log" in command


READ_LEDGER_LOOP = """
import sys, time
from churn.store.runs import RunLedger
ledger = RunLedger(sys.argv[1])
print("reading", flush=True)
end = time.monotonic() + 3
while time.monotonic() < end:
    ledger.runs()
"""


@pytest.mark.slow  # a second interpreter polling the ledger for seconds (make test runs it)
def test_ledger_writes_wait_out_a_reader_in_another_process(tmp_path: Path):
    """DuckDB refuses a writer while another process has the file open read-only: a reader
    polling the ledger (a status command) must not make the build's record fail."""
    ledger = RunLedger(tmp_path)
    base = {"params": {}, "pid": 1, "host": "h", "planned": []}
    ledger.start({**base, "run_id": "r0", "started_at": pd.Timestamp("2026-12-05 00:00")})
    reader = subprocess.Popen(
        [sys.executable, "-c", READ_LEDGER_LOOP, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert reader.stdout.readline().strip() == "reading"
        for i in range(1, 30):
            ledger.start(
                {**base, "run_id": f"r{i}", "started_at": pd.Timestamp("2026-12-05 00:00") + pd.Timedelta(i, "s")}
            )
    finally:
        assert reader.wait(timeout=60) == 0
    assert len(ledger.runs()) == 30


def _write(product, marker: str) -> None:
    """A task that writes its product, then fails when ``marker`` exists (after its "commit")."""
    Path(str(product)).write_text("written")
    if Path(marker).exists():
        raise RuntimeError("failed after writing")


def _dag(tmp_path: Path):
    from ploomber import DAG
    from ploomber.executors import Serial
    from ploomber.products import File
    from ploomber.tasks import PythonCallable
    from ploomber.util.dotted_path import DottedPath

    dag = DAG(executor=Serial(build_in_subprocess=False))
    dag.on_render = DottedPath({"dotted_path": "churn.runs.on_render", "data_dir": str(tmp_path / "data"),
                                "warehouse": str(tmp_path / "data" / "churn.duckdb"), "root": str(tmp_path)})  # fmt: skip
    dag.on_finish = DottedPath("churn.runs.on_finish")
    dag.on_failure = DottedPath("churn.runs.on_failure")
    PythonCallable(_write, File(tmp_path / "out.txt"), dag, name="write", params={"marker": str(tmp_path / "fail")})
    return dag


def test_a_task_that_failed_after_writing_runs_again_in_the_next_build(tmp_path: Path):
    """Through real Ploomber builds with the DAG-level hooks: success is recorded; a forced build
    whose task fails after writing is recorded as failed and the task loses its "up to date"
    status, so the next plain build runs it again (Ploomber alone would skip it)."""
    from ploomber.exceptions import DAGBuildError

    ledger = RunLedger(tmp_path / "data")
    _dag(tmp_path).build(show_progress=False)
    assert _dag(tmp_path).build(show_progress=False)["Ran?"] == [False]  # up to date: skipped
    (tmp_path / "fail").touch()
    with pytest.raises(DAGBuildError):
        _dag(tmp_path).build(force=True, show_progress=False)
    (tmp_path / "fail").unlink()
    assert _dag(tmp_path).build(show_progress=False)["Ran?"] == [True]
    runs = ledger.runs()
    assert list(runs.status) == ["succeeded", "succeeded", "failed", "succeeded"]
    assert "RuntimeError: failed after writing" in runs.error.iloc[2]
    assert list(ledger.tasks(runs.run_id.iloc[2]).status) == ["Errored"]
    assert json.loads(runs.planned.iloc[1]) == [] and json.loads(runs.planned.iloc[3]) == ["write"]
    assert not (tmp_path / "data" / "run.lock").read_text()  # released: nobody holds it


def test_as_of_is_recorded_as_a_date_or_nothing():
    from datetime import date

    from churn.runs import as_of_date

    assert as_of_date(None) is None and as_of_date("") is None
    assert as_of_date("2026-01-02") == date(2026, 1, 2)
    with pytest.raises(ValueError, match="as_of 'tomorrow' is not a date"):
        as_of_date("tomorrow")


@pytest.mark.parametrize("value", ["2026-01-02", " 2026-01-02 ", "2026-01-02 00:00:00", "2026-01-02T09:30:00"])
def test_one_date_parser_reads_a_date_and_a_timestamps_string(value):
    """The run's date, the CLI's --as-of/FROM/TO and a stored timestamp's string all parse to the day."""
    from datetime import date, datetime

    import pandas as pd

    from churn.runs import as_of_date

    assert as_of_date(value) == date(2026, 1, 2)
    assert as_of_date(pd.Timestamp(value.strip())) == as_of_date(datetime(2026, 1, 2, 9)) == date(2026, 1, 2)


@pytest.mark.parametrize("value", ["2026-01-02x", "2026-02-30", "02/01/2026", "2026-1-2"])
def test_one_date_parser_refuses_anything_else_naming_the_argument(value):
    """Trailing text is refused, not cut off; the error names the argument (FROM, TO, as_of)."""
    from churn.runs import as_of_date

    with pytest.raises(ValueError, match=f"^FROM '{value}' is not a date"):
        as_of_date(value, "FROM")


def test_a_partial_build_repairs_its_tasks_and_leaves_the_rest_to_a_full_build(tmp_path: Path):
    """A dead run that planned a task outside this (partial) DAG: the tasks of this DAG it did
    not finish are forced, and the dead run stays `running` for a build that holds them all."""
    _dag(tmp_path).build(show_progress=False)
    ledger = RunLedger(tmp_path / "data")
    dead = {"params": {}, "pid": 1, "host": "h", "run_id": "dead", "planned": ["write", "elsewhere"]}
    ledger.start({**dead, "started_at": pd.Timestamp.now(tz="UTC").tz_localize(None) + pd.Timedelta(1, "s")})
    assert _dag(tmp_path).build(show_progress=False)["Ran?"] == [True]  # up to date, but forced
    runs = ledger.runs().set_index("run_id")
    assert runs.loc["dead", "status"] == "running"
    assert json.loads(runs.drop("dead").forced.iloc[-1]) == {"write": "did not finish in run dead"}


def test_a_partial_build_that_skips_upstream_is_locked_and_recorded(tmp_path: Path):
    """`--partially TASK --skip-upstream` (what `churn phase` runs) renders outside DAG.build:
    it still takes the lock and lands in the ledger."""
    dag = _dag(tmp_path)
    dag.build_partially("write", skip_upstream=True, force=True, show_progress=False)
    runs = RunLedger(tmp_path / "data").runs()
    assert list(runs.status) == ["succeeded"]
    assert list(RunLedger(tmp_path / "data").tasks(runs.run_id.iloc[0]).status) == ["Executed"]


def test_a_build_stopped_after_rendering_does_not_lock_out_the_next_one_in_this_process(tmp_path: Path):
    """Two tasks with one product fail Ploomber's check after the render hook took the lock; the
    next build in the same process closes that run as failed and proceeds."""
    from ploomber.products import File
    from ploomber.tasks import PythonCallable

    broken = _dag(tmp_path)
    PythonCallable(_write, File(tmp_path / "out.txt"), broken, name="twin", params={"marker": "none"})
    with pytest.raises(Exception, match="out.txt"):
        broken.build(show_progress=False)
    _dag(tmp_path).build(show_progress=False)
    runs = RunLedger(tmp_path / "data").runs()
    assert list(runs.status) == ["failed", "succeeded"]
    assert "before any task ran" in runs.error.iloc[0]
