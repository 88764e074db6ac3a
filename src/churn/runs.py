"""Runs: one build at a time per data dir, every build recorded, a crashed one repaired.

Ploomber calls the DAG-level hooks declared at the top of ``pipeline.yaml``:

* ``on_render`` (after Ploomber decided which tasks to run, before any runs): take the run lock
  ``<data_dir>/run.lock`` (an ``flock`` held for the whole build; a second build stops at once,
  naming the holder's PID, run id and start time), repair after a run that died, and record the
  new run in the ledger (``churn.store.runs``) with its parameters, code version and plan;
* ``on_finish`` / ``on_failure``: record the outcome with each task's status, time and outputs
  (its receipt), then release the lock.

The phases of a run write the warehouse without publishing the readers' snapshot after each
write; a successful run publishes it once at its end (``on_finish``), so the API and dashboards
see the state of finished runs only (see :mod:`churn.store.warehouse`). While a run is open, each
phase's kernel is started while the phase before it runs (:mod:`churn.reports.kernel`).

Repair: a run still ``running`` in the ledger while we hold the lock has died (the kernel drops
an ``flock`` with its process). The tasks it planned but did not finish (their product metadata
is older than the run's start) may have written half their outputs, and a receipt whose table
fingerprints differ from the warehouse describes data that is no longer there; Ploomber would
still call those tasks up to date. Their product metadata is deleted, so they, and everything
downstream of them, run again.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import socket
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import pandas as pd

from churn.pipeline import RECEIPT_KEY, code_version
from churn.reports.kernel import discard_warm_kernels, enable_warm_kernels
from churn.reports.preload import Import, phase_imports
from churn.store.runs import RunLedger
from churn.store.warehouse import DEFER_ENV, Warehouse

LOCK_FILE = "run.lock"


class RunLockedError(RuntimeError):
    """Another run holds this data dir."""


class RunLock:
    """``flock`` on ``<data_dir>/run.lock``; the file names the holder (JSON) while it is held."""

    def __init__(self, data_dir: str | os.PathLike) -> None:
        self.path = Path(data_dir) / LOCK_FILE
        self._handle: TextIO | None = None

    def acquire(self, holder: dict[str, Any]) -> None:
        """Take the lock and write ``holder`` into it, or raise :class:`RunLockedError` at once."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held open until release(): the open file is the lock
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            text = handle.read()
            handle.close()
            raise RunLockedError(
                f"another run holds {self.path}: {describe_holder(text)}; wait for it to finish or stop it, then retry"
            ) from None
        handle.truncate(0)
        handle.write(json.dumps(holder, default=str))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.truncate(0)
            self._handle.close()  # closing the file releases the flock
            self._handle = None

    @property
    def held(self) -> bool:
        return self._handle is not None


def describe_holder(text: str) -> str:
    """``pid 123, run 20261205T010203-123-9f3a, started 2026-12-05 01:02:03 UTC`` from the lock file."""
    try:
        holder = json.loads(text)
        return f"pid {holder['pid']}, run {holder['run_id']}, started {holder['started_at']} UTC"
    except (ValueError, KeyError, TypeError):
        return "a process that did not say who it is"


# -- the DAG-level hooks --------------------------------------------------------------------------
_CURRENT: dict[str, Any] = {}  # the run this process is building: lock, ledger, run id, start time


def _build_force() -> bool | None:
    """The ``force`` flag of the ``DAG.build`` we are called from, None outside a build:
    ``ploomber status`` / ``plot`` render the DAG (and so call the ``on_render`` hook) without
    running anything, and must neither lock nor record a run."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        # `_build_partially` renders before building when it skips upstream tasks (and the build
        # then reuses that render without calling the hook again), so it counts as a build too
        in_dag_module = code.co_filename.replace(os.sep, "/").endswith("ploomber/dag/dag.py")
        if in_dag_module and code.co_name in ("_build", "_build_partially"):
            return bool(frame.f_locals.get("force"))
        frame = frame.f_back
    return None


def on_render(dag, data_dir: str, warehouse: str, root: str = ".") -> None:
    """Lock the data dir, repair after a died run, record the new run (see the module doc)."""
    build_force = _build_force()
    if _CURRENT.get("rerendering") or build_force is None:
        return
    if "run_id" in _CURRENT:  # an earlier build in this process stopped between render and build
        _close("failed", [], "the build stopped after rendering, before any task ran")
    started = datetime.now(UTC).replace(tzinfo=None)
    run_id = f"{started:%Y%m%dT%H%M%S}-{os.getpid()}-{secrets.token_hex(2)}"  # unique even within a second
    lock = RunLock(data_dir)
    lock.acquire(
        {
            "pid": os.getpid(),
            "run_id": run_id,
            "started_at": f"{started:%Y-%m-%d %H:%M:%S}",
            "host": socket.gethostname(),
        }
    )
    try:
        ledger = RunLedger(data_dir)
        died, forced = repair(dag, ledger, Warehouse(warehouse), build_force)
        params = run_params(dag)
        ledger.start(
            {
                "run_id": run_id,
                "as_of": as_of_date(params.get("as_of")),
                "params": params,
                "code_version": code_version(root),
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started_at": started,
                "planned": planned_tasks(dag),
                "forced": forced,
                "repaired_run": died,
            }
        )
    except BaseException:
        lock.release()
        raise
    _CURRENT.update(lock=lock, ledger=ledger, run_id=run_id, warehouse=Warehouse(warehouse))
    os.environ[DEFER_ENV] = str(Path(warehouse).resolve())  # the phase kernels inherit it
    # each phase's kernel starts (and does the phase's imports) while the one before it runs
    enable_warm_kernels([_phase_imports(dag[name]) for name in planned_tasks(dag)])
    if died:
        print(
            f"churn: run {died} died before it finished; forced again: "
            + (", ".join(f"{t} ({why})" for t, why in forced.items()) or "nothing"),
            file=sys.stderr,
        )


def on_finish(dag, report) -> None:
    """Record a successful run with each task's status, time and receipt; release the lock."""
    if "run_id" not in _CURRENT:
        return
    elapsed = {row["name"]: row for row in report.to_pandas().to_dict("records")} if report is not None else {}
    try:  # the run's writes reach the readers once, before the run counts as done
        _CURRENT["warehouse"].publish_pending()
    except Exception as exc:
        _close("failed", task_rows(dag, elapsed), f"publishing the readers' snapshot failed: {exc}")
        raise
    _close("succeeded", task_rows(dag, elapsed), None)


def on_failure(dag, traceback: dict) -> None:
    """Record a failed run (the traceback's last line) and each task's status; release the lock.

    A task that failed may have committed part of its work (a table) before its error, while
    Ploomber keeps the product metadata of its last success: the next build would call it up to
    date. Its metadata is deleted, so it (and what depends on it) runs again.
    """
    if "run_id" not in _CURRENT:
        return
    for name in dag:
        if str(dag[name].exec_status) == "TaskStatus.Errored":
            dag[name].product.metadata.delete()
    _close("failed", task_rows(dag, {}), error_summary(traceback or {}))


def error_summary(traceback: dict) -> str:
    """The exception lines of Ploomber's build traceback (``RuntimeError: ...``), without its
    banner, at most 2,000 characters."""
    lines = [line.strip() for text in traceback.values() for line in str(text).splitlines()]
    errors = [line for line in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt)\b", line)]
    return ("\n".join(dict.fromkeys(errors)) or "\n".join(lines[-3:]) or "failed")[:2000]


def _close(status: str, tasks: list[dict], error: str | None) -> None:
    try:
        _CURRENT["ledger"].finish(_CURRENT["run_id"], status, tasks, error)
    finally:
        discard_warm_kernels()
        os.environ.pop(DEFER_ENV, None)
        _CURRENT["lock"].release()
        _CURRENT.clear()


# -- what a run records ---------------------------------------------------------------------------
def run_params(dag) -> dict[str, Any]:
    """Every parameter the tasks receive (from env.yaml and ``--env--``), merged by name."""
    params: dict[str, Any] = {}
    for name in dag:
        params.update(dag[name].params.to_json_serializable(params_only=True))
    return dict(sorted(params.items()))


def as_of_date(value: Any, what: str = "as_of") -> date | None:
    """A run's date as a date: the ``as_of`` parameter, the command line's dates (``what`` names
    the one in the error: ``FROM``, ``TO``); None when empty (a full build: the end of the data).

    The project's one date parser: ISO 8601, a date or a date and time (a ``Timestamp``'s string),
    and nothing after it ("2026-01-02x" is refused, not cut to its first ten characters).
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return datetime.fromisoformat(str(value).strip()).date()
    except ValueError:
        raise ValueError(f"{what} {value!r} is not a date (YYYY-MM-DD)") from None


def _phase_imports(task) -> tuple[Import, ...]:
    """What a notebook task's phase imports (nothing for another kind of task)."""
    source = getattr(getattr(task, "source", None), "loc", None)
    return phase_imports(source) if isinstance(source, str | Path) and Path(source).suffix in (".py", ".ipynb") else ()


def planned_tasks(dag) -> list[str]:
    """The tasks this build will run (Ploomber found them outdated, or they were forced)."""
    return [
        name
        for name in dag
        if str(dag[name].exec_status) in {"TaskStatus.WaitingExecution", "TaskStatus.WaitingUpstream"}
    ]


def read_receipt(task) -> dict | None:
    """A task's JSON receipt (what it wrote, counts, fingerprints), None if it has none."""
    try:
        path = Path(str(task.product[RECEIPT_KEY]))
    except (KeyError, TypeError):
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def task_rows(dag, report: dict[str, dict]) -> list[dict[str, Any]]:
    """Per task: Ploomber's status (Executed, Skipped, Errored, Aborted...), seconds, receipt."""
    rows = []
    for name in dag:
        task = dag[name]
        status = str(task.exec_status).removeprefix("TaskStatus.")
        facts = report.get(name, {})
        rows.append(
            {
                "task": name,
                "status": status,
                "elapsed_s": facts.get("Elapsed (s)") if facts.get("Ran?") else None,
                "outputs": read_receipt(task) if status == "Executed" else None,
            }
        )
    return rows


# -- repair after a died run ----------------------------------------------------------------------
def repair(
    dag, ledger: RunLedger, warehouse: Warehouse, build_force: bool = False
) -> tuple[str | None, dict[str, str]]:
    """Mark every ``running`` run as died (we hold the lock, so its holder is gone) and force the
    tasks whose outputs cannot be confirmed (``build_force``: the build runs everything anyway).
    Returns (the latest died run, {task: reason})."""
    running = ledger.runs("running")
    if running.empty:
        return None, {}
    forced: dict[str, str] = {}
    for row in running.to_dict("records"):
        started = pd.Timestamp(row["started_at"]).tz_localize("UTC").timestamp()
        planned = json.loads(str(row["planned"]))
        for name in planned:
            if name in dag and not _finished_since(dag[name], started):
                forced.setdefault(name, f"did not finish in run {row['run_id']}")
        # A partial build (`--partially`, `churn phase`) cannot repair tasks outside its DAG:
        # the dead run stays `running` until a build that holds them all repairs it.
        if all(name in dag for name in planned):
            ledger.mark_died(str(row["run_id"]), "its process ended while the run was running (killed or crashed)")
    for name, why in unconfirmed_receipts(dag, warehouse).items():
        forced.setdefault(name, why)
    if forced:
        force(dag, list(forced), build_force)
    return str(running.run_id.iloc[-1]), forced


def _finished_since(task, started: float) -> bool:
    stamp = task.product.metadata.timestamp
    return stamp is not None and stamp >= started


def unconfirmed_receipts(dag, warehouse: Warehouse) -> dict[str, str]:
    """Tasks whose receipt lists table fingerprints that the warehouse no longer has."""
    out: dict[str, str] = {}
    if not warehouse.path.exists():
        return out
    with warehouse.direct_reader() as con:
        for name in dag:
            receipt = read_receipt(dag[name]) or {}
            for table, recorded in _fingerprinted_tables(receipt).items():
                actual = Warehouse.content_hash(con, table) if Warehouse.table_exists(con, table) else "missing"
                if actual != recorded:
                    out[name] = f"{table} is {actual} in the warehouse, its receipt says {recorded}"
                    break
    return out


def _fingerprinted_tables(receipt: dict) -> dict[str, str]:
    """``{schema.table: fingerprint}`` a receipt vouches for: its ``tables`` entry, whose keys are
    qualified names or raw table names (generate-data's receipt)."""
    tables = receipt.get("tables")
    if not isinstance(tables, dict):
        return {}
    return {
        (key if "." in key else f"raw_data.{key}"): facts["fingerprint"]
        for key, facts in tables.items()
        if isinstance(facts, dict) and "fingerprint" in facts
    }


def force(dag, names: list[str], build_force: bool = False) -> None:
    """Make ``names`` (and so their downstream) outdated on disk, then let Ploomber re-decide."""
    for name in names:
        dag[name].product.metadata.delete()
    for name in dag:
        dag[name].product.metadata.clear()
    _CURRENT["rerendering"] = True
    try:
        dag.render(force=build_force, show_progress=False)
    finally:
        _CURRENT.pop("rerendering", None)
