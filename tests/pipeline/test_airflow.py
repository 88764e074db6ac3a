"""Apache Airflow runs the generated DAG: the pinned Airflow, installed into a virtualenv of its
own, loads the DAG that `churn airflow-dag` wrote and runs it with `airflow dags test` for two
consecutive dates against a copy of the session's small build in a temp dir.

The virtualenv is cached in ~/.cache/churn-airflow-<version> (CHURN_AIRFLOW_CACHE overrides) and
reused while requirements-airflow.lock is unchanged, so only the first run on a machine installs
(under a minute here), as is the metadata DB `airflow db migrate` writes (each test starts from a
copy of it). The Airflow side runs as one Airflow process (Airflow's loader, then its CLI's main()
for each command), not one per command: each start costs seconds. The test skips only when the
package registry cannot be reached.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from churn.cli import main
from churn.cli.dagstate import phase_graph
from churn.cli.project import Project
from churn.reports.zygote import SHARED_ENV
from churn.store.runs import RunLedger
from tests.pipeline.conftest import copy_build, with_database, workspace_params, zygote_serving

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_VERSION = "3.3.2"
LOCK = ROOT / "requirements-airflow.lock"  # pip freeze of that install: the constraints
DATES = ("2026-01-02", "2026-01-03")  # the two days after the full build's `end` (2026-01-01)
DAG_ID = "churn_daily"
REDIS_DB = 2  # a database of its own on the session's Redis: the small build's stays untouched
pytestmark = pytest.mark.slow

# Airflow's side of the test, run with Airflow's python as ONE process (each Airflow start costs
# seconds): the DAG as Airflow's own loader reads it from the dags folder (the loader `airflow dags
# test` uses), written to the file argv[1]; then Airflow's command line itself (its `main()`) for
# each command of argv[3:] (a JSON argv), in order, as `airflow <command>` would run it.
AIRFLOW_DRIVER = """
import json, sys
from airflow.__main__ import main  # first: it loads Airflow's configuration as the CLI does
from airflow.utils.cli import get_bagged_dag

out, dag_id, *commands = sys.argv[1:]
dag = get_bagged_dag(None, dag_id)
with open(out, "w") as sink:
    json.dump({
        "dag_id": dag.dag_id,
        "tasks": {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks},
        "retries": sorted({t.retries for t in dag.tasks}),
        "operators": sorted({type(t).__name__ for t in dag.tasks}),
        "max_active_runs": dag.max_active_runs,
        "max_active_tasks": dag.max_active_tasks,
        "catchup": dag.catchup,
    }, sink)
for command in commands:
    sys.argv = ["airflow", *json.loads(command)]
    main()
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


def airflow_env(home: Path, dags: Path) -> dict[str, str]:
    """Airflow's settings for a test: its home (config, SQLite metadata DB, logs) and the DAG folder."""
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": str(ROOT / "src"),  # the tasks' churn is this checkout's
        "GX_ANALYTICS_ENABLED": "False",
    }


@pytest.fixture(scope="module")
def migrated_db(airflow_venv: Path) -> Path:
    """An empty metadata DB as `airflow db migrate` leaves it (schema, default pool, log
    templates: no paths, no DAGs), made once per Airflow install and copied into each test's
    AIRFLOW_HOME: a copy is what a fresh `airflow db migrate` would write there, without the
    seconds it takes. It lives in the install's folder, so a new lock file makes a new one."""
    template = airflow_venv / "churn-migrated-airflow.db"
    with open(airflow_venv.parent / f".{airflow_venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not template.is_file():
            home = Path(tempfile.mkdtemp(prefix="airflow-migrate-", dir=airflow_venv))
            try:
                run([str(airflow_venv / "bin" / "airflow"), "db", "migrate"], airflow_env(home, home / "dags"), 600)
                os.replace(home / "airflow.db", template)
            finally:
                shutil.rmtree(home, ignore_errors=True)
    return template


def json_rows(text: str) -> list[dict]:
    """The JSON list an `airflow ... -o json` command printed last (Airflow logs warnings first)."""
    return json.loads(text.strip().splitlines()[-1])


@pytest.mark.timeout(3600)
def test_airflow_runs_the_generated_dag_for_two_consecutive_dates(
    airflow_venv: Path, migrated_db: Path, tmp_path: Path, embedded_redis, small_build: Path
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
    # `churn airflow-dag` in this process (click's runner): it writes the file as the command does
    generated = CliRunner().invoke(
        main, ["--project", str(ROOT), *set_args, "airflow-dag", "--out", str(dags / f"{DAG_ID}.py")]
    )
    assert generated.exit_code == 0, generated.output
    # the cycles follow a full build (the year up to `end`), as `make cycle` does: a copy of the
    # session's small build, made with the same parameters (workspace_params) as this workspace
    copy_build(small_build, workspace, redis_url)
    home = tmp_path / "airflow"
    home.mkdir()
    shutil.copyfile(migrated_db, home / "airflow.db")
    env = airflow_env(home, dags)
    # one Airflow process: the DAG as Airflow loads it, then `airflow dags test` for each date
    # (one run after the other, as in Airflow's CLI) and `airflow dags list-runs`
    described_file = tmp_path / "described.json"
    commands = [*(["dags", "test", DAG_ID, day] for day in DATES), ["dags", "list-runs", DAG_ID, "-o", "json"]]
    driver = [str(airflow_venv / "bin" / "python"), "-c", AIRFLOW_DRIVER, str(described_file), DAG_ID]
    with zygote_serving(env) as zygote:  # one for the tasks' environment, as a worker would keep
        env[SHARED_ENV] = zygote
        result = run([*driver, *map(json.dumps, commands)], env, timeout=3000)

    dag = json.loads(described_file.read_text())
    graph = phase_graph(Project(ROOT))
    assert dag["tasks"] == {phase: sorted(upstream) for phase, upstream in graph.items()}
    assert dag["operators"] == ["BashOperator"] and dag["retries"] == [2]
    assert (dag["max_active_runs"], dag["max_active_tasks"], dag["catchup"]) == (1, 1, False)

    runs = json_rows(result.stdout)
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
