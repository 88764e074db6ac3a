"""Materialize: the offline store's latest vectors into the online store, the one way it is done.

Used by the publish-online phase (notebook 06), the API's ``POST /cache/sync`` and the
benchmarks. The online store's keys are namespaced by the feature spec's key
(``FeatureSpec.key``, ``name:version``), so two specs that share a version never share keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from churn.store import offline
from churn.store.online import AsyncRedisClient, OnlineStore, RedisClient, WriteStats
from churn.store.warehouse import Warehouse, WarehouseError


@dataclass(frozen=True)
class Materialized:
    """What :func:`materialize` did: vectors removed and written, and the vectors themselves."""

    removed: int
    written: WriteStats
    latest: pd.DataFrame
    unchanged: int = 0


def namespace(warehouse: Warehouse, version: str | None = None) -> str:
    """The online-store namespace of the offline store's feature spec: its ``FeatureSpec.key``.

    ``version``: the feature-set version a model was trained on, when it may differ from the one
    in the offline store (the spec's name stays, the version is the model's).
    """
    stored_version, _, spec = offline.feature_set_record(warehouse)
    return _namespace(spec, version or stored_version)


def _namespace(spec: dict[str, Any], version: str) -> str:
    name = spec.get("name")
    if not name:  # features written without their spec: the version alone, as keys were before
        return version
    return f"{name}:{version}"


def online_store(
    warehouse: Warehouse,
    client: RedisClient,
    ttl_seconds: int | None = None,
    aclient: AsyncRedisClient | None = None,
) -> OnlineStore:
    """The online store of the offline store's feature set (its namespace and feature order),
    from one read of the feature set's record."""
    version, features, spec = offline.feature_set_record(warehouse)
    return OnlineStore(client, _namespace(spec, version), features, ttl_seconds=ttl_seconds, aclient=aclient)


def materialize(warehouse: Warehouse, store: OnlineStore, changed_only: bool = False) -> Materialized:
    """Replace everything ``store`` holds with each current user's latest offline vector.

    The vectors are read before anything is deleted, so a failed read leaves Redis as it was;
    users who churned since the last run do not linger. The feature order is recorded for readers.
    ``changed_only`` (a daily cycle): write only the users whose vector changed and delete those
    no longer current (:meth:`OnlineStore.online_sync`) instead of rewriting everything.
    """
    latest = offline.latest_vectors(warehouse)
    lacking = [f for f in store.features if f not in latest.columns]
    if lacking:
        raise WarehouseError(f"the offline store lacks feature(s) {lacking} of online store {store.prefix}")
    latest = latest[["user_id", "snapshot_at", *store.features]]
    if changed_only:
        written, unchanged, removed = store.online_sync(latest)
        return Materialized(removed=removed, written=written, latest=latest, unchanged=unchanged)
    removed = store.clear()
    written = store.online_write_batch(latest)
    return Materialized(removed=removed, written=written, latest=latest)
