"""The DAG end to end through Ploomber with a small profile, then nbval on its reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from churn.store.raw import read_raw_tables
from churn.store.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[2]
PLOOMBER = str(Path(sys.executable).with_name("ploomber"))
SMALL = ["--env--n_users", "300"]

pytestmark = pytest.mark.slow


def ploomber_build(tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    """`ploomber build` of this project with data and reports redirected into ``tmp``."""
    paths = [
        "--env--data_dir", str(tmp / "data"),
        "--env--reports_dir", str(tmp / "reports"),
        "--env--warehouse", str(tmp / "data" / "churn.duckdb"),
    ]  # fmt: skip
    return subprocess.run(
        [PLOOMBER, "build", "--force", *paths, *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
        env={**os.environ, "GX_ANALYTICS_ENABLED": "False"},
    )  # fmt: skip


@pytest.fixture(scope="module")
def small_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("build")
    result = ploomber_build(tmp, *SMALL)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return tmp


def test_build_writes_raw_tables_and_reports(small_build: Path):
    """Every phase leaves its executed notebook as .ipynb and .html, plus the quality report."""
    reports = small_build / "reports"
    for phase in ("01_generate_data", "02_check_raw_data"):
        assert (reports / f"{phase}.ipynb").stat().st_size > 0
        assert (reports / f"{phase}.html").stat().st_size > 0
    assert (reports / "data_quality" / "validation_result.json").exists()
    assert (reports / "data_quality" / "data_docs" / "index.html").exists()
    tables = read_raw_tables(Warehouse(small_build / "data" / "churn.duckdb"))
    assert len(tables["users"]) == 300
    receipt = json.loads((small_build / "data" / "products" / "check_raw_data.json").read_text())
    assert receipt["success"] is True


def test_executed_notebooks_rerun_identically_under_nbval(small_build: Path):
    """nbval re-executes every report; headline cells (row counts, content fingerprints) must
    reproduce exactly: the same parameters give the same tables."""
    notebooks = sorted(str(p) for p in (small_build / "reports").glob("*.ipynb"))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q",
         "-o", "addopts=", *notebooks],
        cwd=small_build, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:]
    assert "failed" not in result.stdout.splitlines()[-1]


def _corrupt_raw_files(source: Path, target: Path) -> None:
    target.mkdir()
    tables = read_raw_tables(Warehouse(source / "data" / "churn.duckdb"))
    users, events, billing = tables["users"], tables["events"], tables["billing"]
    users = pd.concat([users, users.head(1)])  # duplicate id
    billing.loc[billing.index[0], "amount"] = -5.0  # negative amount
    events.loc[events.index[0], "user_id"] = 999_999  # unknown user
    events.loc[events.index[1], "event_at"] = pd.Timestamp("2099-01-01")  # in the future
    for name, frame in {"users": users, "events": events, "billing": billing}.items():
        frame.to_parquet(target / f"{name}.parquet", index=False)


def test_corrupted_raw_data_stops_the_build_at_the_quality_gate(small_build: Path, tmp_path: Path):
    """Duplicate ids, negative amounts, unknown users and future timestamps stop the build at
    check-raw-data, and the failure names those expectations."""
    _corrupt_raw_files(small_build, tmp_path / "own")
    result = ploomber_build(tmp_path, "--env--source", "files", "--env--raw_dir", str(tmp_path / "own"))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "check-raw-data" in output
    for expected in ("expect_column_values_to_be_unique", "expect_column_values_to_be_between",
                     "user_known", "amount"):
        assert expected in output, expected
    assert (tmp_path / "reports" / "data_quality" / "validation_result.json").exists()
