"""Runs through real `ploomber build`s: recorded, exclusive, and repaired after a SIGKILL."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis

from churn.store import offline
from churn.store.raw import raw_table_summary
from churn.store.runs import RunLedger
from churn.store.warehouse import Warehouse
from tests.pipeline.conftest import PLOOMBER, copy_build

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--env--n_users", "300"]
# The killed and the repairing build stop at build-features (phases 01-03): the kill comes right
# after generate-data's commit, and what the repair must redo is those three phases; a whole
# build would add seven phases the kill never reached (the ledger's repair rules for a partial
# build: tests/unit/test_runs.py).
PHASES = ["--partially", "build-features"]
pytestmark = pytest.mark.slow


def _args(tmp: Path, redis_url: str) -> list[str]:
    return ["--env--data_dir", str(tmp / "data"), "--env--reports_dir", str(tmp / "reports"),
            "--env--warehouse", str(tmp / "data" / "churn.duckdb"), "--env--models_dir", str(tmp / "data" / "models"),
            "--env--redis_url", redis_url, *SMALL]  # fmt: skip


def _ploomber(tmp: Path, redis_url: str, *extra: str, command: str = "build", wait: bool = True):
    argv = [*PLOOMBER, command, *_args(tmp, redis_url), *extra]
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "False"}
    if wait:
        return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    # its own process group: the kill must take the notebook kernel (a child) with it
    return subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
    )


def _wait_for(predicate, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_killed_build_is_repaired_and_a_concurrent_build_refuses(tmp_path: Path, embedded_redis, small_build: Path):
    """The issue's scenario: a seed-42 build (a copy of the session's small build, made with the
    same parameters), then a seed-7 build of phases 01-03 SIGKILLed right after generate-data
    committed (its raw tables are seed 7, nothing else is). While the next build of those phases
    runs, a second (whole) build stops at once naming it. That next build finds the run died,
    forces the tasks it could not confirm, and leaves every table from seed 42 again, as after
    the first build. Readers never see the mix: a run publishes their snapshot only when it
    succeeds."""
    url = embedded_redis.url
    redis.Redis.from_url(url).flushdb()
    copy_build(small_build, tmp_path, url)
    wh = Warehouse(tmp_path / "data" / "churn.duckdb")
    ledger = RunLedger(tmp_path / "data")
    good_raw, good_features = raw_table_summary(wh), offline.features_fingerprint(wh)

    status = _ploomber(tmp_path, url, command="status")  # renders the DAG: must not lock or record
    assert status.returncode == 0, status.stderr[-2000:]
    assert list(ledger.runs().status) == ["succeeded"]

    published = wh.snapshot_path.stat().st_mtime_ns
    lock_file = tmp_path / "data" / "run.lock"
    killed = _ploomber(tmp_path, url, "--env--seed", "7", *PHASES, wait=False)
    try:  # a phase's commit marks the snapshot stale (the run publishes at its end)
        _wait_for(wh.unpublished_path.exists, "generate-data's commit")
    finally:
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait()
    died_run = RunLedger(tmp_path / "data").runs().run_id.iloc[-1]
    (tmp_path / "file").mkdir()
    shutil.copyfile(wh.path, tmp_path / "file" / "churn.duckdb")  # the warehouse file itself
    assert raw_table_summary(Warehouse(tmp_path / "file" / "churn.duckdb")) != good_raw  # seed 7 + seed 42: the mix
    assert wh.snapshot_path.stat().st_mtime_ns == published and raw_table_summary(wh) == good_raw  # readers' view
    assert list(ledger.runs().status) == ["succeeded", "running"]

    repairing = _ploomber(tmp_path, url, *PHASES, wait=False)
    try:
        _wait_for(lambda: f'"pid": {repairing.pid},' in lock_file.read_text(), "the repairing run's lock")
        holder = json.loads(lock_file.read_text())
        second = _ploomber(tmp_path, url)
        assert second.returncode != 0
        output = second.stdout + second.stderr
        assert "another run holds" in output and f"pid {holder['pid']}" in output and holder["run_id"] in output
    finally:
        out, _ = repairing.communicate(timeout=900)
    assert repairing.returncode == 0, out[-4000:]
    runs = ledger.runs()
    assert list(runs.status) == ["succeeded", "died", "succeeded"]
    assert runs.repaired_run.iloc[-1] == died_run
    assert "generate-data" in json.loads(runs.forced.iloc[-1])
    assert raw_table_summary(wh) == good_raw
    assert offline.features_fingerprint(wh) == good_features
    tasks = ledger.tasks(runs.run_id.iloc[-1]).set_index("task")
    assert sorted(tasks.index) == ["build-features", "check-raw-data", "generate-data"]
    assert (tasks.status == "Executed").all()
    assert json.loads(tasks.loc["generate-data", "outputs"])["tables"] == json.loads(json.dumps(good_raw))
