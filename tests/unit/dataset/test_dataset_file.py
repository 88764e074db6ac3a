"""The dataset file: validated key by key, errors name the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from churn.dataset import DatasetError, load_dataset, ploomber_args, workspace

ROOT = Path(__file__).resolve().parents[3]
PURCHASES = {
    "name": "shop",
    "events": {"path": "p.csv", "user": "customer", "time": "date", "value": "amount"},
    "churn": {"rule": "inactivity", "lookback_days": 180},
    "snapshots": {"cadence_days": 30, "horizon_days": 90},
}


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "dataset.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_minimal_purchase_log_file_is_valid(tmp_path: Path) -> None:
    ds = load_dataset(_write(tmp_path, PURCHASES))
    assert ds.name == "shop" and ds.churn.rule == "inactivity" and ds.events.value == "amount"
    assert ds.resolve(ds.events.path) == tmp_path / "p.csv"
    assert workspace(ds, "/x")["warehouse"] == Path("/x/data/shop/churn.duckdb")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(colour="red"), r"unknown key 'colour'"),
        (lambda d: d["events"].update(usr="x"), r"unknown key 'events.usr'"),
        (lambda d: d.pop("snapshots"), r"missing required key 'snapshots'"),
        (lambda d: d["events"].pop("time"), r"missing required key 'events.time'"),
        (lambda d: d["churn"].update(rule="cancellation", lookback_days=None), r"cancellation needs users.churned_at"),
        (
            lambda d: d["churn"].update(rule="subscription", lookback_days=None),
            r"subscription needs a subscriptions table",
        ),
        (lambda d: d["churn"].update(grace_days=3), r"grace_days is for the subscription rule"),
        (lambda d: d["churn"].update(event_types=["buy"]), r"event_types needs events.type"),
        (lambda d: d.update(name="My Shop"), r"name 'My Shop'"),
        (lambda d: d["snapshots"].update(horizon_days=0), r"snapshots.horizon_days"),
        (lambda d: d.update(quality={"label_rate": [0.5, 0.1]}), r"lower bound 0.5 is above"),
    ],
)
def test_bad_keys_are_named_with_the_file(tmp_path: Path, change, message: str) -> None:
    data = yaml.safe_load(yaml.safe_dump(PURCHASES))
    change(data)
    path = _write(tmp_path, data)
    with pytest.raises(DatasetError, match=message) as info:
        load_dataset(path)
    assert str(path) in str(info.value)


def test_a_missing_spec_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"features: spec file .*nope.yaml does not exist"):
        load_dataset(_write(tmp_path, {**PURCHASES, "features": "nope.yaml"}))


@pytest.mark.parametrize(
    "path", ["datasets/synthetic.yaml", "examples/purchase_log/dataset.yaml", "examples/product_log/dataset.yaml"]
)
def test_shipped_dataset_files_are_valid(path: str) -> None:
    assert load_dataset(ROOT / path).name


def test_the_default_dataset_file_agrees_with_env_yaml() -> None:
    """env.yaml's defaults (used by a plain `ploomber build`) are the synthetic data set's."""
    env = yaml.safe_load((ROOT / "env.yaml").read_text())
    ds = load_dataset(ROOT / "datasets" / "synthetic.yaml")
    assert ds.is_default and ds.source == "synthetic"
    assert (ds.snapshots.horizon_days, ds.snapshots.n_valid, ds.snapshots.count) == (
        env["horizon_days"],
        env["n_valid_snapshots"],
        env["n_snapshots"],
    )
    assert list(ds.quality.label_rate) == [env["label_rate_min"], env["label_rate_max"]]
    assert list(ds.quality.churn_share) == [env["churn_rate_min"], env["churn_rate_max"]]


def test_ploomber_args_point_at_the_workspace_and_change_with_the_data(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("customer,date,amount\n1,2024-01-01,3\n")
    path = _write(tmp_path, PURCHASES)
    args = dict(zip(*[iter(ploomber_args(path, tmp_path))] * 2, strict=False))
    assert args["--env--warehouse"] == str(tmp_path / "data" / "shop" / "churn.duckdb")
    assert args["--env--reports_dir"] == str(tmp_path / "reports" / "shop")
    assert args["--env--horizon_days"] == "90"
    (tmp_path / "p.csv").write_text("customer,date,amount\n1,2024-01-01,3\n2,2024-01-02,4\n")
    assert (
        dict(zip(*[iter(ploomber_args(path, tmp_path))] * 2, strict=False))["--env--dataset_id"]
        != args["--env--dataset_id"]
    )


def test_synthetic_identity_includes_the_generation_parameters() -> None:
    ds = load_dataset(ROOT / "datasets" / "synthetic.yaml")
    assert ds.fingerprint(n_users=1000, seed=42) != ds.fingerprint(n_users=100_000, seed=42)
    assert ds.fingerprint(n_users=1000, seed=42) == ds.fingerprint(n_users=1000, seed=42)


def test_monitoring_thresholds_come_from_the_dataset_file_and_are_not_its_identity(tmp_path: Path) -> None:
    """A data set of your own does not inherit the simulator's 3% churn-rate alert; thresholds
    given in the file reach the build, and tuning them keeps the data set's identity."""
    (tmp_path / "p.csv").write_text("customer,date,amount\n1,2024-01-01,3\n")

    def env_of(data: dict) -> dict[str, str]:
        return dict(zip(*[iter(ploomber_args(_write(tmp_path, data), tmp_path))] * 2, strict=False))

    plain = env_of(PURCHASES)
    assert plain["--env--alert_churn_rate_max"] == "1.0" and "--env--alert_auc_min" not in plain
    tuned = env_of({**PURCHASES, "monitoring": {"alert_churn_rate_max": 0.4, "retrain_min_new_labels": 200}})
    assert (tuned["--env--alert_churn_rate_max"], tuned["--env--retrain_min_new_labels"]) == ("0.4", "200")
    assert tuned["--env--dataset_id"] == plain["--env--dataset_id"]
    synthetic = dict(zip(*[iter(ploomber_args(ROOT / "datasets" / "synthetic.yaml", tmp_path))] * 2, strict=False))
    assert "--env--alert_churn_rate_max" not in synthetic  # env.yaml's simulator values stay
    with pytest.raises(DatasetError, match=r"monitoring.alert_auc_min"):
        load_dataset(_write(tmp_path, {**PURCHASES, "monitoring": {"alert_auc_min": 2}}))
    with pytest.raises(DatasetError, match=r"unknown key 'monitoring.alert_psi'"):
        load_dataset(_write(tmp_path, {**PURCHASES, "monitoring": {"alert_psi": 0.2}}))
