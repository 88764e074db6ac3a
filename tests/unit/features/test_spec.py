"""The feature spec: loading, the default spec, and a clear error for every bad spec."""

from __future__ import annotations

import copy
from pathlib import Path

import duckdb
import pytest
import yaml

from churn.features import (
    DEFAULT_SPEC,
    FeatureSpecError,
    check_spec_against_database,
    compile_features_sql,
    default_feature_spec,
    load_spec,
)


def _spec_with(**changes: object) -> dict:
    """The default spec with the events_30d feature's keys replaced by ``changes``."""
    data = copy.deepcopy(DEFAULT_SPEC)
    data["features"][0].update(changes)
    return data


def test_default_spec_has_the_documented_features() -> None:
    """The default spec declares the eleven churn features under version v1."""
    spec = default_feature_spec()
    assert spec.version == "v1" and spec.key == "churn_features:v1"
    assert spec.feature_names == [
        "events_30d", "events_90d", "active_days_30d", "active_days_90d", "days_since_last_event",
        "activity_trend", "feature_use_30d", "support_tickets_90d", "payment_failures_90d",
        "tenure_days", "monthly_price",
    ]  # fmt: skip


def test_spec_round_trips_through_yaml_and_dict(tmp_path: Path) -> None:
    """A YAML file and the to_dict() form load to the same spec."""
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(DEFAULT_SPEC))
    spec = load_spec(path)
    assert spec == default_feature_spec()
    assert load_spec(spec.to_dict()) == spec


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"source": "clicks"}, "unknown source 'clicks'"),
        ({"aggregation": "median"}, "unknown aggregation 'median'"),
        ({"window_days": 0}, "invalid window_days 0"),
        ({"window_days": 366}, "invalid window_days 366"),
        ({"window_days": 7.5}, "invalid window_days 7.5"),
        ({"window_days": True}, "invalid window_days True"),
        ({"name": "events_90d"}, "duplicate or reserved feature name 'events_90d'"),
        ({"name": "snapshot_at"}, "duplicate or reserved feature name 'snapshot_at'"),
        ({"name": 'x" FROM users; --'}, "feature name 'x\" FROM users; --' is not a plain identifier"),
        ({"aggregation": "sum"}, "'events_30d': sum needs a column"),
        ({"column": "event_id"}, "count counts rows and takes no column"),
        ({"aggregation": "days_since_last", "window_days": None}, "lifetime days_since_last needs a default"),
        ({"filter": {"event_type": {"a": 1}}}, "filter 'event_type' needs a value or a non-empty list"),
        ({"filter": {"event_type": []}}, "filter 'event_type' needs a value or a non-empty list"),
        ({"default": "no_such_feature"}, "default 'no_such_feature' must be a number or the name"),
        ({"default": float("inf")}, "default and scale must be finite"),
        ({"numerator": "events_90d"}, "numerator/denominator/scale are only for ratios"),
        ({"colour": "red"}, "unknown key(s) ['colour']"),
    ],
)
def test_bad_feature_gives_an_error_naming_the_problem(changes: dict, message: str) -> None:
    """Each malformed feature is refused with a message that names it and the problem."""
    with pytest.raises(FeatureSpecError) as info:
        load_spec(_spec_with(**changes))
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("ratio", "message"),
    [
        ({"numerator": "events_7d"}, "numerator 'events_7d' is not a feature of this spec"),
        ({"denominator": "activity_trend"}, "denominator 'activity_trend' is itself a ratio"),
        ({"source": "events"}, "a ratio takes numerator/denominator only"),
        ({"scale": "3"}, "ratio scale and default must be numbers"),
    ],
)
def test_bad_ratio_gives_an_error_naming_the_problem(ratio: dict, message: str) -> None:
    """A ratio must refer to existing, non-ratio features and carry numbers only."""
    data = copy.deepcopy(DEFAULT_SPEC)
    trend = next(f for f in data["features"] if f["name"] == "activity_trend")
    trend.update(ratio)
    with pytest.raises(FeatureSpecError) as info:
        load_spec(data)
    assert "'activity_trend'" in str(info.value) and message in str(info.value)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"table": "raw_data.events; DROP TABLE x"}, "is not schema.table"),
        ({"entity_column": "user id"}, "entity_column 'user id' is not a plain identifier"),
    ],
)
def test_bad_source_gives_an_error_naming_the_problem(source: dict, message: str) -> None:
    """Source tables and columns must be plain identifiers (nothing reaches SQL unchecked)."""
    data = copy.deepcopy(DEFAULT_SPEC)
    data["sources"]["events"].update(source)
    with pytest.raises(FeatureSpecError) as info:
        load_spec(data)
    assert message in str(info.value)


def test_spec_version_must_be_a_short_key() -> None:
    """The version namespaces stored keys, so it may not hold separators such as ':' or spaces."""
    with pytest.raises(FeatureSpecError, match="spec version 'v 1:x'"):
        load_spec({**DEFAULT_SPEC, "version": "v 1:x"})


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["sources"]["events"].update(table="raw_data.clicks"), "unknown table 'raw_data.clicks'"),
        (lambda d: d["sources"]["events"].update(timestamp_column="event_type"), "column 'event_type' is VARCHAR"),
        (lambda d: d["sources"]["events"].update(table="aware"), "'event_at' is TIMESTAMP WITH TIME ZONE"),
        (lambda d: d["sources"]["billing"].update(entity_column="customer_id"), "unknown column 'customer_id'"),
        (lambda d: d["features"][0].update(filter={"kind": "login"}), "'events_30d' filter: unknown column 'kind'"),
        (lambda d: d["features"][-1].update(column="plan"), "'monthly_price': column 'plan' is VARCHAR"),
        (lambda d: d["features"][-1].update(column="price"), "'monthly_price': unknown column 'price'"),
    ],
)
def test_spec_is_checked_against_the_database_columns(raw_con: duckdb.DuckDBPyConnection, mutate, message: str) -> None:
    """Tables and columns the spec uses must exist (numeric where aggregated) when compiling."""
    raw_con.execute("CREATE TABLE aware (user_id BIGINT, event_type VARCHAR, event_at TIMESTAMPTZ)")
    data = copy.deepcopy(DEFAULT_SPEC)
    mutate(data)
    spec = load_spec(data)
    with pytest.raises(FeatureSpecError) as info:
        compile_features_sql(spec, "snapshots", raw_con)
    assert message in str(info.value)


def test_default_spec_matches_the_raw_schema(raw_con: duckdb.DuckDBPyConnection) -> None:
    """The default spec compiles against the documented raw tables."""
    check_spec_against_database(raw_con, default_feature_spec())


def test_snapshots_relation_must_be_a_name() -> None:
    """Only a table, view or CTE name is accepted for the snapshots (no SQL text)."""
    with pytest.raises(FeatureSpecError, match="not a table, view or CTE name"):
        compile_features_sql(default_feature_spec(), "(SELECT 1)")
