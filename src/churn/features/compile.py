"""Compile a :class:`FeatureSpec` into one point-in-time DuckDB query.

Each source is range-joined once to the spine of (entity, snapshot_at) rows, on the entity and
``ts < snapshot_at AND ts >= snapshot_at - <longest window>``; every windowed feature of that
source is a conditional aggregate (``... FILTER (WHERE ...)``) over the joined rows. Lifetime
features of a source get a second, unbounded join, so they do not inflate the windowed one
(whose DISTINCT-day counts dominate the cost). DuckDB runs each as a hash join on the entity
plus a filter, far faster than one join per feature.

Only rows strictly before ``snapshot_at`` count: an event at the snapshot instant belongs to
the future. Identifiers come from a validated spec and are double-quoted; filter values are
rendered as escaped literals, so no spec text reaches the SQL unchecked.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import duckdb

from churn.features.spec import (
    COUNT_AGGREGATIONS,
    RECENCY_AGGREGATIONS,
    TABLE_NAME,
    FeatureDef,
    FeatureSpec,
    FeatureSpecError,
    Scalar,
    SourceSpec,
)

_NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                  "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL", "REAL")  # fmt: skip
_TIME_TYPES = ("TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "DATE")


def quote(name: str) -> str:
    """Double-quote a validated identifier, or ``schema.table`` part by part."""
    return ".".join(f'"{part}"' for part in name.split("."))


def quote_table(table: str) -> str:
    """A quoted, schema-qualified table (``main`` by default), so no CTE of ours can shadow it."""
    return quote(table if "." in table else f"main.{table}")


def literal(value: Scalar) -> str:
    """A SQL literal for a filter value (strings escaped; only finite numbers)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FeatureSpecError(f"filter value {value!r} is not a finite number")
        return repr(value)
    if "\x00" in value:
        raise FeatureSpecError(f"filter value {value!r} contains a NUL character")
    return "'" + value.replace("'", "''") + "'"


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """Column name -> DuckDB type of ``schema.table`` (empty when it does not exist)."""
    schema, _, name = table.rpartition(".")
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [schema or "main", name],
    ).fetchall()
    return {column: dtype.upper() for column, dtype in rows}


def _require(columns: dict[str, str], column: str, types: tuple[str, ...] | None, what: str) -> None:
    if column not in columns:
        raise FeatureSpecError(f"{what}: unknown column {column!r} (table has {sorted(columns)})")
    # exact base types: a TIMESTAMP WITH TIME ZONE would compare through the session time zone
    if types is not None and columns[column].split("(")[0] not in types:
        expected = "/".join(types[:6])
        raise FeatureSpecError(f"{what}: column {column!r} is {columns[column]}, expected {expected}")


def check_spec_against_database(con: duckdb.DuckDBPyConnection, spec: FeatureSpec) -> None:
    """Raise :class:`FeatureSpecError` if a source table or a column the spec uses is missing."""
    columns: dict[str, dict[str, str]] = {}
    for name, source in spec.sources.items():
        columns[name] = table_columns(con, source.table)
        if not columns[name]:
            raise FeatureSpecError(f"source {name!r}: unknown table {source.table!r}")
        _require(columns[name], source.entity_column, None, f"source {name!r} entity_column")
        _require(columns[name], source.timestamp_column, _TIME_TYPES, f"source {name!r} timestamp_column")
    for f in spec.features:
        if f.is_ratio:
            continue
        assert f.source is not None  # every non-ratio feature has one (checked by the spec)
        if f.column is not None:
            _require(columns[f.source], f.column, _NUMERIC_TYPES, f"feature {f.name!r}")
        for column, _ in f.filter_items():
            _require(columns[f.source], column, None, f"feature {f.name!r} filter")


def _condition(f: FeatureDef, ts: str, join_window: int | None) -> str | None:
    parts = [f"t.{quote(c)} IN ({', '.join(literal(v) for v in values)})" for c, values in f.filter_items()]
    if f.window_days is not None and f.window_days != join_window:
        parts.insert(0, f"{ts} >= sp.snapshot_at - INTERVAL {int(f.window_days)} DAY")
    return " AND ".join(parts) or None


def _aggregate(f: FeatureDef, ts: str, join_window: int | None) -> str:
    col = f"t.{quote(f.column)}" if f.column else None
    expr = {
        "count": "count(*)",
        "count_distinct_days": f"count(DISTINCT CAST({ts} AS DATE))",
        "sum": f"sum({col})",
        "mean": f"avg({col})",
        "max": f"max({col})",
        "latest": f"arg_max({col}, ({ts}, {col}))",  # the value breaks timestamp ties: deterministic
        "days_since_last": f"max({ts})",
        "days_since_first": f"min({ts})",
    }[f.aggregation]
    condition = _condition(f, ts, join_window)
    if condition:
        expr += f" FILTER (WHERE {condition})"
    if f.aggregation in RECENCY_AGGREGATIONS:
        return f"date_diff('second', {expr}, sp.snapshot_at) / 86400.0"
    return expr if f.aggregation in COUNT_AGGREGATIONS else f"CAST({expr} AS DOUBLE)"


class _Join(NamedTuple):
    """One range join of a source to the spine: its CTE, features and lower bound (days)."""

    cte: str
    source: SourceSpec
    features: list[FeatureDef]
    bound: int | None


def _joins(spec: FeatureSpec) -> list[_Join]:
    """Windowed features of a source share one join bounded by their longest window; lifetime
    ones get their own unbounded join, so the bounded join (and its DISTINCT days) stays small."""
    joins: list[_Join] = []
    for name, source in spec.sources.items():
        windowed = [f for f in spec.features if f.source == name and f.window_days is not None]
        lifetime = [f for f in spec.features if f.source == name and f.window_days is None]
        for features, bound in ((windowed, max((f.window_days or 0 for f in windowed), default=0)), (lifetime, None)):
            if features:
                joins.append(_Join(f"_pit_agg_{len(joins)}", source, features, bound))
    return joins


def _join_cte(spec: FeatureSpec, join: _Join) -> str:
    ts, entity = f"t.{quote(join.source.timestamp_column)}", quote(spec.entity)
    lower = f" AND {ts} >= sp.snapshot_at - INTERVAL {int(join.bound)} DAY" if join.bound else ""
    aggregates = ",\n    ".join(f"{_aggregate(f, ts, join.bound)} AS {quote(f.name)}" for f in join.features)
    return (
        f"{join.cte} AS (\n  SELECT sp.{entity}, sp.snapshot_at,\n    {aggregates}\n"
        f"  FROM _pit_spine sp JOIN {quote_table(join.source.table)} t\n"
        f"    ON t.{quote(join.source.entity_column)} = sp.{entity} AND {ts} < sp.snapshot_at{lower}\n"
        f"  GROUP BY sp.{entity}, sp.snapshot_at\n)"
    )


def _fill_value(f: FeatureDef) -> str | None:
    """The numeric value used when no row matched (None: filled from another feature later)."""
    if isinstance(f.default, str):
        return None
    if f.default is not None:
        return repr(float(f.default))
    if f.aggregation in RECENCY_AGGREGATIONS:
        assert f.window_days is not None  # a lifetime recency needs a default (checked by the spec)
        return repr(float(f.window_days))
    return "0" if f.aggregation in COUNT_AGGREGATIONS else "0.0"


def _joined_cte(spec: FeatureSpec, joins: list[_Join]) -> str:
    """Every non-ratio feature per spine row, numeric defaults already filled in."""
    entity = quote(spec.entity)
    columns = []
    for join in joins:
        for f in join.features:
            ref, fill = f"{join.cte}.{quote(f.name)}", _fill_value(f)
            columns.append(f"{ref if fill is None else f'coalesce({ref}, {fill})'} AS {quote(f.name)}")
    tables = "".join(
        f"\n  LEFT JOIN {j.cte} ON {j.cte}.{entity} = sp.{entity} AND {j.cte}.snapshot_at = sp.snapshot_at"
        for j in joins
    )
    body = ",\n    ".join(columns)
    return f"_pit_joined AS (\n  SELECT sp.{entity}, sp.snapshot_at,\n    {body}\n  FROM _pit_spine sp{tables}\n)"


def _final_expression(spec: FeatureSpec, f: FeatureDef) -> str:
    """A feature's output: ratios and feature-name defaults are resolved here."""
    if f.is_ratio:
        assert f.numerator is not None and f.denominator is not None  # checked by the spec
        num = _final_expression(spec, spec.feature(f.numerator))
        den = _final_expression(spec, spec.feature(f.denominator))
        quotient = f"{float(f.scale)!r} * CAST({num} AS DOUBLE) / {den}"
        return f"CASE WHEN {den} = 0 THEN {float(f.default or 0.0)!r} ELSE {quotient} END"
    if isinstance(f.default, str):
        return f"coalesce(j.{quote(f.name)}, j.{quote(f.default)})"
    return f"j.{quote(f.name)}"


def compile_spine_sql(spec: FeatureSpec, spine_select: str) -> str:
    """The feature query over ``spine_select``, a trusted SELECT of (entity, snapshot_at)."""
    joins = _joins(spec)
    ctes = [f"_pit_spine AS (\n  SELECT DISTINCT * FROM ({spine_select})\n)"]
    ctes += [_join_cte(spec, join) for join in joins] + [_joined_cte(spec, joins)]
    entity = quote(spec.entity)
    columns = ",\n  ".join(f"{_final_expression(spec, f)} AS {quote(f.name)}" for f in spec.features)
    return (
        "WITH " + ",\n".join(ctes) + f"\nSELECT j.{entity}, j.snapshot_at,\n  {columns}\n"
        f"FROM _pit_joined j\nORDER BY j.snapshot_at, j.{entity}"
    )


def compile_features_sql(
    spec: FeatureSpec, snapshots: str, con: duckdb.DuckDBPyConnection | None = None
) -> str:
    """SQL giving one row per distinct (entity, snapshot_at) of table/view/CTE ``snapshots``.

    ``snapshots`` needs the columns ``<spec.entity>`` and ``snapshot_at``. With ``con`` the
    spec's tables and columns are first checked against the database.
    """
    if not TABLE_NAME.match(snapshots) or snapshots.startswith("_pit_"):
        raise FeatureSpecError(f"snapshots relation {snapshots!r} is not a table, view or CTE name")
    if con is not None:
        check_spec_against_database(con, spec)
    spine = f"SELECT {quote(spec.entity)}, CAST(snapshot_at AS TIMESTAMP) AS snapshot_at FROM {quote(snapshots)}"
    return compile_spine_sql(spec, spine)
