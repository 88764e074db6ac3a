"""Expectations on the offline feature table (``ml_pipeline.features``), built from the spec."""

from __future__ import annotations

from typing import Any

import pandas as pd

from churn.features.spec import FeatureSpec
from churn.quality.runner import import_gx
from churn.quality.suites import _rule

DERIVED_LABEL_RATE = (0.0001, 0.9999)
"""Label-rate bounds when the dataset file gives none: both classes occur, nothing more."""
NON_NEGATIVE_AGGREGATIONS = {"count", "count_distinct_days", "days_since_last", "days_since_first"}


def prepare_feature_frames(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """All vectors (``features``) and the matured, labelled ones (``labels``)."""
    labelled = frame[frame["label_mature"].astype(bool)]
    return {"features": frame, "labels": labelled[["user_id", "snapshot_at", "label"]].astype({"label": "float64"})}


def feature_suites(spec: FeatureSpec, label_rate_bounds: tuple[float, float]) -> dict[str, Any]:
    """Suites for :func:`prepare_feature_frames`: structure, nulls, ranges, label values and rate."""
    gx = import_gx()
    columns = ["user_id", "snapshot_at", *spec.feature_names, "label", "label_mature"]
    rules = [
        _rule("ExpectTableColumnsToMatchOrderedList", "feature_columns",
              f"Columns are the keys, the spec's features in order ({spec.key}), label, label_mature.",
              column_list=columns),
        _rule("ExpectTableRowCountToBeBetween", "non_empty", "At least one feature vector.", min_value=1),
        _rule("ExpectCompoundColumnsToBeUnique", "one_vector_per_user_snapshot",
              "One vector per (user_id, snapshot_at).", column_list=["user_id", "snapshot_at"]),
    ]
    rules += [_rule("ExpectColumnValuesToNotBeNull", "feature_not_null",
                    f"{name} has no NULLs (the spec defines a default).", column=name)
              for name in ["user_id", "snapshot_at", *spec.feature_names]]
    rules += [_range_rule(f) for f in spec.features if _range_rule(f) is not None]
    low, high = label_rate_bounds
    label_rules = [
        _rule("ExpectColumnValuesToBeInSet", "label_binary", "Matured labels are 0 or 1.",
              column="label", value_set=[0.0, 1.0]),
        _rule("ExpectColumnMeanToBeBetween", "label_rate",
              f"Churn rate within the horizon lies in [{low}, {high}].", column="label",
              min_value=low, max_value=high),
    ]
    return {"features": gx.ExpectationSuite(name="features", expectations=rules),
            "labels": gx.ExpectationSuite(name="labels", expectations=label_rules)}


def _range_rule(feature) -> Any:
    """Counts and day measures are >= 0; distinct days cannot exceed their window."""
    if feature.aggregation not in NON_NEGATIVE_AGGREGATIONS:
        return None
    high = feature.window_days if feature.aggregation == "count_distinct_days" else None
    return _rule("ExpectColumnValuesToBeBetween", "feature_range",
                 f"{feature.name} ({feature.aggregation}) lies in [0, {high or 'inf'}].",
                 column=feature.name, min_value=0, max_value=high)
