"""Snapshots, the user population at each one, churn labels, and the offline feature frames.

A user is in the population at snapshot ``t`` if ``signup_at < t`` and they had not churned
before ``t`` (``churned_at IS NULL OR churned_at >= t``). The label is 1 if ``churned_at`` falls
in ``[t, t + horizon)``. It is only known once ``t + horizon <= data_end``
(``label_mature``); later snapshots (e.g. the "current" one used for scoring) get a NULL label.
That is the ``cancellation`` rule; :mod:`churn.features.rules` adds ``inactivity`` and
``subscription`` (``build_feature_frame(..., rule=...)``) and :func:`snapshot_schedule` places
snapshots at a data set's cadence once the longest feature window is observed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from churn.features.compile import (
    check_spec_against_database,
    compile_features_sql,
    compile_spine_sql,
    quote,
    quote_table,
)
from churn.features.rules import LabelRule, population_label_sql
from churn.features.spec import IDENT, TABLE_NAME, FeatureSpec

USERS_TABLE = "raw_data.users"


class SnapshotError(ValueError):
    """Snapshot dates that cannot give honest features or labels."""


def _timestamp(value: datetime | str, what: str) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    if pd.isna(stamp) or stamp.tzinfo is not None:
        raise SnapshotError(f"{what} {value!r} must be a naive (UTC) timestamp")
    return stamp


def snapshot_dates(data_start: datetime | str, data_end: datetime | str, n_snapshots: int = 8,
                   horizon_days: int = 30, spacing_days: int | None = None) -> list[datetime]:
    """``n_snapshots`` midnights, ``spacing_days`` apart (default: the horizon, shrunk to fit).

    The last one is the last midnight whose label horizon ends by ``data_end``, so every
    snapshot is labelled; all lie strictly after ``data_start``.
    """
    start, end = _timestamp(data_start, "data_start"), _timestamp(data_end, "data_end")
    if n_snapshots < 1 or horizon_days < 1:
        raise SnapshotError("n_snapshots and horizon_days must be at least 1")
    last = (end - pd.Timedelta(days=horizon_days)).floor("D")
    if last <= start:
        raise SnapshotError(f"data from {start} to {end} is shorter than the {horizon_days}-day horizon")
    room = (last - start - pd.Timedelta(microseconds=1)).days  # first snapshot must be > start
    spacing = spacing_days or min(horizon_days, room // max(n_snapshots - 1, 1))
    if spacing < 1 or spacing * (n_snapshots - 1) > room:
        raise SnapshotError(
            f"{n_snapshots} snapshots {spacing} day(s) apart ending {last.date()} do not fit after "
            f"{start}: use fewer snapshots or a smaller spacing"
        )
    return [(last - pd.Timedelta(days=spacing * k)).to_pydatetime() for k in range(n_snapshots - 1, -1, -1)]


def snapshot_plan(data_start: datetime | str, last_event: datetime | str, n_snapshots: int = 8,
                  horizon_days: int = 30) -> tuple[list[datetime], pd.Timestamp]:
    """The simulator's plan: ``n_snapshots`` labelled snapshots (:func:`snapshot_dates`) plus the
    current, unlabelled one at ``data_end`` (the midnight after the last event), and ``data_end``."""
    data_end = _timestamp(last_event, "last_event").ceil("D")
    labelled = snapshot_dates(data_start, data_end, n_snapshots=n_snapshots, horizon_days=horizon_days)
    return [*labelled, data_end.to_pydatetime()], data_end


def snapshots_needed(cadence_days: int, horizon_days: int, n_valid: int) -> int:
    """Labelled snapshots a temporal split needs: ``n_valid`` for validation, the ones purged
    because their label reaches into validation, and enough training snapshots for one
    time-ordered CV fold (two before the test snapshot, purged by the horizon)."""
    steps = -(-int(horizon_days) // int(cadence_days))  # snapshots a label window spans
    return int(n_valid) + (steps - 1) + max(2, steps) + 1


def split_snapshots(snapshots: Sequence[Any], n_valid: int, horizon_days: int) -> tuple[list[Any], list[Any]]:
    """The temporal split on snapshot dates alone: ``(training, validation)`` snapshots.

    Validation is the last ``n_valid``; a training snapshot's label window (``horizon_days``) must
    end by the first validation snapshot (purge). Parameter checks (:mod:`churn.params`) judge a
    planned schedule with this same rule before anything runs; it lives here, not in
    :mod:`churn.modeling.train`, so that checking parameters loads no scikit-learn (0.9 CPU-s
    in every ``churn`` command).
    """
    ordered = sorted(snapshots)
    if n_valid < 1 or n_valid >= len(ordered):
        return [], ordered[-n_valid:] if n_valid >= 1 else []
    first_valid = pd.Timestamp(ordered[-n_valid])
    cutoff = first_valid - pd.Timedelta(days=horizon_days)  # label window must end by first_valid
    return [s for s in ordered if pd.Timestamp(s) <= cutoff], ordered[-n_valid:]


def snapshot_schedule(data_start: datetime | str, data_end: datetime | str, *, cadence_days: int,
                      horizon_days: int, longest_window_days: int, maturity_days: int | None = None,
                      n_valid: int = 2, count: int | None = None) -> list[datetime]:
    """Labelled snapshots every ``cadence_days``: the last one is the last midnight whose label
    matures by ``data_end``; the first one no earlier than ``data_start + longest window`` (so
    every feature window is fully observed). ``count`` keeps only the newest ones.

    Raises :class:`SnapshotError` with the numbers when fewer fit than a temporal split needs.
    """
    start, end = _timestamp(data_start, "data_start"), _timestamp(data_end, "data_end")
    if cadence_days < 1 or horizon_days < 1:
        raise SnapshotError("cadence_days and horizon_days must be at least 1")
    mature = int(maturity_days or horizon_days)
    last = (end - pd.Timedelta(days=mature)).floor("D")
    first = (start + pd.Timedelta(days=int(longest_window_days))).ceil("D")
    dates: list[datetime] = []
    at = last
    while at >= first and (count is None or len(dates) < count):
        dates.append(at.to_pydatetime())
        at -= pd.Timedelta(days=int(cadence_days))
    needed = snapshots_needed(cadence_days, horizon_days, n_valid)
    if len(dates) < needed:
        span = (end - start).days
        raise SnapshotError(
            f"not enough snapshots: the data spans {span} days ({start.date()} to {end.date()}); the first "
            f"snapshot must wait {longest_window_days} days for the longest feature window and the last one "
            f"{mature} days before the end for its label, which leaves room for {len(dates)} snapshot(s) "
            f"{cadence_days} days apart, but {needed} are needed ({n_valid} for validation and the rest for "
            f"training with a {horizon_days}-day horizon): use a shorter horizon, cadence or feature windows, "
            "or more data"
        )
    return sorted(dates)


def population_sql(snapshots: Sequence[datetime], horizon_days: int, data_end: datetime,
                   users_table: str = USERS_TABLE, entity: str = "user_id") -> str:
    """(entity, snapshot_at, label, label_mature) for every user active at each snapshot: the
    ``cancellation`` rule of :func:`churn.features.rules.population_label_sql` over ``users_table``."""
    if not TABLE_NAME.match(users_table) or not IDENT.match(entity):
        raise SnapshotError(f"invalid users table {users_table!r} or entity {entity!r}")
    stamps = [_timestamp(s, "snapshot").to_pydatetime() for s in snapshots]
    end = _timestamp(data_end, "data_end").to_pydatetime()
    return population_label_sql(LabelRule("cancellation"), stamps, horizon_days, end, entity, users_table)


def _earliest(con: duckdb.DuckDBPyConnection, spec: FeatureSpec) -> pd.Timestamp:
    parts = [f"SELECT min({quote(s.timestamp_column)}) AS t FROM {quote_table(s.table)}"
             for s in spec.sources.values()]
    return pd.Timestamp(con.execute(f"SELECT min(t) FROM ({' UNION ALL '.join(parts)})").fetchall()[0][0])


def _checked_snapshots(con: duckdb.DuckDBPyConnection, spec: FeatureSpec, snapshots: Sequence[datetime],
                       data_start: datetime | None, data_end: datetime) -> list[pd.Timestamp]:
    if not snapshots:
        raise SnapshotError("no snapshot dates given")
    stamps = sorted({_timestamp(s, "snapshot") for s in snapshots})
    start = _timestamp(data_start, "data_start") if data_start is not None else _earliest(con, spec)
    end = _timestamp(data_end, "data_end")
    outside = [str(s) for s in stamps if pd.isna(start) or not start < s <= end]
    if outside:
        raise SnapshotError(
            f"snapshot(s) {outside} outside the data range ({start}, {end}]: a snapshot needs data "
            "before it and cannot lie after the data end"
        )
    return stamps


def build_feature_frame(con: duckdb.DuckDBPyConnection, spec: FeatureSpec, snapshots: Sequence[datetime],
                        horizon_days: int, data_end: datetime, data_start: datetime | None = None,
                        users_table: str = USERS_TABLE, rule: LabelRule | None = None) -> pd.DataFrame:
    """Features, ``label`` (nullable Int8) and ``label_mature`` per (user, snapshot).

    ``data_start`` defaults to the earliest timestamp of the spec's sources. ``rule`` chooses
    the population and label (:mod:`churn.features.rules`; default: cancellation on
    ``users_table``). Rows are ordered by (snapshot_at, entity).
    """
    check_spec_against_database(con, spec)
    stamps = _checked_snapshots(con, spec, snapshots, data_start, data_end)
    entity = quote(spec.entity)
    features = compile_spine_sql(spec, f"SELECT {entity}, snapshot_at FROM _pit_population")
    if rule is None or rule.rule == "cancellation":
        population = population_sql(stamps, horizon_days, data_end, users_table, spec.entity)
    else:
        population = population_label_sql(rule, stamps, horizon_days, data_end, spec.entity)
    frame = con.execute(
        f"WITH _pit_population AS (\n{population}\n)\n"
        f"SELECT f.*, p.label, p.label_mature FROM (\n{features}\n) f\n"
        f"JOIN _pit_population p ON p.{entity} = f.{entity} AND p.snapshot_at = f.snapshot_at\n"
        f"ORDER BY f.snapshot_at, f.{entity}"
    ).df()
    frame["label"] = frame["label"].astype("Int8")
    frame["label_mature"] = frame["label_mature"].astype(bool)
    return frame


def label_frame(con: duckdb.DuckDBPyConnection, spec: FeatureSpec, snapshots: Sequence[datetime],
                horizon_days: int, data_end: datetime, rule: LabelRule | None = None) -> pd.DataFrame:
    """(entity, snapshot_at, label, label_mature) of each snapshot's population, without the
    features: what a daily cycle needs to fill in the labels that matured by ``data_end``."""
    stamps = sorted({_timestamp(s, "snapshot") for s in snapshots})
    if rule is None or rule.rule == "cancellation":
        sql = population_sql(stamps, horizon_days, data_end, USERS_TABLE, spec.entity)
    else:
        sql = population_label_sql(rule, stamps, horizon_days, data_end, spec.entity)
    frame = con.execute(sql).df()
    frame["label"] = frame["label"].astype("Int8")
    frame["label_mature"] = frame["label_mature"].astype(bool)
    return frame


def _entity_pairs(spec: FeatureSpec, entity_df: pd.DataFrame, timestamp_column: str) -> pd.DataFrame:
    missing = {spec.entity, timestamp_column} - set(entity_df.columns)
    if missing:
        raise SnapshotError(f"entity_df lacks column(s) {sorted(missing)}")
    stamps = pd.to_datetime(entity_df[timestamp_column])
    if stamps.isna().any():
        raise SnapshotError(f"entity_df has missing {timestamp_column!r} values")
    if stamps.dt.tz is not None:  # the raw tables hold naive UTC times
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return pd.DataFrame({spec.entity: entity_df[spec.entity].to_numpy(),
                         "snapshot_at": stamps.astype("datetime64[us]").to_numpy()})


def get_historical_features(con: duckdb.DuckDBPyConnection, spec: FeatureSpec, entity_df: pd.DataFrame,
                            timestamp_column: str = "event_timestamp") -> pd.DataFrame:
    """``entity_df`` (entity, ``timestamp_column``, ...) with the spec's features as of each row.

    Rows, order and extra columns of ``entity_df`` are kept; the same SQL as the offline build.
    """
    pairs = _entity_pairs(spec, entity_df, timestamp_column)
    name = f"entity_df_{uuid.uuid4().hex}"
    con.register(name, pairs)
    try:
        features = con.execute(compile_features_sql(spec, name, con)).df()
    finally:
        con.unregister(name)
    features["snapshot_at"] = features["snapshot_at"].astype("datetime64[us]")
    merged = pairs.merge(features, how="left", on=[spec.entity, "snapshot_at"], validate="many_to_one")
    values = merged[spec.feature_names].set_axis(entity_df.index)
    kept = entity_df.drop(columns=[c for c in spec.feature_names if c in entity_df])
    return pd.concat([kept, values], axis=1)
