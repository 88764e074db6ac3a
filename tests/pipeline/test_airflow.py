"""Apache Airflow runs the generated DAG: the pinned Airflow, installed into a virtualenv of its
own, loads the DAG that `churn airflow-dag` wrote and runs it with `airflow dags test` for two
consecutive dates against a copy of the session's small build in a temp dir.

The virtualenv is cached in ~/.cache/churn-airflow-<version> (CHURN_AIRFLOW_CACHE overrides) and
reused while requirements-airflow.lock is unchanged, so only the first run on a machine installs
(under a minute here). The test skips only when the package registry cannot be reached.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from churn.cli.dagstate import phase_graph
from churn.cli.project import Project
from churn.store.runs import RunLedger
from tests.pipeline.conftest import copy_build, with_database, workspace_params

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_VERSION = "3.3.2"
LOCK = ROOT / "requirements-airflow.lock"  # pip freeze of that install: the constraints
DATES = ("2026-01-02", "2026-01-03")  # the two days after the full build's `end` (2026-01-01)
DAG_ID = "churn_daily"
REDIS_DB = 2  # a database of its own on the session's Redis: the small build's stays untouched
pytestmark = pytest.mark.slow

# What Airflow itself makes of the DAG file (run with Airflow's python).
DESCRIBE = """
import json, runpy, sys
dag = runpy.run_path(sys.argv[1])["dag"]
print(json.dumps({
    "dag_id": dag.dag_id,
    "tasks": {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks},
    "retries": sorted({t.retries for t in dag.tasks}),
    "operators": sorted({type(t).__name__ for t in dag.tasks}),
    "max_active_runs": dag.max_active_runs,
    "max_active_tasks": dag.max_active_tasks,
    "catchup": dag.catchup,
}))
"""


def registry_reachable() -> bool:
    probe = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", "apache-airflow"], capture_output=True, timeout=180
    )
    return probe.returncode == 0


@pytest.fixture(scope="module")
def airflow_venv() -> Path:
    """The pinned Airflow in a virtualenv of its own (Airflow pins its own FastAPI and pydantic),
    installed once per machine and lock file; concurrent test processes wait for one install."""
    cache = Path(os.environ.get("CHURN_AIRFLOW_CACHE") or Path.home() / ".cache" / f"churn-airflow-{AIRFLOW_VERSION}")
    stamp = cache / ".churn-installed"
    wanted = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache.parent / f".{cache.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file() and stamp.read_text() == wanted and (cache / "bin" / "airflow").is_file():
            return cache
        shutil.rmtree(cache, ignore_errors=True)
        base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
        subprocess.run([str(base), "-m", "venv", str(cache)], check=True)
        started = time.monotonic()
        install = subprocess.run(
            [str(cache / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile", "-c", str(LOCK),
             f"apache-airflow=={AIRFLOW_VERSION}"],  # --no-compile: bytecode is written on first use
            capture_output=True, text=True, timeout=1500,
        )  # fmt: skip
        if install.returncode != 0:
            shutil.rmtree(cache, ignore_errors=True)
            if not registry_reachable():
                pytest.skip(f"the package registry is unreachable: cannot install apache-airflow=={AIRFLOW_VERSION}")
            pytest.fail(f"installing apache-airflow=={AIRFLOW_VERSION} failed:\n{install.stderr[-4000:]}")
        print(f"installed apache-airflow=={AIRFLOW_VERSION} into {cache} in {time.monotonic() - started:.0f} s")
        stamp.write_text(wanted)
    return cache


def run(argv: list[str], env: dict[str, str], timeout: int = 1800) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, cwd=env["AIRFLOW_HOME"], env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stdout[-6000:]}\n{result.stderr[-4000:]}"
    return result


def json_rows(text: str) -> list[dict]:
    """The JSON list an `airflow ... -o json` command printed last (Airflow logs warnings first)."""
    return json.loads(text.strip().splitlines()[-1])


@pytest.mark.timeout(3600)
def test_airflow_runs_the_generated_dag_for_two_consecutive_dates(
    airflow_venv: Path, tmp_path: Path, embedded_redis, small_build: Path
):
    """Airflow sees one BashOperator per phase with Ploomber's dependencies, one run and one task
    at a time, retries; after a full build, `airflow dags test` for the next two days (two daily
    cycles) succeeds, and the run ledger shows every phase executed for each date (as_of = the
    logical date), one run after another."""
    workspace = tmp_path / "workspace"
    redis_url = with_database(embedded_redis.url, REDIS_DB)
    redis.Redis.from_url(redis_url).flushdb()
    sets = workspace_params(workspace, redis_url)
    dags = tmp_path / "dags"
    set_args = [a for key, value in sets.items() for a in ("--set", f"{key}={value}")]
    generated = subprocess.run(
        [sys.executable, "-m", "churn.cli", "--project", str(ROOT), *set_args, "airflow-dag",
         "--out", str(dags / f"{DAG_ID}.py")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert generated.returncode == 0, generated.stdout + generated.stderr
    # the cycles follow a full build (the year up to `end`), as `make cycle` does: a copy of the
    # session's small build, made with the same parameters (workspace_params) as this workspace
    copy_build(small_build, workspace, redis_url)
    (tmp_path / "airflow").mkdir()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": str(ROOT / "src"),  # the tasks' churn is this checkout's
        "GX_ANALYTICS_ENABLED": "False",
    }
    airflow = str(airflow_venv / "bin" / "airflow")
    run([airflow, "db", "migrate"], env, timeout=600)

    described = run([str(airflow_venv / "bin" / "python"), "-c", DESCRIBE, str(dags / f"{DAG_ID}.py")], env)
    dag = json.loads(described.stdout.strip().splitlines()[-1])
    graph = phase_graph(Project(ROOT))
    assert dag["tasks"] == {phase: sorted(upstream) for phase, upstream in graph.items()}
    assert dag["operators"] == ["BashOperator"] and dag["retries"] == [2]
    assert (dag["max_active_runs"], dag["max_active_tasks"], dag["catchup"]) == (1, 1, False)

    for day in DATES:
        run([airflow, "dags", "test", DAG_ID, day], env, timeout=1500)

    runs = json_rows(run([airflow, "dags", "list-runs", DAG_ID, "-o", "json"], env).stdout)
    assert sorted((r["logical_date"][:10], r["state"]) for r in runs) == [(d, "success") for d in DATES]

    ledger = RunLedger(sets["data_dir"])
    rows = ledger.runs()
    assert set(rows.status) == {"succeeded"}
    assert rows.as_of.isna().iloc[0]  # the full build, then the DAG's runs
    rows = rows.iloc[1:]
    assert [str(d)[:10] for d in rows.as_of] == [d for d in DATES for _ in graph]  # first date, then the next
    for day in DATES:
        of_day = rows[rows.as_of.astype(str).str[:10] == day]
        executed = []
        for run_id in of_day.run_id:
            tasks = ledger.tasks(run_id)
            executed += list(tasks.task[tasks.status == "Executed"])
        assert sorted(executed) == sorted(graph), f"{day}: each phase executed once"
        for phase, upstream in graph.items():  # train-model and publish-online may run in either order
            assert all(executed.index(up) < executed.index(phase) for up in upstream), f"{day}: {phase} early"
    started = list(rows.started_at)
    finished = list(rows.finished_at)
    assert all(f <= s for f, s in zip(finished[:-1], started[1:], strict=True)), "runs overlapped"
