"""`churn db`, `churn redis-cli`, `churn logs`, `churn version`, the Lab settings and the Makefile
variables (PORT, DASHBOARD_PORT)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from churn.store.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[3]


def test_db_is_read_only_by_default_and_writes_only_with_write(churn, data_dir):
    read = churn("db", "-c", "SELECT count(*) AS n FROM ml_pipeline.models")
    assert read.exit_code == 0 and "2" in read.output
    refused = churn("db", "-c", "CREATE TABLE ml_pipeline.scratch AS SELECT 1 AS x")
    assert refused.exit_code == 1 and "read-only mode" in refused.output
    assert churn("db", "--write", "-c", "CREATE TABLE ml_pipeline.scratch AS SELECT 1 AS x").exit_code == 0
    with Warehouse(data_dir / "churn.duckdb").reader() as con:  # published to the readers' snapshot
        assert con.execute("SELECT x FROM ml_pipeline.scratch").fetchall() == [(1,)]


def test_redis_cli_talks_to_the_projects_redis(data_dir, embedded_redis, redis_client):
    redis_client.set("cli-test", "hello")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "churn.cli",
            "--project",
            str(ROOT),
            "--set",
            f"data_dir={data_dir}",
            "--set",
            f"redis_url={embedded_redis.url}",
            "redis-cli",
            "GET",
            "cli-test",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "hello"


def test_version_names_the_commit_and_the_pinned_tools(churn):
    out = churn("version").output
    assert out.startswith("churn 0.1.0 (code ")
    assert "duckdb 2.0.1" in out and "ploomber 0.23.3" in out and "click 8.5.1" in out


def test_logs_without_any_run_says_where_they_will_be(churn, data_dir):
    out = churn("logs").output
    assert f"no logs yet under {data_dir / 'logs'}" in out


def test_lab_opens_python_files_as_notebooks_with_the_projects_config(monkeypatch, tmp_path):
    """`make lab` adds .jupyter to JUPYTER_CONFIG_PATH; JupyterLab's settings then make the
    Jupytext notebook the default viewer of .py files (a double click opens a notebook)."""
    from jupyterlab_server.settings_utils import _get_overrides

    monkeypatch.setenv("JUPYTER_CONFIG_PATH", str(ROOT / ".jupyter"))
    overrides, error = _get_overrides(str(tmp_path))
    assert not error
    viewers = overrides["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]
    assert viewers == {"python": "Jupytext Notebook"}
    makefile = (ROOT / "Makefile").read_text()
    assert "JUPYTER_CONFIG_PATH=$(CURDIR)/.jupyter" in makefile and "PLOOMBER_ENV_FILENAME=env.lab.yaml" in makefile


def _make_dry_run(*args: str) -> str:
    out = subprocess.run(
        ["make", "-n", "-o", ".venv/.churn-installed", "BIN=.venv/bin", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_ports_are_configurable():
    assert "CHURN_PORT=8123" in _make_dry_run("serve", "PORT=8123", "REDIS_URL=redis://x")
    assert "CHURN_PORT=8000" in _make_dry_run("serve", "REDIS_URL=redis://x")
    assert "--port 9866" in _make_dry_run("dashboards", "DASHBOARD_PORT=9866")
    assert "--api http://127.0.0.1:8123" in _make_dry_run("status", "PORT=8123")


def test_make_targets_call_the_cli():
    assert "churn db --write" in _make_dry_run("db-connect", "WRITE=1")
    assert "--write" not in _make_dry_run("db-connect")
    assert "phase check-features --in-place" in _make_dry_run("phase", "PHASE=check-features", "IN_PLACE=1")
    assert "churn build" in _make_dry_run("build", "REDIS_URL=redis://x")
    for target in ("logs", "version", "plot", "redis-cli"):
        assert "churn" in _make_dry_run(target)


def test_cli_targets_follow_the_data_set_workspace():
    """`make status/phase/db-connect/... DATASET=...` look where `make build DATASET=...` wrote
    (its warehouse, models and last-build.json), not at the default workspace."""
    dataset = "examples/purchase_log/dataset.yaml"
    workspace = ROOT / "data" / "purchase_log"
    for target in ("status", "plot", "logs", "db-connect", "redis-cli"):
        line = _make_dry_run(target, f"DATASET={dataset}")
        assert f"--set data_dir={workspace}" in line and f"--set warehouse={workspace}/churn.duckdb" in line, line
    assert "--set data_dir" not in _make_dry_run("status")


def test_db_shell_reads_statements_until_quit(churn):
    result = churn(
        "db", input="SELECT 'churn' || '-' ||\n count(*) AS n FROM ml_pipeline.models;\nSELECT nope;\n.tables\n.quit\n"
    )
    assert result.exit_code == 0, result.output
    assert "read-only" in result.output and "churn-2" in result.output  # a statement over two lines
    assert "Error: " in result.output  # a bad statement is reported and the shell goes on
    assert "features" in result.output  # .tables


def test_status_of_a_project_never_built_says_what_to_do(tmp_path):
    from click.testing import CliRunner

    from churn.cli import main

    data = tmp_path / "data"
    result = CliRunner().invoke(main, ["--project", str(ROOT), "--set", f"data_dir={data}",
                                       "--set", f"warehouse={data / 'churn.duckdb'}", "--set", f"reports_dir={tmp_path / 'r'}",
                                       "status", "--api", "http://127.0.0.1:9"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sum(line.strip().endswith("not run") for line in result.output.splitlines()) == 10
    assert "not built yet (make build)" in result.output and "no production version" in result.output
    assert "embedded server not running" in result.output and "not running (make serve)" in result.output


def test_runs_lists_the_ledger_newest_last_with_the_newest_runs_tasks(churn, data_dir):
    import pandas as pd

    from churn.store.runs import RunLedger

    ledger = RunLedger(data_dir)
    for k, (status, error) in enumerate([("succeeded", None), ("failed", "Traceback ...\nValueError: bad rows")]):
        run_id = f"2026120{k + 1}T000000-1"
        ledger.start({"run_id": run_id, "pid": 1, "host": "h", "started_at": pd.Timestamp(f"2026-12-0{k + 1}")})
        ledger.finish(run_id, status, [{"task": "generate-data", "status": "Executed", "elapsed_s": 1.5 + k}], error)
    out = churn("runs").output.splitlines()
    assert out[0].startswith("20261201T000000-1") and " succeeded " in out[0]
    assert out[1].startswith("20261202T000000-1") and out[1].endswith("ValueError: bad rows")
    assert out[2] == "tasks of 20261202T000000-1:" and out[3].split() == ["generate-data", "Executed", "2.5", "s"]
    as_json = __import__("json").loads(churn("runs", "--json", "--last", "1").output)
    assert [r["run_id"] for r in as_json] == ["20261202T000000-1"] and as_json[0]["tasks"][0]["elapsed_s"] == 2.5
