"""The `churn` CLI on a real small build: status, runs, plot (in this process: they only read),
one phase on a scratch copy, failures that end with their cause, and a phase notebook run by hand
as Lab would."""

from __future__ import annotations

import hashlib
import html
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from churn.serving.process import free_port
from churn.store.redis_server import EmbeddedRedis

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
# `churn phase` and `churn scratch` write data/scratch/<name> inside the shared small build: these
# tests run one after another on one xdist worker (two of them use the same scratch folder)
SCRATCH = pytest.mark.xdist_group("small_build_scratch")
TASKS = [
    "generate-data",
    "check-raw-data",
    "build-features",
    "check-features",
    "train-model",
    "publish-online",
    "score-batch",
    "monitor",
    "decide-retraining",
    "ab-test",
]


def sets(build: Path, redis_url: str) -> list[str]:
    """The same parameters the small build ran with (tests/pipeline/conftest.py)."""
    data = build / "data"
    return [
        "--set",
        f"data_dir={data}",
        "--set",
        f"reports_dir={build / 'reports'}",
        "--set",
        f"warehouse={data / 'churn.duckdb'}",
        "--set",
        f"models_dir={data / 'models'}",
        "--set",
        f"redis_url={redis_url}",
        "--set",
        "n_users=300",
    ]


def churn(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURN_") and k != "REDIS_URL"}
    return subprocess.run(
        [sys.executable, "-m", "churn.cli", "--project", str(ROOT), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture()
def churn_here(monkeypatch: pytest.MonkeyPatch):
    """``churn_here(*args)``: the same command in this process, through click's runner (exit code,
    stdout and stderr as a shell sees them), for the commands that only read the build: they
    render the DAG like the subprocess does, without paying a fresh interpreter's imports."""
    from click.testing import CliRunner

    from churn.cli import main

    for name in [n for n in os.environ if n.startswith("CHURN_") or n == "REDIS_URL"]:
        monkeypatch.delenv(name)
    cwd = Path.cwd()

    def run(*args: str) -> subprocess.CompletedProcess:
        result = CliRunner().invoke(main, ["--project", str(ROOT), *args], catch_exceptions=False)
        assert Path.cwd() == cwd  # the command left the process where it was
        return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)

    return run


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_status_shows_every_phase_built_and_up_to_date(churn_here, small_build, build_redis):
    out = churn_here(*sets(small_build, build_redis), "status", "--api", "http://127.0.0.1:9")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    for task in TASKS:
        line = next(ln for ln in lines if ln.strip().startswith(task + " "))
        assert " ok in " in line and "outdated" not in line, line
    assert any(ln.startswith("model      churn_model v") and "in production" in ln for ln in lines)
    assert any(ln.startswith("redis ") and ": up, " in ln for ln in lines)
    assert any(ln.startswith("api ") and "not running" in ln for ln in lines)
    assert not list((small_build / "reports").glob(".*.last-good"))  # looking wrote nothing


def test_a_changed_parameter_shows_the_tasks_it_makes_outdated(churn_here, small_build, build_redis):
    """Ploomber's own verdict: a new horizon re-runs build-features and everything downstream."""
    out = churn_here(
        *sets(small_build, build_redis), "--set", "horizon_days=20", "status", "--api", "http://127.0.0.1:9"
    )
    flagged = {ln.split()[0] for ln in out.stdout.splitlines() if "outdated" in ln and ln.startswith("  ")}
    assert {"build-features", "train-model", "ab-test"} <= flagged
    assert "generate-data" not in flagged and "check-raw-data" not in flagged


def test_runs_reads_the_build_from_the_run_ledger(churn_here, small_build, build_redis):
    out = churn_here(*sets(small_build, build_redis), "runs", "--json")
    assert out.returncode == 0, out.stderr
    runs = json.loads(out.stdout)
    assert runs[-1]["status"] == "succeeded"
    assert sorted(t["task"] for t in runs[-1]["tasks"]) == sorted(TASKS)
    text = churn_here(*sets(small_build, build_redis), "runs").stdout
    assert " succeeded " in text and f"tasks of {runs[-1]['run_id']}:" in text


def test_phases_lists_each_phase_with_its_duration_and_receipt(churn_here, small_build, build_redis):
    out = churn_here(*sets(small_build, build_redis), "phases", "--json")
    rows = json.loads(out.stdout)
    assert [r["task"] for r in rows] == TASKS
    assert all(r["status"] == "ok" and r["seconds"] > 0 for r in rows)
    assert rows[2]["receipt"]["rows"] > 0  # build-features' receipt


def test_plot_writes_the_dag_with_status_and_duration_offline(churn_here, small_build, build_redis, tmp_path):
    target = tmp_path / "dag.svg"
    out = churn_here(*sets(small_build, build_redis), "plot", "--out", str(target))
    assert out.returncode == 0, out.stderr
    svg = target.read_text()
    assert "<script" not in svg and 'href="http' not in svg  # nothing to fetch: works offline
    for task in TASKS:
        assert task in svg
    assert svg.count("ok in ") == len(TASKS)
    assert target.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@SCRATCH
def test_phase_runs_on_a_scratch_copy_and_leaves_the_build_untouched(small_build, build_redis):
    warehouse = small_build / "data" / "churn.duckdb"
    before, report = sha256(warehouse), small_build / "reports" / "04_check_features.ipynb"
    report_before = sha256(report)
    out = churn(*sets(small_build, build_redis), "phase", "check-features")
    assert out.returncode == 0, out.stdout[-2000:]
    scratch = small_build / "data" / "scratch" / "check-features"
    assert (scratch / "reports" / "04_check_features.html").is_file()
    assert sha256(warehouse) == before and sha256(report) == report_before
    assert not EmbeddedRedis(scratch).is_running()  # its own Redis was stopped


@SCRATCH
def test_a_failed_phase_ends_with_its_one_line_cause(small_build, build_redis):
    """An impossible label-rate band fails the feature gate: the last line says so; the traceback
    is in the log and the failed notebook."""
    out = churn(
        *sets(small_build, build_redis),
        "--set",
        "label_rate_min=0.5",
        "--set",
        "label_rate_max=0.9",
        "phase",
        "check-features",
    )
    assert out.returncode != 0
    lines = out.stdout.strip().splitlines()
    assert lines[-1].startswith("error: check-features failed: "), lines[-5:]
    assert "Traceback" not in lines[-1] and len(lines[-1]) < 400
    failed = small_build / "data" / "scratch" / "check-features" / "reports" / "04_check_features.failed.ipynb"
    assert lines[-2] == f"failed notebook (traceback): {failed}"
    log = Path(lines[-3].removeprefix("full output: "))
    assert "Traceback" in log.read_text() and log.read_text().strip().endswith(lines[-1])
    assert "Traceback" not in out.stdout and len(lines) < 200


def test_a_failed_build_ends_with_its_one_line_cause(tmp_path):
    """`churn build` (what `make build` runs): own files that are not there stop generate-data."""
    raw = tmp_path / "own"
    raw.mkdir()
    out = churn(
        "--set",
        f"data_dir={tmp_path / 'data'}",
        "--set",
        f"reports_dir={tmp_path / 'reports'}",
        "--set",
        f"warehouse={tmp_path / 'data' / 'churn.duckdb'}",
        "--set",
        f"models_dir={tmp_path / 'data' / 'models'}",
        "build",
        "--force",
        "--env--source",
        "files",
        "--env--raw_dir",
        str(raw),
    )
    assert out.returncode != 0
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("error: generate-data failed: ") and "users" in last, last
    assert "Traceback" not in out.stdout  # the report with the traceback went to the log only
    assert (tmp_path / "reports" / "01_generate_data.failed.ipynb").is_file()
    recorded = json.loads((tmp_path / "data" / "logs" / "last-build.json").read_text())
    assert recorded["source"] == "files" and recorded["raw_dir"] == str(raw)  # status/phase reuse these


@SCRATCH
def test_a_phase_notebook_opened_in_lab_runs_by_hand_against_the_scratch_copy(small_build, build_redis):
    """What `make lab` sets up: `churn scratch` + PLOOMBER_ENV_FILENAME. The contents manager Lab
    uses injects parameters naming the scratch copy; running the cells (as a person would) works
    and the real warehouse is untouched."""
    import nbclient
    import nbformat
    from jupytext import TextFileContentsManager
    from ploomber.jupyter.manager import derive_class

    env_file = f"env.test-{uuid.uuid4().hex[:8]}.yaml"
    warehouse = small_build / "data" / "churn.duckdb"
    before = sha256(warehouse)
    try:
        out = churn(*sets(small_build, build_redis), "scratch", "--name", "lab-test", "--env-file", env_file)
        assert out.returncode == 0, out.stderr
        os.environ["PLOOMBER_ENV_FILENAME"] = env_file
        manager = derive_class(TextFileContentsManager)(root_dir=str(ROOT))
        model = manager.get("notebooks/04_check_features.py")
    finally:
        os.environ.pop("PLOOMBER_ENV_FILENAME", None)
        (ROOT / env_file).unlink(missing_ok=True)
    assert model["type"] == "notebook"
    scratch = small_build / "data" / "scratch" / "lab-test"
    injected = next(c for c in model["content"]["cells"] if "injected-parameters" in c["metadata"].get("tags", []))
    assert str(scratch / "churn.duckdb") in injected["source"] and str(warehouse) + '"' not in injected["source"]
    nb = nbformat.from_dict(model["content"])
    nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()
    assert json.loads((scratch / "products" / "check_features.json").read_text())["success"] is True
    assert sha256(warehouse) == before


def test_lab_as_make_lab_starts_it_serves_phase_notebooks_as_notebooks_with_scratch_parameters(tmp_path):
    """The real Jupyter server, started the way `make lab` starts it: a .py phase notebook is
    served as a notebook (no HTTP 500) carrying the scratch paths, and the settings Lab reads make
    the Jupytext notebook the default viewer of .py files."""
    import time
    import urllib.request

    env_file = f"env.test-{uuid.uuid4().hex[:8]}.yaml"
    data = tmp_path / "data"
    port, token = free_port(), uuid.uuid4().hex
    lab = None
    try:
        assert churn("--set", f"data_dir={data}", "scratch", "--env-file", env_file).returncode == 0
        env = {
            **os.environ,
            "PLOOMBER_ENV_FILENAME": env_file,
            "JUPYTER_CONFIG_PATH": str(ROOT / ".jupyter"),
            "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        }
        lab = subprocess.Popen(
            [str(Path(sys.executable).with_name("jupyter")), "lab", "--no-browser", f"--port={port}",
             "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}", "--allow-root",
             "--ServerApp.contents_manager_class=jupytext.TextFileContentsManager", f"--ServerApp.root_dir={ROOT}"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        base, headers = f"http://127.0.0.1:{port}", {"Authorization": f"token {token}"}

        def get(path: str) -> dict:
            request = urllib.request.Request(base + path, headers=headers)
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())

        for _ in range(120):
            try:
                get("/api/status")
                break
            except OSError:
                time.sleep(0.5)
        model = get("/api/contents/notebooks/04_check_features.py?type=notebook&content=1")
        settings = get("/lab/api/settings/@jupyterlab/docmanager-extension:plugin")
    finally:
        if lab is not None:
            lab.terminate()
            lab.wait(timeout=30)
        (ROOT / env_file).unlink(missing_ok=True)
    assert model["type"] == "notebook"
    injected = next(c for c in model["content"]["cells"] if "injected-parameters" in c["metadata"].get("tags", []))
    assert str(data / "scratch" / "lab" / "churn.duckdb") in injected["source"]
    viewers = settings["schema"]["properties"]["defaultViewers"]["default"]  # overrides change the defaults
    assert viewers == {"python": "Jupytext Notebook"}


def test_ploomber_plot_works_offline_with_pygraphviz(tmp_path):
    """`ploomber plot` (KeyError: 'links' under networkx 3.6 with its d3 backend) draws with the
    pinned pygraphviz wheel: an SVG with every task and nothing to fetch. It renders the DAG only:
    no task runs."""
    target = tmp_path / "pipeline.svg"
    data = tmp_path / "data"
    out = subprocess.run(
        [str(Path(sys.executable).with_name("ploomber")), "plot", "--backend", "pygraphviz", "-o", str(target),
         "--env--data_dir", str(data), "--env--reports_dir", str(tmp_path / "reports"),
         "--env--warehouse", str(data / "churn.duckdb"), "--env--models_dir", str(data / "models")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    svg = html.unescape(target.read_text())  # graphviz writes "-" as &#45;
    assert all(f">{task}</text>" in svg for task in TASKS)
    assert "<script" not in svg and 'href="http' not in svg
    assert not (data / "churn.duckdb").exists()
