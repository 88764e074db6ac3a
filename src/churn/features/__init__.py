"""Declarative point-in-time features: a spec, its DuckDB compilation, snapshots and labels."""

from churn.features.compile import check_spec_against_database, compile_features_sql
from churn.features.defaults import DEFAULT_SPEC, default_feature_spec
from churn.features.historical import (
    SnapshotError,
    build_feature_frame,
    get_historical_features,
    population_sql,
    snapshot_dates,
    snapshot_plan,
    snapshot_schedule,
    snapshots_needed,
    split_snapshots,
)
from churn.features.rules import RULES, LabelRule, population_label_sql
from churn.features.spec import AGGREGATIONS, FeatureDef, FeatureSpec, FeatureSpecError, SourceSpec, load_spec

__all__ = [
    "AGGREGATIONS",
    "DEFAULT_SPEC",
    "FeatureDef",
    "FeatureSpec",
    "FeatureSpecError",
    "SnapshotError",
    "SourceSpec",
    "build_feature_frame",
    "check_spec_against_database",
    "compile_features_sql",
    "default_feature_spec",
    "get_historical_features",
    "load_spec",
    "population_sql",
    "snapshot_dates",
    "snapshot_plan",
    "snapshot_schedule",
    "snapshots_needed",
    "split_snapshots",
    "RULES",
    "LabelRule",
    "population_label_sql",
]
