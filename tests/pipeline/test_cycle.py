"""Daily cycles on a private copy of the small build: `churn cycle` and `churn backfill`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import redis

from churn.store.runs import RunLedger
from churn.store.warehouse import Warehouse
from tests.pipeline.conftest import ROOT, copy_build, with_database, workspace_params

pytestmark = pytest.mark.slow

# Phases 01-03: the cycle's load, raw gate and incremental snapshot. What a day's cycle makes of
# phases 04-07 (the incremental feature check, no retraining, the day scored by the production
# model) is the same notebooks' work for any data set: test_own_data_cycle.py runs them in two
# cycles and checks each; here the question is whether backfill's days equal cycle by cycle,
# which four more phases on each of four day-runs (16 phase runs, ~40 s) would not change.
PHASES = ["--partially", "build-features"]
COMPARED = {
    "raw_data.users": "user_id",
    "raw_data.events": "event_id",
    "raw_data.billing": "billing_id",
    "simulator.user_truth": "user_id, week_start",
    "ml_pipeline.features": "snapshot_at, user_id",
}


def churn(build: Path, redis_url: str, *args: str) -> subprocess.CompletedProcess:
    """The `churn` CLI pointed at ``build`` (a copy of the small build) and its own Redis."""
    sets = workspace_params(build, redis_url)
    flags = [f"--set={key}={value}" for key, value in sets.items()]
    return subprocess.run(
        [sys.executable, "-m", "churn.cli", "--project", str(ROOT), *flags, *args],
        capture_output=True, text=True, timeout=900, env={**os.environ, "GX_ANALYTICS_ENABLED": "False"},
    )  # fmt: skip


def contents(build: Path) -> dict[str, pd.DataFrame]:
    wh = Warehouse(build / "data" / "churn.duckdb")
    with wh.reader() as con:
        out = {name: con.execute(f"SELECT * FROM {name} ORDER BY {order}").df() for name, order in COMPARED.items()}
        out["raw_data.loads"] = con.execute("SELECT * EXCLUDE (loaded_at) FROM raw_data.loads ORDER BY as_of").df()
        out["ml_pipeline.predictions"] = con.execute(
            "SELECT * EXCLUDE (scored_at) FROM ml_pipeline.predictions ORDER BY features_as_of, model_version, user_id"
        ).df()
    return out


@pytest.fixture()
def two_copies(small_build: Path, tmp_path: Path, embedded_redis):
    urls = [with_database(embedded_redis.url, db) for db in (3, 4)]
    for url in urls:
        redis.Redis.from_url(url).flushdb()
    copies = [copy_build(small_build, tmp_path / name, url) for name, url in zip("ab", urls, strict=True)]
    yield list(zip(copies, urls, strict=True))
    for url in urls:
        redis.Redis.from_url(url).flushdb()


def test_backfill_equals_the_same_cycles_one_by_one(two_copies, small_build: Path) -> None:
    """Two `churn cycle` runs (dates from the ledger) and one `churn backfill` of the same days
    leave the same warehouse; the cycles load each day's rows, add one snapshot per day and leave
    the build's snapshots (and its predictions: phases 01-03 only) byte-identical."""
    (one_by_one, url_a), (backfilled, url_b) = two_copies
    original = contents(small_build)
    for _ in range(2):
        result = churn(one_by_one, url_a, "cycle", *PHASES)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    result = churn(backfilled, url_b, "backfill", "--from", "2026-01-02", "--to", "2026-01-03", *PHASES)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    a, b = contents(one_by_one), contents(backfilled)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], obj=name)

    features = a["ml_pipeline.features"]
    days = [pd.Timestamp("2026-01-02"), pd.Timestamp("2026-01-03")]
    assert set(features.snapshot_at) == set(original["ml_pipeline.features"].snapshot_at) | set(days)
    older = features[features.snapshot_at < days[0]].reset_index(drop=True)
    pd.testing.assert_frame_equal(older, original["ml_pipeline.features"])  # no label matures within 2 days
    assert not features[features.snapshot_at.isin(days)].label_mature.any()
    assert not features[features.snapshot_at == days[1]].empty
    pd.testing.assert_frame_equal(a["ml_pipeline.predictions"], original["ml_pipeline.predictions"])
    assert list(a["raw_data.loads"]["mode"]) == ["full", "append", "append"]
    # each cycle's raw gate judged the rows loaded since the last pass (its page says which)
    page = (one_by_one / "reports" / "data_quality" / "index.html").read_text()
    assert "rows loaded since the check of 2026-01-02" in page and "new rows (Great Expectations)" in page
    runs = RunLedger(one_by_one / "data").runs("succeeded")
    assert [str(d)[:10] for d in runs.as_of.dropna()] == ["2026-01-02", "2026-01-03"]


def test_a_day_already_run_is_a_no_op_and_a_bad_date_changes_nothing(build_copy, monkeypatch) -> None:
    """Re-running the last day says so and runs nothing; a day before it, beyond the world, or a
    backfill range in the wrong order is refused with one message and no new run. Each answer
    comes before any build starts, so the CLI runs in this process (click's runner: the same
    exit code and stderr as `churn` in a shell)."""
    from click.testing import CliRunner

    from churn.cli import main

    for name in [n for n in os.environ if n.startswith("CHURN_") or n == "REDIS_URL"]:
        monkeypatch.delenv(name)
    build, url = build_copy
    flags = [f"--set={key}={value}" for key, value in workspace_params(build, url).items()]

    def run(*args: str):
        return CliRunner().invoke(main, ["--project", str(ROOT), *flags, *args], catch_exceptions=False)

    last = "2026-01-01"  # the small build loads the world up to `end`
    before = len(RunLedger(build / "data").runs())
    result = run("cycle", "--as-of", last)
    assert result.exit_code == 0 and "already ran" in result.stdout, result.output
    refused = {
        ("cycle", "--as-of", "2025-12-01"): "before the last run",
        ("cycle", "--as-of", "2026-12-01"): "beyond the data",
        ("cycle", "--as-of", "2026-02-30"): "not a date",
        ("backfill", "--from", "2026-01-05", "--to", "2026-01-03"): "wrong order",
        ("backfill", "--from", "2026-01-05", "--to", "2026-01-06"): "leaves a gap",
    }
    for args, message in refused.items():
        result = run(*args)
        assert result.exit_code != 0 and message in result.stderr, (args, result.output[-2000:])
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # one message
    assert len(RunLedger(build / "data").runs()) == before
