"""Honest training: temporal validation only, regularisation chosen by time-ordered CV.

Rows are (user, snapshot) feature vectors with a label that looks ``horizon_days`` ahead. The
validation set is the latest snapshots; training snapshots whose label window would reach into
the validation period are purged, so no label information crosses the split.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from churn.features.historical import split_snapshots
from churn.modeling.evaluate import EvaluationReport, evaluate, max_f1_threshold
from churn.modeling.predict import log1p_columns

DEFAULT_CS: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
MODEL_KINDS = ("logistic", "hist_gradient_boosting")
GBM_GRID: tuple[float, ...] = (0.0, 1.0, 10.0)
"""For gradient boosting the tuned value is the L2 regularisation (in the ``C`` slot)."""


class TrainingDataError(ValueError):
    """The training data cannot support an honest model (e.g. a single class)."""


@dataclass
class TrainingResult:
    """The fitted pipeline with the evidence for it."""

    pipeline: Pipeline
    features: list[str]
    best_c: float
    threshold: float
    cv_scores: pd.DataFrame
    train_snapshots: list[pd.Timestamp]
    valid_snapshots: list[pd.Timestamp]
    validation: EvaluationReport
    baseline: EvaluationReport | None
    predictions: pd.DataFrame = field(repr=False)
    log_features: tuple[str, ...] = ()
    kind: str = "logistic"
    baseline_feature: str | None = None


def make_pipeline(c: float, seed: int = 0, kind: str = "logistic") -> Pipeline:
    """Scaling + L2 logistic regression (the model the API explains coefficient by coefficient),
    or scikit-learn's histogram gradient boosting with L2 regularisation ``c``."""
    if kind == "hist_gradient_boosting":
        return Pipeline([("model", _SingleThreaded(
            l2_regularization=c, max_iter=100, learning_rate=0.1, early_stopping=False, random_state=seed))])
    if kind != "logistic":
        raise ValueError(f"unknown model kind {kind!r} (known: {', '.join(MODEL_KINDS)})")
    return Pipeline([
        ("scale", StandardScaler()),
        ("model", LogisticRegression(C=c, max_iter=2000, random_state=seed)),
    ])  # fmt: skip


class _SingleThreaded(HistGradientBoostingClassifier):  # type: ignore[misc]
    """Gradient boosting that fits and predicts on one OpenMP thread: on a shared machine the
    default spinning threads made a 0.3 s fit take 20 s (measured here, load 7 on 2 cores)."""

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> _SingleThreaded:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

        with threadpool_limits(limits=1, user_api="openmp"):
            super().fit(X, y, sample_weight)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="openmp"):
            proba: np.ndarray = super().predict_proba(X)
        return proba


def model_inputs(frame: pd.DataFrame, features: list[str], log_features: tuple[str, ...] | list[str] = ()) -> np.ndarray:
    """The feature matrix as the model sees it: ``log1p`` on ``log_features`` (as the predictor)."""
    idx = [i for i, f in enumerate(features) if f in set(log_features)]
    return log1p_columns(frame[features].to_numpy(float), idx)


def labelled(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows whose label horizon is over (``label_mature``), with an int label."""
    rows = frame[frame["label_mature"].astype(bool)].copy()
    rows["label"] = rows["label"].astype(int)
    return rows


def temporal_split(frame: pd.DataFrame, n_valid: int, horizon_days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train on earlier snapshots, validate on the last ``n_valid``; purge overlapping labels."""
    snapshots = sorted(frame["snapshot_at"].unique())
    if len(snapshots) < n_valid + 2:
        raise TrainingDataError(
            f"{len(snapshots)} labelled snapshots: need at least {n_valid + 2} for a temporal split"
        )
    train_at, valid_at = split_snapshots(snapshots, n_valid, horizon_days)
    return frame[frame["snapshot_at"].isin(train_at)], frame[frame["snapshot_at"] >= pd.Timestamp(valid_at[0])]


def time_ordered_folds(snapshot_at: pd.Series, horizon_days: int, min_train: int = 2) -> list[tuple[np.ndarray, np.ndarray]]:
    """Expanding-window folds: train on snapshots before k (purged by the horizon), test on k."""
    snapshots = sorted(snapshot_at.unique())
    values = snapshot_at.to_numpy()
    folds = []
    for k in range(min_train, len(snapshots)):
        test_at = pd.Timestamp(snapshots[k])
        train_idx = np.flatnonzero(values <= np.datetime64(test_at - pd.Timedelta(days=horizon_days)))
        test_idx = np.flatnonzero(values == np.datetime64(test_at))
        if len(train_idx):
            folds.append((train_idx, test_idx))
    return folds


def _check_classes(y: np.ndarray, what: str) -> None:
    if len(np.unique(y)) < 2:
        raise TrainingDataError(f"{what} has a single class ({int(y[0])} only): cannot train or score a churn model")


def cross_validate(train: pd.DataFrame, features: list[str], horizon_days: int,
                   cs: tuple[float, ...] = DEFAULT_CS, log_features: tuple[str, ...] = (),
                   kind: str = "logistic") -> tuple[pd.DataFrame, float, np.ndarray]:
    """AUC per (C, fold), the best C (highest mean AUC) and its out-of-fold predictions."""
    x, y = model_inputs(train, features, log_features), train["label"].to_numpy(int)
    folds = [f for f in time_ordered_folds(train["snapshot_at"], horizon_days)
             if len(np.unique(y[f[0]])) == 2 and len(np.unique(y[f[1]])) == 2]
    if not folds:
        raise TrainingDataError("no time-ordered fold has both classes: too few churners to choose C")
    rows, oof = [], {}
    for c in cs:
        oof[c] = np.full(len(y), np.nan)
        for i, (tr, te) in enumerate(folds):
            p = make_pipeline(c, kind=kind).fit(x[tr], y[tr]).predict_proba(x[te])[:, 1]
            oof[c][te] = p
            rows.append({"C": c, "fold": i, "test_snapshot": train["snapshot_at"].iloc[te[0]],
                         "auc": roc_auc_score(y[te], p)})
    scores = pd.DataFrame(rows)
    best = float(scores.groupby("C")["auc"].mean().idxmax())  # type: ignore[arg-type]  # the index holds floats
    return scores, best, oof[best]


def train_model(frame: pd.DataFrame, features: list[str], horizon_days: int, n_valid: int = 2,
                baseline_feature: str | None = "days_since_last_event", cs: tuple[float, ...] | None = None,
                log_features: tuple[str, ...] | list[str] = (), kind: str = "logistic") -> TrainingResult:
    """Choose C by time-ordered CV on the training snapshots, fit, evaluate on later snapshots.

    The classification threshold is the max-F1 threshold of the out-of-fold training
    predictions, so the validation snapshots play no part in any choice. ``log_features``
    enter the model as ``log1p``. The baseline ranks by ``baseline_feature`` (a recency
    feature); with None (or a feature the frame lacks) it is skipped.
    """
    cs = cs or (GBM_GRID if kind == "hist_gradient_boosting" else DEFAULT_CS)
    log_features = tuple(f for f in log_features if f in features)
    data = labelled(frame)
    train, valid = temporal_split(data, n_valid, horizon_days)
    _check_classes(train["label"].to_numpy(), "the training data")
    _check_classes(valid["label"].to_numpy(), "the validation data")
    cv_scores, best_c, oof = cross_validate(train, features, horizon_days, cs, log_features, kind)
    scored = ~np.isnan(oof)
    threshold = max_f1_threshold(train["label"].to_numpy()[scored], oof[scored])
    pipeline = make_pipeline(best_c, kind=kind).fit(model_inputs(train, features, log_features),
                                                    train["label"].to_numpy(int))
    p_valid = pipeline.predict_proba(model_inputs(valid, features, log_features))[:, 1]
    predictions = valid[["user_id", "snapshot_at", "label"]].assign(model=p_valid)
    baseline = None
    if baseline_feature is not None and baseline_feature in data.columns:
        base_train, base_valid = train[baseline_feature].to_numpy(float), valid[baseline_feature].to_numpy(float)
        base_threshold = max_f1_threshold(train["label"].to_numpy(), base_train)
        predictions["baseline"] = base_valid
        baseline = evaluate(valid["label"].to_numpy(), base_valid, base_threshold, probabilities=False)
    else:
        baseline_feature = None
    return TrainingResult(
        pipeline=pipeline, features=list(features), best_c=best_c, threshold=threshold,
        cv_scores=cv_scores, train_snapshots=sorted(train["snapshot_at"].unique()),
        valid_snapshots=sorted(valid["snapshot_at"].unique()),
        validation=evaluate(valid["label"].to_numpy(), p_valid, threshold),
        baseline=baseline, predictions=predictions, log_features=log_features, kind=kind,
        baseline_feature=baseline_feature,
    )  # fmt: skip


def shuffled_label_auc(frame: pd.DataFrame, features: list[str], horizon_days: int, n_valid: int = 2,
                       repeats: int = 20, seed: int = 0, log_features: tuple[str, ...] | list[str] = ()) -> float:
    """Leakage canary: mean validation AUC of models trained on shuffled labels (should be ~0.5)."""
    train, valid = temporal_split(labelled(frame), n_valid, horizon_days)
    rng = np.random.default_rng(seed)
    x_train, x_valid = model_inputs(train, features, log_features), model_inputs(valid, features, log_features)
    aucs = []
    for _ in range(repeats):
        y = rng.permutation(train["label"].to_numpy(int))
        p = make_pipeline(1.0).fit(x_train, y).predict_proba(x_valid)[:, 1]
        aucs.append(roc_auc_score(valid["label"], p))
    return float(np.mean(aucs))
