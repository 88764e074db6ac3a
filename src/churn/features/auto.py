"""The feature spec of a data set: its spec file (in the data set's own column names), or one
derived automatically from the data.

Own data lands in the platform's tables (:mod:`churn.data.loader`), so a spec file may leave
out ``sources`` and ``entity``: the data set's events, users and subscriptions are filled in,
keyed by ``user_id``. Columns may be named as in the user's files (``events.type`` ->
``event_type``, ``events.value`` -> ``value``, ``subscriptions.start`` -> ``started_at``).

The automatic spec: counts of events in total and per event type over a short and a long
window, active days, recency (days since the last event), tenure, trend (short window vs the
long window's average), value sums and averages when a value column exists, subscription
counts and recency, and one 0/1 indicator per level of each user attribute (one-hot).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb

from churn.dataset import Dataset
from churn.features.compile import check_spec_against_database, quote
from churn.features.defaults import default_feature_spec
from churn.features.spec import FeatureDef, FeatureSpec, FeatureSpecError, load_spec

MAX_TYPE_FEATURES = 12
"""Per-type counts for at most this many event types (the most frequent ones)."""
LOG1P_AGGREGATIONS = ("count", "count_distinct_days", "sum", "mean", "days_since_last", "days_since_first")
"""Counts, amounts and day measures are skewed and non-negative: they enter models through log1p."""

SOURCES = {
    "events": {"table": "raw_data.events", "entity_column": "user_id", "timestamp_column": "event_at"},
    "users": {"table": "raw_data.users", "entity_column": "user_id", "timestamp_column": "signup_at"},
    "subscriptions": {"table": "raw_data.subscriptions", "entity_column": "user_id", "timestamp_column": "started_at"},
}


def log1p_features(spec: FeatureSpec) -> list[str]:
    """Features that enter the model as ``log1p(x)`` (see :data:`LOG1P_AGGREGATIONS`); counts
    over the users source are 0/1 indicators (one row per user) and stay as they are."""

    def indicator(f: FeatureDef) -> bool:
        return _is_users_count(spec, f)

    return [f.name for f in spec.features if f.aggregation in LOG1P_AGGREGATIONS and not indicator(f)]


def _is_users_count(spec: FeatureSpec, f: FeatureDef) -> bool:
    """A count over the users table: one row per user, so a 0/1 indicator (one-hot)."""
    return (
        f.aggregation == "count" and f.source is not None and spec.sources[f.source].table == SOURCES["users"]["table"]
    )


def growing_features(spec: FeatureSpec) -> list[str]:
    """Lifetime counts, sums and ``days_since_first`` (tenure): they grow with calendar time for
    every user, so their distribution drifts by construction (reported, never alarmed)."""
    growing = ("count", "count_distinct_days", "sum", "days_since_first")
    return [
        f.name
        for f in spec.features
        if f.window_days is None and f.aggregation in growing and not _is_users_count(spec, f)
    ]


def recency_feature(spec: FeatureSpec) -> str | None:
    """The spec's recency feature (days since the last row of the busiest source), if any."""
    recency = [f for f in spec.features if f.aggregation == "days_since_last"]
    events = [f for f in recency if f.source == "events"]
    chosen = events or recency
    return min(chosen, key=lambda f: (f.filter is not None, f.window_days or 0)).name if chosen else None


def _ident(text: str) -> str:
    name = re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_") or "x"
    return name if name[0].isalpha() else f"t_{name}"


def _renames(dataset: Dataset) -> dict[str, str]:
    """The user's column names -> the platform's, for spec files written in the user's names."""
    names: dict[str, str] = {}
    if dataset.events:
        names.update({dataset.events.user: "user_id", dataset.events.time: "event_at"})
        if dataset.events.type:
            names[dataset.events.type] = "event_type"
        if dataset.events.value:
            names[dataset.events.value] = "value"
    if dataset.subscriptions:
        names.update({dataset.subscriptions.start: "started_at", dataset.subscriptions.end: "ended_at"})
    return names


def spec_from_file(dataset: Dataset, path: str | Path) -> FeatureSpec:
    """The data set's spec file, with default sources and the user's column names mapped."""
    import yaml

    file = dataset.resolve(str(path))
    data = yaml.safe_load(file.read_text())
    if not isinstance(data, dict):
        raise FeatureSpecError(f"feature spec {file}: expected a mapping (name, version, features)")
    data = {"version": "v1", **data}
    data.setdefault("entity", "user_id")
    if "sources" not in data:
        present = {"events", "users"} | ({"subscriptions"} if dataset.subscriptions else set())
        data["sources"] = {k: v for k, v in SOURCES.items() if k in present}
    renames = _renames(dataset)
    for feature in data.get("features") or []:
        if isinstance(feature, dict):
            if feature.get("column") in renames:
                feature["column"] = renames[feature["column"]]
            if isinstance(feature.get("filter"), dict):
                feature["filter"] = {renames.get(k, k): v for k, v in feature["filter"].items()}
    try:
        return load_spec(data)
    except FeatureSpecError as exc:
        raise FeatureSpecError(f"feature spec {file}: {exc}") from None


def check_filters_occur(con: duckdb.DuckDBPyConnection, spec: FeatureSpec, where: str = "feature spec") -> None:
    """Raise when a feature filters on a value that never occurs (e.g. a misspelt event type):
    such a feature would be a constant 0 and hide the mistake. The tables and columns are
    checked first (a missing column is named as such); then one scan per source table collects
    the distinct values of every filtered column."""
    check_spec_against_database(con, spec)
    columns: dict[str, list[str]] = {}
    for f in spec.features:
        for column, _ in f.filter_items():
            table = spec.sources[str(f.source)].table
            columns.setdefault(table, [])
            if column not in columns[table]:
                columns[table].append(column)
    present: dict[tuple[str, str], set[Any]] = {}
    for table, names in columns.items():
        lists = con.execute(f"SELECT {', '.join(f'list(DISTINCT {quote(c)})' for c in names)} FROM {table}").fetchall()[
            0
        ]
        present.update({(table, c): set(values or []) for c, values in zip(names, lists, strict=True)})
    for f in spec.features:
        for column, values in f.filter_items():
            table = spec.sources[str(f.source)].table
            missing = [v for v in values if v not in present[table, column]]
            if missing:
                shown = sorted(map(str, present[table, column]))[:20]
                raise FeatureSpecError(
                    f"{where}: feature {f.name!r} filters {column} on {missing}, which never "
                    f"occur in {table} (values present: {shown})"
                )


def _windows(span_days: int, horizon_days: int) -> tuple[int, int]:
    """(short, long) windows: 30/90 days when the data allows, shorter for short logs."""
    long = 90 if span_days >= 90 + 6 * horizon_days else max(14, min(90, span_days // 4))
    return max(7, long // 3), long


def automatic_spec(con: duckdb.DuckDBPyConnection, dataset: Dataset) -> FeatureSpec:
    """A spec derived from the loaded data (see the module docstring)."""
    low, high = con.execute("SELECT min(event_at), max(event_at) FROM raw_data.events").fetchall()[0]
    short, long = _windows((high - low).days, dataset.snapshots.horizon_days)

    def ev(**kw: Any) -> dict[str, Any]:
        return {"source": "events", **kw}

    features: list[dict[str, Any]] = [
        ev(name=f"events_{short}d", aggregation="count", window_days=short, description=f"events, last {short} days"),
        ev(name=f"events_{long}d", aggregation="count", window_days=long, description=f"events, last {long} days"),
        ev(
            name=f"active_days_{short}d",
            aggregation="count_distinct_days",
            window_days=short,
            description=f"days with an event, last {short} days",
        ),
        ev(
            name=f"active_days_{long}d",
            aggregation="count_distinct_days",
            window_days=long,
            description=f"days with an event, last {long} days",
        ),
        ev(
            name="days_since_last_event",
            aggregation="days_since_last",
            default="tenure_days",
            description="days since the latest event (recency)",
        ),
        ev(name="events_lifetime", aggregation="count", description="events since the first one (frequency)"),
        {
            "name": "tenure_days",
            "source": "users",
            "aggregation": "days_since_first",
            "default": 0.0,
            "description": "days since signup (or the first event)",
        },
        {
            "name": "activity_trend",
            "aggregation": "ratio",
            "numerator": f"events_{short}d",
            "denominator": f"events_{long}d",
            "scale": long / short,
            "default": 0.0,
            "description": f"last {short} days vs the {long}-day average (1 = steady)",
        },
    ]
    types = con.execute("SELECT event_type, count(*) FROM raw_data.events GROUP BY 1 ORDER BY 2 DESC, 1").fetchall()
    if len(types) > 1:
        used = {f["name"] for f in features}
        for event_type, _ in types[:MAX_TYPE_FEATURES]:
            name = f"{_ident(event_type)}_{long}d"
            if name not in used:
                used.add(name)
                features.append(
                    ev(
                        name=name,
                        aggregation="count",
                        window_days=long,
                        filter={"event_type": event_type},
                        description=f"{event_type} events, last {long} days",
                    )
                )
    if con.execute("SELECT count(value) FROM raw_data.events").fetchall()[0][0]:
        features += [
            ev(
                name=f"value_sum_{long}d",
                aggregation="sum",
                column="value",
                window_days=long,
                description=f"sum of {dataset.events.value if dataset.events else 'value'}, last {long} days",
            ),
            ev(
                name="value_mean",
                aggregation="mean",
                column="value",
                default=0.0,
                description="average value per event, lifetime (monetary)",
            ),
            ev(
                name="value_sum_lifetime",
                aggregation="sum",
                column="value",
                default=0.0,
                description="sum of values, lifetime",
            ),
        ]
    if dataset.subscriptions is not None:
        features += [
            {
                "name": "subscriptions_started",
                "source": "subscriptions",
                "aggregation": "count",
                "description": "subscriptions started so far",
            },
            {
                "name": "days_since_subscription_start",
                "source": "subscriptions",
                "aggregation": "days_since_last",
                "default": "tenure_days",
                "description": "days since the latest subscription started",
            },
        ]
    for attribute in dataset.users.attributes if dataset.users else []:
        levels = con.execute(
            f'SELECT "{attribute}", count(*) FROM raw_data.users GROUP BY 1 ORDER BY 2 DESC, 1'
        ).fetchall()
        for level, _ in levels[:20]:
            features.append(
                {
                    "name": f"{_ident(attribute)}_is_{_ident(level)}",
                    "source": "users",
                    "aggregation": "count",
                    "filter": {attribute: level},
                    "description": f"1 if {attribute} is {level!r} (one-hot)",
                }
            )
    sources = {k: v for k, v in SOURCES.items() if k != "subscriptions" or dataset.subscriptions is not None}
    return load_spec(
        {
            "name": f"{dataset.name}_auto",
            "version": "auto1",
            "entity": "user_id",
            "description": f"derived automatically from {dataset.name}",
            "sources": sources,
            "features": features,
        }
    )


def dataset_spec(con: duckdb.DuckDBPyConnection, dataset: Dataset) -> FeatureSpec:
    """The spec a data set's build uses: its file, the built-in default for synthetic data, or
    the automatic one; checked against the data (columns, filter values that never occur)."""
    if dataset.features:
        spec = spec_from_file(dataset, dataset.features)
        check_filters_occur(con, spec, f"feature spec {dataset.resolve(dataset.features)}")
        return spec
    if dataset.source == "synthetic":
        return default_feature_spec()
    return automatic_spec(con, dataset)


def longest_window(spec: FeatureSpec) -> int:
    """Days of history the longest windowed feature needs."""
    return max((f.window_days or 0 for f in spec.features), default=0)
