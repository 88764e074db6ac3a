"""Label rules on generated logs with known truth: inactivity on a Pareto/NBD purchase log,
subscription on a product log with returning users; checked against a brute-force pandas
reading of SPEC 8.1, and nothing after a snapshot changes its features."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml

from churn.data.examples import ProductLogParams, PurchaseLogParams, product_log, purchase_log
from churn.data.loader import load_files
from churn.dataset import load_dataset
from churn.features import LabelRule, SnapshotError, build_feature_frame, snapshot_schedule
from churn.features.auto import dataset_spec, longest_window
from churn.store.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[3]
DAY = pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def purchases(tmp_path_factory: pytest.TempPathFactory):
    """The purchase-log example (smaller), loaded, with its known dropout times."""
    tmp = tmp_path_factory.mktemp("purchases")
    log, truth = purchase_log(PurchaseLogParams(n_customers=800, seed=3))
    log.to_csv(tmp / "purchases.csv", index=False)
    data = yaml.safe_load((ROOT / "examples/purchase_log/dataset.yaml").read_text())
    data["features"] = str(ROOT / "examples/purchase_log/features.yaml")
    data["events"]["path"] = "purchases.csv"
    (tmp / "dataset.yaml").write_text(yaml.safe_dump(data))
    ds = load_dataset(tmp / "dataset.yaml")
    wh = Warehouse(tmp / "w.duckdb")
    load_files(wh, ds)
    return ds, wh, log, truth


def _inactivity_truth(log: pd.DataFrame, t: pd.Timestamp, lookback: int, horizon: int) -> pd.Series:
    before = log[(log.date < t) & (log.date >= t - lookback * DAY)].customer.unique()
    after = set(log[(log.date >= t) & (log.date < t + horizon * DAY)].customer)
    return pd.Series({c: int(c not in after) for c in before}, dtype=int).sort_index()


def test_inactivity_labels_follow_the_definition_and_every_known_dropout_churns(purchases) -> None:
    ds, wh, log, truth = purchases
    rule = LabelRule("inactivity", lookback_days=180)
    snapshots = [datetime(2024, 1, 1), datetime(2024, 4, 1), datetime(2024, 7, 1)]
    end = pd.Timestamp("2025-01-01")
    with wh.reader() as con:
        frame = build_feature_frame(con, dataset_spec(con, ds), snapshots, 90, end, rule=rule)
    dropout = truth.set_index("customer").dropout_at
    for t in map(pd.Timestamp, snapshots):
        got = frame[frame.snapshot_at == t].set_index("user_id").label.astype(int).sort_index()
        expected = _inactivity_truth(log, t, 180, 90)
        pd.testing.assert_series_equal(got, expected, check_names=False, check_index_type=False)
        gone = dropout.reindex(got.index) < t  # dropped out before the snapshot: can never buy again
        assert gone.sum() > 20 and (got[gone] == 1).all()
        alive = dropout.reindex(got.index).isna()  # never drops out: churns only by a long gap
        assert got[alive].mean() < got[gone].mean()


def test_returning_customers_are_in_the_population_again(purchases) -> None:
    """A customer quiet for more than the lookback, then buying again, reappears later."""
    ds, wh, log, _ = purchases
    rule = LabelRule("inactivity", lookback_days=30)
    snaps = [datetime(2023, 9, 1) + pd.Timedelta(days=30 * k) for k in range(12)]
    with wh.reader() as con:
        frame = build_feature_frame(con, dataset_spec(con, ds), snaps, 90, datetime(2025, 1, 1), rule=rule)
    seen = frame.groupby("user_id").snapshot_at.apply(lambda s: (s.diff().dt.days > 30).any())
    assert seen.sum() > 10


def test_features_and_population_ignore_rows_at_or_after_the_snapshot(purchases, tmp_path: Path) -> None:
    """Deleting every purchase at or after t changes labels only, never features or population."""
    ds, wh, log, _ = purchases
    t = datetime(2024, 3, 1)
    rule = LabelRule("inactivity", lookback_days=180)
    with wh.reader() as con:
        spec = dataset_spec(con, ds)
        full = build_feature_frame(con, spec, [t], 90, datetime(2025, 1, 1), rule=rule)
    cut = Warehouse(tmp_path / "cut.duckdb")
    log[log.date < t].to_csv(tmp_path / "purchases.csv", index=False)
    data = yaml.safe_load((ROOT / "examples/purchase_log/dataset.yaml").read_text())
    data["features"] = str(ROOT / "examples/purchase_log/features.yaml")
    data["events"]["path"] = "purchases.csv"
    (tmp_path / "dataset.yaml").write_text(yaml.safe_dump(data))
    load_files(cut, load_dataset(tmp_path / "dataset.yaml"))
    with cut.reader() as con:
        past = build_feature_frame(con, spec, [t], 90, datetime(2025, 1, 1), rule=rule)
    pd.testing.assert_frame_equal(full[spec.feature_names + ["user_id"]], past[spec.feature_names + ["user_id"]])
    assert past.label.astype(int).all() and not full.label.astype(int).all()


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("product")
    (tmp / "data").mkdir()
    tables = product_log(ProductLogParams(n_users=400, seed=5))
    for name, frame in tables.items():
        frame.to_csv(tmp / "data" / f"{name}.csv", index=False)
    data = yaml.safe_load((ROOT / "examples/product_log/dataset.yaml").read_text())
    data["features"] = str(ROOT / "examples/product_log/features.yaml")
    for key in ("events", "users", "subscriptions"):
        data[key]["timezone"] = "UTC"
    (tmp / "dataset.yaml").write_text(yaml.safe_dump(data))
    ds = load_dataset(tmp / "dataset.yaml")
    wh = Warehouse(tmp / "w.duckdb")
    load_files(wh, ds)
    return ds, wh, tables


def _subscription_truth(plans: pd.DataFrame, t: pd.Timestamp, horizon: int, grace: int) -> pd.Series:
    plans = plans.assign(period_start=pd.to_datetime(plans.period_start), period_end=pd.to_datetime(plans.period_end))
    out = {}
    for user, rows in plans.groupby("member_ref"):
        active = rows[(rows.period_start < t) & (rows.period_end.isna() | (rows.period_end >= t))]
        if active.empty:
            continue
        churn = False
        for end in active.period_end.dropna():
            if end < t + horizon * DAY:
                renewed = rows[
                    (rows.period_start <= end + grace * DAY) & (rows.period_end.isna() | (rows.period_end > end))
                ]
                churn |= renewed.empty
        out[user] = int(churn)
    return pd.Series(out, dtype=int).sort_index()


def test_subscription_labels_follow_the_definition_with_returning_users(product) -> None:
    ds, wh, tables = product
    plans = tables["plans"]
    assert (plans.member_ref.value_counts() > 1).sum() > 10  # some users come back
    rule = LabelRule("subscription", grace_days=14)
    snaps = [datetime(2024, 5, 1), datetime(2024, 8, 1), datetime(2024, 10, 1)]
    with wh.reader() as con:
        frame = build_feature_frame(con, dataset_spec(con, ds), snaps, 30, datetime(2025, 1, 1), rule=rule)
    for t in map(pd.Timestamp, snaps):
        got = frame[frame.snapshot_at == t].set_index("user_id").label.astype(int).sort_index()
        pd.testing.assert_series_equal(
            got, _subscription_truth(plans, t, 30, 14), check_names=False, check_index_type=False
        )
        assert got.sum() > 0


def test_subscription_labels_mature_only_after_horizon_and_grace(product) -> None:
    ds, wh, _ = product
    rule = LabelRule("subscription", grace_days=14)
    t, end = datetime(2024, 11, 20), datetime(2025, 1, 1)  # t + 30 + 14 > end
    with wh.reader() as con:
        frame = build_feature_frame(con, dataset_spec(con, ds), [t], 30, end, rule=rule)
    assert not frame.label_mature.any() and frame.label.isna().all()


def test_snapshots_wait_for_the_longest_window_and_say_when_they_do_not_fit() -> None:
    dates = snapshot_schedule(
        "2024-01-01", "2025-01-01", cadence_days=14, horizon_days=30, longest_window_days=60, maturity_days=44
    )
    assert dates[0] >= datetime(2024, 3, 1) and dates[-1] <= datetime(2024, 11, 18)
    assert {(b - a).days for a, b in zip(dates, dates[1:], strict=False)} == {14}
    with pytest.raises(
        SnapshotError, match=r"not enough snapshots: the data spans 151 days .* room for 1 .* but 12 are needed"
    ):
        snapshot_schedule("2025-01-01", "2025-06-01", cadence_days=14, horizon_days=60, longest_window_days=90)


def test_a_spec_feature_over_an_event_type_that_never_occurs_is_refused(product, tmp_path: Path) -> None:
    from churn.features import FeatureSpecError

    ds, wh, _ = product
    spec = yaml.safe_load((ROOT / "examples/product_log/features.yaml").read_text())
    spec["features"].append(
        {"name": "teleports", "source": "events", "aggregation": "count", "filter": {"action": "teleport"}}
    )
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    bad = ds.model_copy(update={"features": str(tmp_path / "spec.yaml")})
    never = r"'teleports' filters event_type on \['teleport'\], which never occur"
    with wh.reader() as con, pytest.raises(FeatureSpecError, match=never):
        dataset_spec(con, bad)
    with wh.reader() as con:
        assert longest_window(dataset_spec(con, ds)) == 60
    spec["features"][-1]["filter"] = {"mood": "happy"}  # a column the log does not have
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    with wh.reader() as con, pytest.raises(FeatureSpecError, match=r"'teleports' filter: unknown column 'mood'"):
        dataset_spec(con, bad)


def test_the_automatic_spec_covers_types_values_attributes_and_subscriptions(product) -> None:
    """No spec file: counts per event type, totals over two windows, recency, tenure, trend,
    subscription features and one-hot attributes, all computable point-in-time."""
    from churn.features.auto import automatic_spec, log1p_features, recency_feature

    ds, wh, tables = product
    with wh.reader() as con:
        spec = automatic_spec(con, ds.model_copy(update={"features": None}))
        frame = build_feature_frame(
            con, spec, [datetime(2024, 9, 1)], 30, datetime(2025, 1, 1), rule=LabelRule("subscription", grace_days=14)
        )
    names = set(spec.feature_names)
    assert {f"{t}_90d" for t in tables["activity"].action.unique()} <= names  # all nine types
    assert {
        "events_30d",
        "events_90d",
        "days_since_last_event",
        "tenure_days",
        "activity_trend",
        "subscriptions_started",
        "platform_is_web",
        "country_is_us",
    } <= names
    assert recency_feature(spec) == "days_since_last_event"
    logged = log1p_features(spec)
    assert "events_90d" in logged and "platform_is_web" not in logged and "activity_trend" not in logged
    one_hot = frame[[n for n in spec.feature_names if n.startswith("platform_is_")]]
    assert (one_hot.sum(axis=1) == 1).all()  # exactly one platform per member
    assert frame[spec.feature_names].notna().all().all()


def test_lifetime_totals_and_tenure_drift_by_construction(product) -> None:
    """They are reported as expected drift, never alarmed; windowed features and one-hot
    attributes are not; the synthetic spec keeps exactly its old list (tenure_days)."""
    from churn.features import default_feature_spec
    from churn.features.auto import automatic_spec, growing_features

    ds, wh, _ = product
    with wh.reader() as con:
        spec = automatic_spec(con, ds.model_copy(update={"features": None}))
    assert set(growing_features(spec)) == {"events_lifetime", "tenure_days", "subscriptions_started"}
    assert growing_features(default_feature_spec()) == ["tenure_days"]
