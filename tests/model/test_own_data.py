"""The purchase-log example, end to end through features and training: the platform's model
beats recency alone and matches what a careful analyst fits by hand (logistic regression on
log recency, frequency and monetary value) on the same rows and the same temporal split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import yaml
from sklearn.metrics import roc_auc_score

from churn.data.examples import purchase_log
from churn.data.loader import load_files
from churn.dataset import load_dataset
from churn.features import LabelRule, build_feature_frame, snapshot_schedule
from churn.features.auto import dataset_spec, log1p_features, longest_window, recency_feature
from churn.modeling.train import labelled, train_model
from churn.store import raw
from churn.store.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def purchase_features(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("purchase_model")
    purchase_log()[0].to_csv(tmp / "purchases.csv", index=False)
    data = yaml.safe_load((ROOT / "examples/purchase_log/dataset.yaml").read_text())
    data.update(features=str(ROOT / "examples/purchase_log/features.yaml"))
    data["events"]["path"] = "purchases.csv"
    (tmp / "dataset.yaml").write_text(yaml.safe_dump(data))
    ds = load_dataset(tmp / "dataset.yaml")
    wh = Warehouse(tmp / "w.duckdb")
    load_files(wh, ds)
    first, last = raw.data_range(wh)
    end = last.ceil("D")
    with wh.reader() as con:
        spec = dataset_spec(con, ds)
        horizon = ds.snapshots.horizon_days
        snaps = snapshot_schedule(
            first,
            end,
            cadence_days=ds.snapshots.cadence_days,
            horizon_days=horizon,
            longest_window_days=longest_window(spec),
        )
        frame = build_feature_frame(
            con,
            spec,
            snaps,
            horizon,
            end.to_pydatetime(),
            rule=LabelRule("inactivity", lookback_days=ds.churn.lookback_days),
        )
    return spec, frame, horizon


def test_purchase_model_beats_recency_and_matches_a_hand_fitted_rfm_model(purchase_features) -> None:
    spec, frame, horizon = purchase_features
    result = train_model(
        frame,
        spec.feature_names,
        horizon,
        n_valid=2,
        baseline_feature=recency_feature(spec),
        log_features=log1p_features(spec),
    )
    assert result.baseline is not None and result.validation.auc > result.baseline.auc

    # the analyst's model, fitted here with statsmodels on the same training and validation rows
    data = labelled(frame)
    train = data[data.snapshot_at.isin(result.train_snapshots)]
    valid = data[data.snapshot_at.isin(result.valid_snapshots)]
    rfm_columns = ["days_since_last_purchase", "purchases_lifetime", "amount_mean"]

    def rfm(d: pd.DataFrame) -> np.ndarray:
        return sm.add_constant(np.log1p(d[rfm_columns].to_numpy(float)), has_constant="add")

    fit = sm.Logit(train.label.to_numpy(int), rfm(train)).fit(disp=0)
    analyst_auc = roc_auc_score(valid.label, fit.predict(rfm(valid)))
    assert abs(result.validation.auc - analyst_auc) <= 0.01, (result.validation.auc, analyst_auc)
    assert pd.Series(result.predictions.label).nunique() == 2


def test_logging_counts_matters_for_the_linear_model(purchase_features) -> None:
    """The documented transform is applied: without log1p the fitted pipeline differs."""
    spec, frame, horizon = purchase_features
    logged = train_model(frame, spec.feature_names, horizon, log_features=log1p_features(spec))
    plain = train_model(frame, spec.feature_names, horizon)
    assert logged.log_features and not plain.log_features
    assert logged.validation.auc != plain.validation.auc
