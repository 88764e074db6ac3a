"""Feature vectors for the API: the online store first, the offline store on a miss.

A miss is read from the warehouse snapshot (``latest_vectors``) and written back to Redis, so the
next request for that user is a hit. When Redis is unreachable every vector comes from the
offline store and Redis is skipped for ``retry_seconds`` (a dead server must not add a timeout to
every request). Hit/miss counts are kept in process and added to the store's shared counters off
the request path, so a cached prediction is one Redis round trip.

A bad value under one key (garbage, another length, NaN, an impossible as-of time) is a miss for
that key only: it is answered from the offline store, rewritten (or deleted when the offline store
lacks the user) and counted as ``bad_values``; Redis stays in use for everyone else. An offline
vector that is not finite is never scored: the request fails with a 500 that names the user.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import redis
import redis.asyncio
from starlette.concurrency import run_in_threadpool

from churn.serving.errors import InvalidFeatureVector, ServiceUnavailable, scrub
from churn.serving.latest import UNKNOWN, LatestVectors
from churn.serving.model import LoadedModel
from churn.store import offline
from churn.store.online import AsyncRedisClient, OnlineStore, OnlineStoreError, RedisClient, queue_counts
from churn.store.warehouse import Warehouse, WarehouseError

log = logging.getLogger("churn.serving")


@dataclass
class Vectors:
    """Vectors for the requested ids, in request order (duplicates kept)."""

    user_ids: np.ndarray
    found: np.ndarray  # in either store
    cached: np.ndarray  # served from Redis
    snapshot_at: np.ndarray  # datetime64[us] (the time each vector describes), NaT where not found
    values: np.ndarray  # (n, n_features) float64
    bad: np.ndarray | None = None  # Redis held a value that is not a vector (rewritten on fill)

    @classmethod
    def empty(cls, user_ids: np.ndarray, n_features: int) -> Vectors:
        n = len(user_ids)
        return cls(user_ids, np.zeros(n, bool), np.zeros(n, bool),
                   np.full(n, np.datetime64("NaT"), "datetime64[us]"), np.full((n, n_features), np.nan))

    def fill(self, frame: pd.DataFrame, features: list[str]) -> None:
        """Take the still-missing users' vectors from an offline ``frame`` (one row per user)."""
        todo = np.flatnonzero(~self.found)
        rows = pd.Index(frame["user_id"].to_numpy(np.int64)).get_indexer(self.user_ids[todo])
        hit, rows = todo[rows >= 0], rows[rows >= 0]
        self.values[hit] = frame[features].to_numpy(np.float64)[rows]
        self.snapshot_at[hit] = frame["snapshot_at"].to_numpy("datetime64[us]")[rows]
        self.found[hit] = True


@dataclass(frozen=True)
class Hit:
    """One user's vector straight from Redis (the single-prediction fast path: no arrays)."""

    user_id: int
    snapshot_at_us: int  # the time the vector describes, microseconds since the epoch, UTC
    values: tuple[float, ...]


def check_offline(frame: pd.DataFrame, features: list[str]) -> None:
    """Refuse offline vectors that cannot be scored (NaN/inf features, no snapshot time)."""
    bad = ~np.isfinite(frame[features].to_numpy(np.float64)).all(axis=1) | frame["snapshot_at"].isna().to_numpy()
    if bad.any():
        users = frame["user_id"].to_numpy()[bad][:5].tolist()
        raise InvalidFeatureVector(f"the offline store holds {int(bad.sum())} vector(s) with missing or "
                                   f"non-finite values (users {users}): rebuild the features")


class FeatureSource:
    """Online-first feature lookup with offline fallback, refill and Redis health tracking."""

    def __init__(self, client: RedisClient, warehouse: Warehouse, retry_seconds: float = 1.0,
                 aclient: AsyncRedisClient | None = None, index: bool = False) -> None:
        self.client = client  # background work and threads (refill, sync, counters, ping)
        self.aclient = aclient  # the request path, on the event loop
        # the offline fallback's in-memory index (the API keeps one; a one-shot CLI call does not)
        self.latest = LatestVectors(warehouse) if index else None
        self.warehouse = warehouse
        self.retry_seconds = retry_seconds
        self.redis_error: str | None = None
        self.order_ok: dict[str, bool] = {}  # store prefix -> Redis holds our feature order
        self._down_until = 0.0
        self._stores: dict[tuple, OnlineStore] = {}
        self._counts: dict[str, list[int]] = {}  # prefix -> [hits, misses, bad] not yet in Redis
        self._lock = threading.Lock()

    def store(self, namespace: str, features: list[str]) -> OnlineStore:
        key = (namespace, tuple(features))
        if key not in self._stores:
            self._stores[key] = OnlineStore(self.client, namespace, features, aclient=self.aclient)
        return self._stores[key]

    def store_for(self, model: LoadedModel) -> OnlineStore:
        return self.store(model.namespace, model.features)

    # -- lookups ---------------------------------------------------------------------------------
    def lookup(self, model: LoadedModel, user_ids: list[int] | np.ndarray, use_cache: bool = True) -> Vectors:
        """Vectors for ``user_ids``: Redis first (unless ``use_cache`` is off), then the warehouse."""
        vectors = self.read_cached(model, user_ids, use_cache)
        if not vectors.found.all():
            self.read_offline(model, vectors, refill=use_cache)
        return vectors

    async def alookup(self, model: LoadedModel, user_ids: list[int], use_cache: bool = True) -> Vectors:
        """``lookup`` for the event loop: Redis through the asyncio client (a hung server holds only
        the requests waiting for it, up to its timeout, and then trips the breaker), DuckDB in a thread."""
        if self.aclient is None:
            vectors = self.read_cached(model, user_ids, use_cache)
        else:
            vectors = await self.aread_cached(model, user_ids, use_cache)
        if not vectors.found.all():
            await run_in_threadpool(self.read_offline, model, vectors, use_cache)
        return vectors

    async def alookup_one(self, model: LoadedModel, user_id: int) -> Hit | Vectors:
        """One user: a valid Redis value as a :class:`Hit` (one ``GET``, decoded without numpy);
        anything else (a miss, a bad value, Redis down or skipped) goes the general way, reusing
        the value already read, and comes back as :class:`Vectors`."""
        store = self.store_for(model)
        if self.aclient is None or not self.cache_usable(store):
            return await self.alookup(model, [user_id])
        try:
            raw = await store.aonline_get(user_id)
        except OnlineStoreError as exc:
            self.mark_down(exc)
            vectors = Vectors.empty(np.array([user_id], dtype=np.int64), len(model.features))
        else:
            hit = store.decode_one(raw)
            if hit is not None:
                self._count(store.prefix, 1, 0)
                return Hit(user_id, *hit)
            ids = np.array([user_id], dtype=np.int64)
            vectors = self._vectors(store, ids, store.decode(ids, [raw]))
        await run_in_threadpool(self.read_offline, model, vectors, True)
        return vectors

    def read_cached(self, model: LoadedModel, user_ids, use_cache: bool = True) -> Vectors:
        """One MGET for all ids; an empty result when Redis is skipped or unreachable."""
        ids = np.asarray(user_ids, dtype=np.int64)
        store = self.store_for(model)
        if not (use_cache and self.cache_usable(store)):
            return Vectors.empty(ids, len(model.features))
        try:
            read = store.online_read(ids, count=False)
        except OnlineStoreError as exc:
            self.mark_down(exc)
            return Vectors.empty(ids, len(model.features))
        return self._vectors(store, ids, read)

    async def aread_cached(self, model: LoadedModel, user_ids, use_cache: bool = True) -> Vectors:
        """``read_cached`` on the asyncio client, with the same breaker."""
        ids = np.asarray(user_ids, dtype=np.int64)
        store = self.store_for(model)
        if not (use_cache and self.cache_usable(store)):
            return Vectors.empty(ids, len(model.features))
        try:
            read = await store.aonline_read(ids)
        except OnlineStoreError as exc:
            self.mark_down(exc)
            return Vectors.empty(ids, len(model.features))
        return self._vectors(store, ids, read)

    def _vectors(self, store: OnlineStore, ids: np.ndarray, read) -> Vectors:
        hits = int(read.found.sum())
        bad = read.bad_ids
        self._count(store.prefix, hits, len(ids) - hits, len(bad))
        if bad:
            log.warning("online store %s: %d bad value(s) (users %s) treated as misses and rewritten",
                        store.prefix, len(bad), bad[:5])
        return Vectors(ids, read.found.copy(), read.found, read.snapshot_at, read.values, bad=read.bad)

    def read_offline(self, model: LoadedModel, vectors: Vectors, refill: bool = True) -> None:
        """Fill the missing vectors from the warehouse snapshot and (``refill``) write them to Redis."""
        missing = np.unique(vectors.user_ids[~vectors.found])
        frame = None if self.latest is None else self.latest.lookup(missing, self.snapshot_stamp())
        if frame is None:  # no index, not yet the snapshot on disk, or too large: a DuckDB query
            frame = offline.latest_vectors(self.warehouse, missing)
        lacking = [f for f in model.features if f not in frame.columns]
        if lacking:
            raise ServiceUnavailable(f"the offline store lacks feature(s) {lacking} that model "
                                     f"v{model.version} needs: rebuild the features")
        check_offline(frame, model.features)
        vectors.fill(frame, model.features)
        store = self.store_for(model)
        orphans = np.empty(0, dtype=np.int64)  # bad values of users the offline store does not know: delete
        if vectors.bad is not None and vectors.bad.any():
            orphans = np.setdiff1d(vectors.user_ids[vectors.bad], frame["user_id"].to_numpy(np.int64))
        if (refill or len(orphans)) and self.cache_usable(store):
            try:
                if refill and len(frame):
                    store.online_write_batch(frame[["user_id", "snapshot_at", *model.features]])
                store.online_delete(orphans)
            except OnlineStoreError as exc:
                self.mark_down(exc)

    def refresh_index(self) -> None:
        """Index a newly published snapshot (background: startup and every tick, never a request);
        a failure keeps the old index, which lookups then skip for DuckDB."""
        if self.latest is None:
            return
        try:
            if self.latest.refresh(self.snapshot_stamp()):
                log.info("latest-vector index loaded for snapshot %s", self.latest.stamp)
        except (WarehouseError, duckdb.Error, OSError) as exc:
            log.warning("latest-vector index not refreshed (fallbacks query DuckDB): %s", scrub(str(exc)))

    def absent_reason(self, user_id: int) -> Any:
        """Why ``user_id`` has no vector, from the index (``latest.UNKNOWN`` when it cannot say)."""
        return UNKNOWN if self.latest is None else self.latest.absent_reason(user_id, self.snapshot_stamp())

    def snapshot_stamp(self) -> tuple[int, int, int] | None:
        """Identity of the warehouse file readers open (see ``Warehouse.file_stamp``)."""
        return self.warehouse.file_stamp()

    # -- Redis health ----------------------------------------------------------------------------
    def redis_usable(self) -> bool:
        """False for ``retry_seconds`` after a failure (the circuit breaker is open)."""
        return time.monotonic() >= self._down_until

    def cache_usable(self, store: OnlineStore) -> bool:
        return self.redis_usable() and self.order_ok.get(store.prefix, True)

    def mark_down(self, exc: Exception) -> None:
        self._down_until = time.monotonic() + self.retry_seconds
        if self.redis_error is None:  # log the transition, not every retry
            log.warning("online store unreachable, serving from the offline store: %s", exc)
        self.redis_error = scrub(str(exc))

    def ping(self) -> bool:
        """True when Redis answers now (and then stop skipping it)."""
        try:
            self.client.ping()
        except (redis.RedisError, OSError) as exc:
            self.mark_down(exc)
            return False
        if self.redis_error is not None:
            log.warning("online store reachable again")
        self._down_until, self.redis_error = 0.0, None
        return True

    def check_order(self, model: LoadedModel) -> None:
        """Refuse a Redis written with another feature order than the model's (no skew)."""
        store = self.store_for(model)
        if not self.ping():
            return  # unknown until Redis is back
        try:
            store.check_feature_order()
            self.order_ok[store.prefix] = True
        except OnlineStoreError as exc:
            self.order_ok[store.prefix] = False
            log.error("online store not used: %s", exc)

    # -- hit/miss counters -----------------------------------------------------------------------
    def _count(self, prefix: str, hits: int, misses: int, bad: int = 0) -> None:
        with self._lock:
            pending = self._counts.setdefault(prefix, [0, 0, 0])
            pending[0] += hits
            pending[1] += misses
            pending[2] += bad

    def flush_counts(self) -> None:
        """Add this process's pending hits/misses to the store's shared counters in Redis."""
        with self._lock:
            pending, self._counts = self._counts, {}
        if not pending:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            for prefix, counts in pending.items():
                queue_counts(pipe, prefix, *counts)
            pipe.execute()
        except (redis.RedisError, OSError):
            for prefix, counts in pending.items():  # keep them for the next flush
                self._count(prefix, *counts)

    def forget_counts(self, prefix: str) -> None:
        with self._lock:
            self._counts.pop(prefix, None)
