"""The daily cycle's data side: one simulated world revealed step by step, incremental features."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from churn import cycle
from churn.data import synthetic
from churn.data.world import WORLD_DAYS, World, world_params
from churn.features import build_feature_frame, default_feature_spec
from churn.features.rules import LabelRule
from churn.runs import as_of_date
from churn.store import offline, raw
from churn.store.warehouse import Warehouse

PARAMS = synthetic.SimulationParams(n_users=250, seed=11, scenario="drift")
END = pd.Timestamp(PARAMS.end)
DATASET = {"name": "synthetic", "fingerprint": "synthetic:test", "source": "synthetic", "rule": "cancellation"}
TABLES = {
    "raw_data.users": "user_id",
    "raw_data.events": "event_id",
    "raw_data.billing": "billing_id",
    "simulator.user_truth": "user_id, week_start",
}


def _warehouse(folder: Path, world: Path | None = None) -> Warehouse:
    wh = Warehouse(folder / "churn.duckdb")
    if world is not None:  # share one simulated world between warehouses (it is the same world)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "world").symlink_to(world)
    return wh


def _tables(wh: Warehouse) -> dict[str, pd.DataFrame]:
    with wh.reader() as con:
        return {name: con.execute(f"SELECT * FROM {name} ORDER BY {order}").df() for name, order in TABLES.items()}


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("world") / "world"
    World.ensure(folder, world_params(PARAMS), progress=False)
    return folder


def test_cycles_reveal_the_same_world_as_one_load(tmp_path: Path, world_dir: Path) -> None:
    """A full load at end plus cycles to end+k gives exactly the raw tables of one load cut at
    end+k (same world), and no row at or after the cut."""
    stepwise = _warehouse(tmp_path / "a", world_dir)
    assert cycle.load_synthetic(stepwise, PARAMS, DATASET, None, progress=False).mode == "full"
    for k in (1, 2, 5):
        load = cycle.load_synthetic(stepwise, PARAMS, DATASET, (END + pd.Timedelta(days=k)).date(), progress=False)
        assert load.mode == "append"
    at_once = _warehouse(tmp_path / "b", world_dir)
    assert (
        cycle.load_synthetic(at_once, PARAMS, DATASET, (END + pd.Timedelta(days=5)).date(), progress=False).mode
        == "full"
    )
    a, b = _tables(stepwise), _tables(at_once)
    for name in TABLES:
        pd.testing.assert_frame_equal(a[name], b[name], obj=name)
    cut = END + pd.Timedelta(days=5)
    assert a["raw_data.events"].event_at.max() < cut and a["raw_data.billing"].billed_at.max() < cut
    assert (a["raw_data.users"].signup_at < cut).all() and not (a["raw_data.users"].churned_at >= cut).any()
    assert list(raw.read_loads(stepwise)["mode"]) == ["full", "append", "append", "append"]
    assert raw.last_load(stepwise) == cut


def test_users_carry_the_plan_in_force_at_the_cut(world_dir: Path) -> None:
    """A plan change (or the drift's price rise) after the cut must not show in the users table."""
    world = World(world_dir, world_params(PARAMS))
    final = world.reveal(world.end)["users"].set_index("user_id")
    early = world.reveal(pd.Timestamp(PARAMS.drift_date) - pd.Timedelta(days=30))["users"].set_index("user_id")
    plans = pd.concat(pd.read_parquet(p) for p in sorted(world_dir.glob("plan_history-*.parquet"))).set_index("user_id")
    cut = pd.Timestamp(PARAMS.drift_date) - pd.Timedelta(days=30)
    changed_later = [u for u in early.index if plans.loc[u, "plan_changed_at"] >= cut]
    assert changed_later, "the world should hold plan changes after the early cut"
    for user in changed_later:
        assert early.loc[user, "plan"] == plans.loc[user, "plan_before"]
    # before the drift, no 'pro' user pays the raised price; at the end some do
    assert not (early.monthly_price == synthetic.DRIFT_PRICE).any()
    assert (final.monthly_price == synthetic.DRIFT_PRICE).any()


def test_a_date_the_data_cannot_answer_changes_nothing(tmp_path: Path, world_dir: Path) -> None:
    """Before the start, beyond the world, or behind the watermark: one clear error, tables unchanged."""
    wh = _warehouse(tmp_path, world_dir)
    cycle.load_synthetic(wh, PARAMS, DATASET, (END + pd.Timedelta(days=3)).date(), progress=False)
    with wh.reader() as con:
        before = {name: Warehouse.content_hash(con, name) for name in TABLES}
    cases = {
        PARAMS.start: "before the data",
        PARAMS.end + timedelta(days=WORLD_DAYS + 1): "beyond the data",
        PARAMS.end + timedelta(days=1): "before the data already loaded",
    }
    for day, message in cases.items():
        with pytest.raises(cycle.CycleError, match=message):
            cycle.load_synthetic(wh, PARAMS, DATASET, day, progress=False)
    with wh.reader() as con:
        assert {name: Warehouse.content_hash(con, name) for name in TABLES} == before
    again = cycle.load_synthetic(wh, PARAMS, DATASET, (END + pd.Timedelta(days=3)).date(), progress=False)
    assert again.mode == "none" and "nothing new" in again.describe()


def test_backfill_range_in_the_wrong_order_is_refused() -> None:
    with pytest.raises(cycle.CycleError, match="wrong order"):
        cycle.backfill_dates(date(2026, 1, 5), date(2026, 1, 2))
    assert cycle.backfill_dates(date(2026, 1, 2), date(2026, 1, 4)) == [date(2026, 1, d) for d in (2, 3, 4)]
    with pytest.raises(ValueError, match="FROM '2026-13-01' is not a date"):
        as_of_date("2026-13-01", "FROM")  # the one date parser the CLI's --from/--to go through


def test_incremental_features_keep_older_snapshots_and_fill_matured_labels(tmp_path: Path, world_dir: Path) -> None:
    """A cycle adds the snapshot at as_of (equal to a full computation at that cut), fills the
    labels that matured by as_of (equal to a full computation) and leaves every other stored
    value byte-identical."""
    spec, rule, horizon = default_feature_spec(), LabelRule("cancellation"), 30
    wh = _warehouse(tmp_path, world_dir)
    cycle.load_synthetic(wh, PARAMS, DATASET, None, progress=False)
    snapshots = [(END - pd.Timedelta(days=d)).to_pydatetime() for d in (90, 60, 45, 20, 0)]
    frame = offline.compute_features(wh, spec, snapshots, horizon, END, rule=rule)
    offline.write_features(wh, frame, feature_set="fs", features=spec.feature_names, spec=spec.to_dict())
    before = offline.read_features(wh)
    as_of = END + pd.Timedelta(days=12)
    cycle.load_synthetic(wh, PARAMS, DATASET, as_of.date(), progress=False)
    update = offline.update_features(wh, spec, as_of, horizon, rule, "fs")
    after = offline.read_features(wh)
    matured = [END - pd.Timedelta(days=20)]  # +30 days <= as_of; the END snapshot is not yet mature
    assert update["matured_snapshots"] == 1
    old = after[after.snapshot_at < as_of].reset_index(drop=True)
    keep = [c for c in before.columns if c not in ("label", "label_mature")]
    pd.testing.assert_frame_equal(old[keep], before[keep])
    untouched = ~old.snapshot_at.isin(matured)
    pd.testing.assert_frame_equal(old[untouched], before[untouched])
    with wh.reader() as con:
        full = build_feature_frame(
            con, spec, [*matured, as_of.to_pydatetime()], horizon, as_of.to_pydatetime(), rule=rule
        )
    got = after[after.snapshot_at.isin([*matured, as_of])].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, full[got.columns], check_dtype=False)
    assert got[got.snapshot_at == matured[0]].label_mature.all()
    assert not got[got.snapshot_at == as_of].label_mature.any()
    with pytest.raises(Exception, match="feature set"):
        offline.update_features(wh, spec, as_of, horizon, rule, "another")


def test_a_full_load_streams_chunk_by_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A world of several simulation chunks is loaded one chunk at a time; together the chunks
    are exactly what one reveal of the whole world gives (the timed tables arrive as Parquet
    rows the store inserts without pandas)."""
    monkeypatch.setattr(synthetic, "CHUNK_USERS", 100)
    params = world_params(synthetic.SimulationParams(n_users=250, seed=5, scenario="stable"))
    world = World.ensure(tmp_path / "world", params, progress=False)
    cut = END + pd.Timedelta(days=10)
    parts = list(world.iter_reveal(cut))
    assert len(parts) == 3
    whole = world.reveal(cut)
    for name, frame in whole.items():
        streamed = pd.concat(
            [p[name] if isinstance(p[name], pd.DataFrame) else p[name].to_pandas() for p in parts], ignore_index=True
        )
        pd.testing.assert_frame_equal(streamed, frame, obj=name)


def test_the_year_keeps_n_users_and_the_world_goes_on_signing_up(world_dir: Path) -> None:
    """A cut at ``end`` holds exactly ``n_users`` users (the build's size, as before the world
    existed); the days after it bring new signups at the year's rate."""
    world = World(world_dir, world_params(PARAMS))
    assert len(world.reveal(END)["users"]) == PARAMS.n_users
    later = world.reveal(world.end)["users"]
    assert len(later) == world.params.world_users > PARAMS.n_users
    assert (later.signup_at >= END).sum() == world.params.world_users - PARAMS.n_users
