"""The offline store: point-in-time feature vectors in ``ml_pipeline.features``.

One row per (user_id, snapshot_at) with every feature of the spec, the label and whether the
label has matured. ``ml_pipeline.feature_sets`` records the spec (version, feature order, the spec
itself) that produced the table, so readers can refuse a mismatched feature order.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from churn.store import tables
from churn.store.warehouse import Warehouse, WarehouseError

if TYPE_CHECKING:
    from churn.features.rules import LabelRule
    from churn.features.spec import FeatureSpec

FEATURES_TABLE = tables.FEATURES.name
FEATURE_SETS_TABLE = tables.FEATURE_SETS.name


def write_features(warehouse: Warehouse, frame: pd.DataFrame, feature_set: str, features: list[str],
                   spec: dict[str, Any]) -> int:
    """Replace the offline store with ``frame`` and record its feature set, in one transaction."""
    missing = [c for c in ["user_id", "snapshot_at", *features, "label", "label_mature"] if c not in frame]
    if missing:
        raise WarehouseError(f"feature frame lacks column(s) {missing}")
    meta = pd.DataFrame({"feature_set": [feature_set], "features": [json.dumps(features)],
                         "spec": [json.dumps(spec, default=str)], "rows": [len(frame)],
                         "written_at": [pd.Timestamp.now(tz="UTC").tz_localize(None)]})
    with warehouse.writer() as con, warehouse.transaction(con):
        Warehouse.replace_table(con, FEATURES_TABLE, frame, tables.FEATURES)
        Warehouse.replace_table(con, FEATURE_SETS_TABLE, meta, tables.FEATURE_SETS)
    return len(frame)


def feature_set_record(warehouse: Warehouse) -> tuple[str, list[str], dict[str, Any]]:
    """(version, feature order, spec as plain data) of the offline store, in one read: the one
    reader of ``ml_pipeline.feature_sets``. The spec is {} when none was recorded."""
    with warehouse.reader() as con:
        meta = Warehouse.read_table(con, FEATURE_SETS_TABLE)
    spec = json.loads(meta["spec"].iloc[0] or "{}") if "spec" in meta else {}
    return str(meta["feature_set"].iloc[0]), json.loads(meta["features"].iloc[0]), spec


def feature_set(warehouse: Warehouse) -> tuple[str, list[str]]:
    """(version, feature order) of the features currently in the offline store."""
    version, features, _ = feature_set_record(warehouse)
    return version, features


def feature_spec(warehouse: Warehouse) -> dict[str, Any]:
    """The feature spec (plain data) that produced the offline store; {} when none was recorded."""
    return feature_set_record(warehouse)[2]


def load_feature_spec(warehouse: Warehouse) -> FeatureSpec:
    """The validated :class:`~churn.features.FeatureSpec` that produced the offline store."""
    from churn.features import load_spec

    return load_spec(feature_spec(warehouse))


def read_features(warehouse: Warehouse, snapshots: list[Any] | None = None) -> pd.DataFrame:
    """The offline store (only the vectors of ``snapshots``, if given), ordered by snapshot then
    user. A daily cycle reads what it changed, not the history."""
    where, params = "", []
    if snapshots is not None:
        where = "WHERE snapshot_at IN (SELECT unnest(?::TIMESTAMP[]))"
        params = [[pd.Timestamp(t).to_pydatetime() for t in snapshots]]
    with warehouse.reader() as con:
        Warehouse.read_table(con, FEATURE_SETS_TABLE)  # clear error before any build-features
        return con.execute(f"SELECT * FROM {FEATURES_TABLE} {where} ORDER BY snapshot_at, user_id", params).df()


def matured_labels(warehouse: Warehouse) -> pd.DataFrame:
    """Keys and label of every vector whose label has matured (the label checks' input), without
    the feature columns."""
    with warehouse.reader() as con:
        return con.execute(
            f"SELECT user_id, snapshot_at, label, label_mature FROM {FEATURES_TABLE} WHERE label_mature "
            "ORDER BY snapshot_at, user_id"
        ).df()


def latest_vectors(warehouse: Warehouse, user_ids: list[int] | np.ndarray | None = None) -> pd.DataFrame:
    """Each user's vector at the latest snapshot (optionally only for ``user_ids``)."""
    where = ""
    params: list[Any] = []
    if user_ids is not None:
        where = "AND user_id IN (SELECT unnest(?::BIGINT[]))"
        params = [[int(u) for u in user_ids]]
    sql = (f"SELECT * FROM {FEATURES_TABLE} WHERE snapshot_at = (SELECT max(snapshot_at) "
           f"FROM {FEATURES_TABLE}) {where} ORDER BY user_id")
    with warehouse.reader() as con:
        if not Warehouse.table_exists(con, FEATURES_TABLE):
            raise WarehouseError(f"{FEATURES_TABLE} does not exist: run the build-features phase")
        return con.execute(sql, params).df()


def snapshot_pair(warehouse: Warehouse, columns: list[str], reference_at: pd.Timestamp, day: Any) -> pd.DataFrame:
    """``snapshot_at`` and ``columns`` of two snapshots: ``reference_at`` and the newest on or
    before ``day`` (a monitoring run's two windows, not the whole store); empty before build-features."""
    names = ", ".join(f'"{c}"' for c in ["snapshot_at", *columns])
    return warehouse.read_if_exists(
        FEATURES_TABLE,
        f"SELECT {names} FROM {FEATURES_TABLE} WHERE snapshot_at = ? OR snapshot_at = "
        f"(SELECT max(snapshot_at) FROM {FEATURES_TABLE} WHERE CAST(snapshot_at AS DATE) <= ?)",
        [pd.Timestamp(reference_at).to_pydatetime(), day],
    )


def snapshot_counts(warehouse: Warehouse) -> pd.DataFrame:
    """Vectors, labelled vectors, churn labels and churn rate per snapshot (for reports)."""
    with warehouse.reader() as con:
        return con.execute(
            f"""SELECT snapshot_at, count(*) AS vectors, count(*) FILTER (WHERE label_mature) AS labelled,
                       round(avg(label::DOUBLE) FILTER (WHERE label_mature), 4) AS churn_rate,
                       sum(label::BIGINT) AS churn_labels
                FROM {FEATURES_TABLE} GROUP BY 1 ORDER BY 1"""
        ).df()


def compute_features(warehouse: Warehouse, spec: FeatureSpec, snapshots: list[Any], horizon_days: int,
                     data_end: pd.Timestamp, rule: LabelRule | None = None) -> pd.DataFrame:
    """Point-in-time vectors for ``snapshots`` from the raw tables (read-only connection);
    ``rule`` chooses the population and label (default: cancellation)."""
    from churn.features import build_feature_frame

    with warehouse.reader() as con:
        return build_feature_frame(con, spec, snapshots, horizon_days, data_end, rule=rule)


def stored_snapshots(warehouse: Warehouse) -> pd.DataFrame:
    """(snapshot_at, label_mature) per snapshot in the offline store; empty without one."""
    with warehouse.reader() as con:
        if not Warehouse.table_exists(con, FEATURES_TABLE) or not Warehouse.table_exists(con, FEATURE_SETS_TABLE):
            return pd.DataFrame(columns=["snapshot_at", "label_mature"])
        return con.execute(
            f"SELECT snapshot_at, bool_and(label_mature) AS label_mature FROM {FEATURES_TABLE} GROUP BY 1 ORDER BY 1"
        ).df()


def extends_loaded_history(warehouse: Warehouse) -> bool:
    """Whether the offline store was computed on the raw tables as they are loaded now: written
    after their last full load (a cycle's appends since then only add rows at the end), so a
    daily cycle may add one snapshot to it. False without an offline store, or when the raw
    tables were reloaded since (another seed, another data set, an initial load): then every
    snapshot must be computed again. Synthetic and own data alike (``raw_data.dataset`` records
    the full load's time; appends keep it)."""
    from churn.store import raw

    info = raw.dataset_info(warehouse)
    with warehouse.reader() as con:
        if info is None or not Warehouse.table_exists(con, FEATURE_SETS_TABLE):
            return False
        written = con.execute(f"SELECT max(written_at) FROM {FEATURE_SETS_TABLE}").fetchall()[0][0]
    return written is not None and pd.Timestamp(written) > pd.Timestamp(info["loaded_at"])


def update_features(warehouse: Warehouse, spec: FeatureSpec, as_of: pd.Timestamp, horizon_days: int,
                    rule: LabelRule, expected_set: str) -> dict[str, Any]:
    """A daily cycle's offline-store update, in one transaction: the vectors of the snapshot at
    ``as_of`` (replaced if it was computed before) and the labels of older snapshots whose
    horizon has matured by ``as_of`` (only ``label`` and ``label_mature`` change: every other
    column, and every older snapshot whose label was known, stays byte-identical).

    Refused when the store was built with another feature set (a full build must recompute it).

    Returns:
        ``{"snapshot", "vectors", "matured_snapshots", "matured" (their times), "matured_rows"}``.
    """
    from churn.features import build_feature_frame
    from churn.features.historical import label_frame

    stored, _ = feature_set(warehouse)
    if stored != expected_set:
        raise WarehouseError(
            f"the offline store holds feature set {stored}, this cycle computes {expected_set}: "
            "a changed spec needs a full build (make build)"
        )
    maturity = pd.Timedelta(days=rule.maturity_days(int(horizon_days)))
    snaps = stored_snapshots(warehouse)
    due = [pd.Timestamp(t) for t, done in zip(snaps.snapshot_at, snaps.label_mature, strict=True)
           if not done and pd.Timestamp(t) < as_of and pd.Timestamp(t) + maturity <= as_of]
    with warehouse.reader() as con:
        frame = build_feature_frame(con, spec, [as_of.to_pydatetime()], horizon_days, as_of.to_pydatetime(), rule=rule)
        labels = label_frame(con, spec, [t.to_pydatetime() for t in due], horizon_days, as_of.to_pydatetime(), rule) \
            if due else None
    with warehouse.writer() as con, warehouse.transaction(con):
        con.execute(f"DELETE FROM {FEATURES_TABLE} WHERE snapshot_at = ?", [as_of.to_pydatetime()])
        Warehouse.append(con, FEATURES_TABLE, frame)
        if labels is not None and len(labels):
            entity = spec.entity
            con.register("_matured", labels)
            try:
                con.execute(
                    f"UPDATE {FEATURES_TABLE} AS f SET label = m.label, label_mature = m.label_mature FROM _matured m "
                    f"WHERE f.{entity} = m.{entity} AND f.snapshot_at = m.snapshot_at AND NOT f.label_mature"
                )
            finally:
                con.unregister("_matured")
        con.execute(f"UPDATE {FEATURE_SETS_TABLE} SET rows = (SELECT count(*) FROM {FEATURES_TABLE}), written_at = ?",
                    [pd.Timestamp.now(tz="UTC").tz_localize(None).to_pydatetime()])
    return {"snapshot": as_of, "vectors": len(frame), "matured_snapshots": len(due), "matured": due,
            "matured_rows": 0 if labels is None else int(labels["label_mature"].sum())}


PREDICTIONS_TABLE = tables.PREDICTIONS.name


def write_predictions(warehouse: Warehouse, frame: pd.DataFrame) -> int:
    """Store a scoring run; a re-run of the same model on the same snapshot replaces its rows."""
    with warehouse.writer() as con, warehouse.transaction(con):
        tables.create(con, tables.PREDICTIONS)
        for (name, version, as_of), _ in frame.groupby(["model_name", "model_version", "features_as_of"]):
            con.execute(f"DELETE FROM {PREDICTIONS_TABLE} WHERE model_name = ? AND model_version = ? "
                        "AND features_as_of = ?", [name, int(version), as_of])  # type: ignore[call-overload]
        Warehouse.append(con, PREDICTIONS_TABLE, frame)
    return len(frame)


def read_predictions(warehouse: Warehouse, latest_only: bool = True) -> pd.DataFrame:
    """Stored predictions (by default only the latest scoring run)."""
    where = f"WHERE scored_at = (SELECT max(scored_at) FROM {PREDICTIONS_TABLE})" if latest_only else ""
    with warehouse.reader() as con:
        if not Warehouse.table_exists(con, PREDICTIONS_TABLE):
            raise WarehouseError(f"{PREDICTIONS_TABLE} does not exist: run the score-batch phase")
        return con.execute(f"SELECT * FROM {PREDICTIONS_TABLE} {where} ORDER BY user_id").df()


def features_fingerprint(warehouse: Warehouse) -> str:
    """Content fingerprint of the offline store (recorded with every model trained on it)."""
    with warehouse.reader() as con:
        return Warehouse.content_hash(con, FEATURES_TABLE)
