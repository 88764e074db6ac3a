"""Materialize: the offline store's latest vectors into the online store, the one way it is done.

Used by the publish-online phase (notebook 06), the API's ``POST /cache/sync`` and the
benchmarks. The online store's keys are namespaced by the feature spec's key
(``FeatureSpec.key``, ``name:version``), so two specs that share a version never share keys.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def namespace(warehouse: Warehouse, version: str | None = None) -> str:
    """The online-store namespace of the offline store's feature spec: its ``FeatureSpec.key``.

    ``version``: the feature-set version a model was trained on, when it may differ from the one
    in the offline store (the spec's name stays, the version is the model's).
    """
    spec = offline.feature_spec(warehouse)
    stored_version, _ = offline.feature_set(warehouse)
    name = spec.get("name")
    if not name:  # features written without their spec: the version alone, as keys were before
        return version or stored_version
    return f"{name}:{version or stored_version}"


def online_store(
    warehouse: Warehouse,
    client: RedisClient,
    ttl_seconds: int | None = None,
    aclient: AsyncRedisClient | None = None,
) -> OnlineStore:
    """The online store of the offline store's feature set (its namespace and feature order)."""
    _, features = offline.feature_set(warehouse)
    return OnlineStore(client, namespace(warehouse), features, ttl_seconds=ttl_seconds, aclient=aclient)


def materialize(warehouse: Warehouse, store: OnlineStore) -> Materialized:
    """Replace everything ``store`` holds with each current user's latest offline vector.

    The vectors are read before anything is deleted, so a failed read leaves Redis as it was;
    users who churned since the last run do not linger. The feature order is recorded for readers.
    """
    latest = offline.latest_vectors(warehouse)
    lacking = [f for f in store.features if f not in latest.columns]
    if lacking:
        raise WarehouseError(f"the offline store lacks feature(s) {lacking} of online store {store.prefix}")
    latest = latest[["user_id", "snapshot_at", *store.features]]
    removed = store.clear()
    written = store.online_write_batch(latest)
    return Materialized(removed=removed, written=written, latest=latest)
