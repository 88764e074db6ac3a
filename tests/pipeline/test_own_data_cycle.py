"""Own data, day after day: a purchase log built from its files, then two daily cycles after new
files arrive (`make cycle DATASET=...`). Each cycle appends only the new files, computes only its
own snapshot and fills in the labels that matured; the result equals the offline store computed
from scratch on the grown log.

Phases, by what each run must prove (a phase costs a kernel and its imports, seconds each): the
build runs 01-05 (the production model the cycles keep; publishing and scoring the build's
snapshot are the small build's tests), the first cycle 01-03 (its new file loaded, its snapshot
added), the second 01-07: the load, the snapshot with matured labels, the incremental feature
check, no retraining and the day scored by the production model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import redis
import yaml

from churn.data.examples import PurchaseLogParams, purchase_log
from churn.dataset import load_dataset, ploomber_args, workspace
from churn.features.planning import label_rule
from churn.registry import ModelRegistry
from churn.store import offline
from churn.store.runs import RunLedger
from churn.store.warehouse import Warehouse
from tests.pipeline.conftest import ROOT, with_database

pytestmark = pytest.mark.slow

BUILD, FIRST, SECOND = (["--partially", phase] for phase in ("train-model", "build-features", "score-batch"))
HORIZON = 30  # days; short, so the second cycle sees the build's current snapshot mature


def churn(root: Path, dataset: Path, redis_url: str, *args: str, phases: list[str]) -> subprocess.CompletedProcess:
    """`churn ARGS <the data set's --env-- arguments> PHASES` (as `make cycle DATASET=...` runs it)."""
    env_args = [*ploomber_args(dataset, root), "--env--redis_url", redis_url]
    result = subprocess.run(
        [sys.executable, "-m", "churn.cli", "--project", str(ROOT), *args, *env_args, *phases],
        capture_output=True, text=True, timeout=900, env={**os.environ, "GX_ANALYTICS_ENABLED": "False"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture()
def purchases(tmp_path: Path) -> tuple[Path, pd.DataFrame, pd.Timestamp]:
    """(dataset file, the whole log, the build's data end): the log's files hold the purchases
    before the data end; the rest waits in the test until a cycle's day comes."""
    log, _ = purchase_log(PurchaseLogParams(n_customers=300, seed=11))
    files = tmp_path / "src" / "data"
    files.mkdir(parents=True)
    base = log[log.date < pd.Timestamp("2024-10-01")]
    base.to_csv(files / "purchases-0-base.csv", index=False)
    data = yaml.safe_load((ROOT / "examples/purchase_log/dataset.yaml").read_text())
    data["events"]["path"] = "data/purchases-*.csv"  # a glob: new files join the data set
    data["features"] = str(ROOT / "examples/purchase_log/features.yaml")
    data["snapshots"] = {"cadence_days": 30, "horizon_days": HORIZON}
    (tmp_path / "src" / "dataset.yaml").write_text(yaml.safe_dump(data))
    return tmp_path / "src" / "dataset.yaml", log, pd.Timestamp(base.date.max()).ceil("D")


def deliver(dataset: Path, log: pd.DataFrame, since: pd.Timestamp, until: pd.Timestamp, name: str) -> int:
    rows = log[(log.date >= since) & (log.date < until)]
    rows.to_csv(dataset.parent / "data" / f"purchases-{name}.csv", index=False)
    return len(rows)


def receipt(data_dir: Path, phase: str) -> dict:
    return json.loads((data_dir / "products" / f"{phase}.json").read_text())


def test_own_data_cycles_append_new_files_and_compute_only_their_snapshot(
    purchases, tmp_path: Path, embedded_redis
) -> None:
    """Build, then two cycles after new files arrive: each loads only the new file, adds only its
    own snapshot (the build's snapshots stay byte-identical but for labels that matured) and keeps
    the production model; the offline store then equals one computed from scratch."""
    dataset, log, data_end = purchases
    url = with_database(embedded_redis.url, 6)
    redis.Redis.from_url(url).flushdb()
    root = tmp_path / "project"
    data_dir = workspace(load_dataset(dataset), root.resolve())["data_dir"]
    churn(root, dataset, url, "build", phases=BUILD)
    wh = Warehouse(data_dir / "churn.duckdb")
    built = offline.read_features(wh)
    assert built.snapshot_at.max() == data_end and not receipt(data_dir, "build_features")["incremental"]

    day1, day2 = data_end + pd.Timedelta(days=1), data_end + pd.Timedelta(days=HORIZON + 2)
    new1 = deliver(dataset, log, data_end, day1, "1")
    churn(root, dataset, url, "cycle", phases=FIRST)  # the day after the build's data: day1
    new2 = deliver(dataset, log, day1, day2, "2")
    churn(root, dataset, url, "cycle", "--as-of", str(day2.date()), phases=SECOND)

    runs = RunLedger(data_dir).runs("succeeded")
    assert [str(d)[:10] for d in runs.as_of.dropna()] == [str(day1.date()), str(day2.date())]
    assert receipt(data_dir, "generate_data")["counts"]["events"] == new2 > 0 and new1 > 0
    for phase in ("build_features", "check_features"):
        assert receipt(data_dir, phase)["incremental"], phase
    assert receipt(data_dir, "train_model")["retrained"] is False

    features = offline.read_features(wh)
    assert sorted(set(features.snapshot_at)) == sorted({*built.snapshot_at, day1, day2})
    # the build's snapshots: every feature value byte-identical; only matured labels changed
    older = features[features.snapshot_at <= data_end].reset_index(drop=True)
    feature_columns = [c for c in built.columns if c not in ("label", "label_mature")]
    pd.testing.assert_frame_equal(older[feature_columns], built[feature_columns])
    was_known = built.label_mature.to_numpy()
    pd.testing.assert_frame_equal(older[was_known], built[was_known])
    assert not built[built.snapshot_at == data_end].label_mature.any()
    assert older[older.snapshot_at == data_end].label_mature.all()  # matured by day2

    # reference: every snapshot computed from scratch on the grown log, as a build at day2 would
    ds, spec = load_dataset(dataset), offline.load_feature_spec(wh)
    snapshots = [pd.Timestamp(t).to_pydatetime() for t in sorted(set(features.snapshot_at))]
    scratch = offline.compute_features(wh, spec, snapshots, HORIZON, day2, rule=label_rule(ds, spec, HORIZON))
    scratch = scratch.sort_values(["snapshot_at", "user_id"]).reset_index(drop=True)[features.columns]
    pd.testing.assert_frame_equal(scratch, features.reset_index(drop=True), check_dtype=False)

    # the day scored by the production model (the same notebooks score a synthetic cycle's day)
    predictions = offline.read_predictions(wh)
    assert set(predictions.features_as_of) == {day2}
    assert len(predictions) == (features.snapshot_at == day2).sum()
    production = ModelRegistry(wh, data_dir / "models").get_production("churn_model")
    assert production is not None and set(predictions.model_version) == {production.version}
