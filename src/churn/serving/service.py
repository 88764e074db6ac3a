"""Everything a request needs, wired once per process: model, features, warehouse, registry."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from typing import Any

import duckdb
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from churn.registry import ModelRegistry
from churn.serving import queries, scoring
from churn.serving.errors import scrub
from churn.serving.features import FeatureSource, Hit
from churn.serving.latest import UNKNOWN
from churn.serving.model import ModelHolder
from churn.serving.settings import Settings
from churn.store import materialize, offline
from churn.store.online import (
    AsyncRedisClient,
    OnlineStore,
    OnlineStoreError,
    RedisClient,
    async_client_from_url,
    client_from_url,
)
from churn.store.redis_server import EmbeddedRedis, RedisUnavailableError, resolve_redis_url
from churn.store.warehouse import Warehouse, WarehouseError

log = logging.getLogger("churn.serving")


def redis_url(settings: Settings) -> str:
    """``REDIS_URL``, else the embedded server (workers starting at once share one daemon).
    An unreachable Redis is not fatal: the API starts degraded and serves from the offline store."""
    try:
        return resolve_redis_url(settings.redis_url, settings.data_dir)
    except (RedisUnavailableError, OSError) as exc:
        log.warning("starting without Redis (offline store only until it answers): %s", exc)
        return settings.redis_url or EmbeddedRedis(settings.data_dir).url


def redis_client(url: str, timeout: float) -> RedisClient:
    """One client (one connection pool) per process; no retries: a failure falls back at once."""
    return client_from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0))


def async_redis_client(url: str, timeout: float) -> AsyncRedisClient:
    """The request path's client (redis.asyncio), with the same timeouts and no retries."""
    return async_client_from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                 retry=AsyncRetry(NoBackoff(), 0))


class ServingState:
    """The API's long-lived objects; handlers reach them through ``deps.State``."""

    def __init__(self, settings: Settings, client: RedisClient, aclient: AsyncRedisClient | None = None,
                 index: bool = False) -> None:
        self.settings = settings
        self.warehouse = Warehouse(settings.warehouse_path)
        self.registry = ModelRegistry(self.warehouse, settings.models_path)
        self.models = ModelHolder(self.registry, settings.model_name)
        self.features = FeatureSource(client, self.warehouse, settings.redis_retry_seconds, aclient=aclient,
                                      index=index)
        self.started = time.monotonic()
        self._ab_cache: OrderedDict[str, tuple[Any, dict[str, Any]]] = OrderedDict()  # name -> (stamp, view)
        self._ab_locks: dict[str, threading.Lock] = {}
        self._ab_guard = threading.Lock()

    @classmethod
    def open(cls, settings: Settings, index: bool = False) -> ServingState:
        """Wire everything and load the model (``index``: keep the latest-vector index, as the
        long-running API does; a one-shot CLI call queries DuckDB instead of loading it)."""
        url, timeout = redis_url(settings), settings.redis_timeout_seconds
        state = cls(settings, redis_client(url, timeout), async_redis_client(url, timeout), index=index)
        state.tick()
        return state

    def tick(self) -> None:
        """Background duty, every few seconds: reload a changed production model, index a newly
        published snapshot, re-check the online store's feature order, publish hit/miss counts."""
        self.models.refresh()
        self.features.refresh_index()
        if self.models.current is not None:
            self.features.check_order(self.models.current)
        self.features.flush_counts()

    def close(self) -> None:
        self.features.flush_counts()
        self.features.client.close()

    async def aclose(self) -> None:
        if self.features.aclient is not None:
            await self.features.aclient.aclose()

    # -- predictions -----------------------------------------------------------------------------
    async def predict(self, user_ids: list[int], use_cache: bool = True) -> dict[str, Any]:
        """Scores for ``user_ids`` with the loaded production model (see ``BatchOut``)."""
        model = self.models.require()
        vectors = await self.features.alookup(model, user_ids, use_cache)
        predictions, not_found = scoring.score(model, vectors)
        return {"model_version": model.version, "requested": len(user_ids), "band_cutoffs": scoring.band_cutoffs(model),
                "predictions": predictions, "not_found": not_found}

    async def predict_one(self, user_id: int) -> dict[str, Any] | None:
        """One user's prediction (``PredictionDetailOut``), None when the user is unknown. A Redis
        hit is scored without arrays (most of a single prediction was numpy's per-call overhead)."""
        model = self.models.require()
        got = await self.features.alookup_one(model, user_id)
        if isinstance(got, Hit):
            prediction = scoring.score_one(model, got)
        else:
            predictions, _ = scoring.score(model, got)
            if not predictions:
                return None
            prediction = predictions[0]
        return {**prediction, "band_cutoffs": scoring.band_cutoffs(model)}

    async def explain(self, user_id: int) -> dict[str, Any] | None:
        """The exact logit decomposition for one user, None when the user is unknown."""
        model = self.models.require()
        vectors = await self.features.alookup(model, [user_id])
        return scoring.explain(model, vectors) if vectors.found[0] else None

    def not_found_detail(self, user_id: int) -> str:
        """The 404 message: whether the user churned, never existed, or has no vector yet (from the
        latest-vector index; DuckDB only when the index does not hold the snapshot on disk)."""
        reason = self.features.absent_reason(user_id)
        if reason is UNKNOWN:
            reason = queries.absent_user_reason(self.warehouse, user_id)
        return f"user {user_id} not found in the online or offline store" + (f": {reason}" if reason else "")

    # -- dashboard -------------------------------------------------------------------------------
    AB_CACHE_SIZE = 64

    def ab_test(self, test_name: str) -> dict[str, Any] | None:
        """One A/B test's analysis (Monte Carlo, quadrature, mSPRT: ~1 s), computed once per test
        and warehouse snapshot: any write (new outcomes, a registry change) publishes a new
        snapshot file and so a fresh analysis. Concurrent requests for one test compute it once."""
        with self._ab_guard:
            lock = self._ab_locks.setdefault(test_name, threading.Lock())
        with lock:
            stamp = self.features.snapshot_stamp()  # identity of the file readers open
            cached = self._ab_cache.get(test_name)
            if cached is not None and stamp is not None and cached[0] == stamp:
                with self._ab_guard:
                    self._ab_cache.move_to_end(test_name)
                return cached[1]
            view = queries.ab_test(self.warehouse, self.registry, self.settings.model_name, test_name)
            with self._ab_guard:
                if view is None:  # unknown names are not kept (they would grow the cache)
                    self._ab_cache.pop(test_name, None)
                    self._ab_locks.pop(test_name, None)
                    return None
                self._ab_cache[test_name] = (stamp, view)
                self._ab_cache.move_to_end(test_name)
                while len(self._ab_cache) > self.AB_CACHE_SIZE:
                    oldest, _ = self._ab_cache.popitem(last=False)
                    self._ab_locks.pop(oldest, None)
            return view

    # -- health ------------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        model = self.models.current
        redis_ok = self.features.ping()
        warehouse_ok, warehouse_detail = self._warehouse_check()
        order_ok = model is None or self.features.order_ok.get(self.features.store_for(model).prefix, True)
        cache = self._cache_stats() if redis_ok else {}
        redis_detail = self.features.redis_error if not redis_ok else (
            None if order_ok else "online store holds another feature order: not used until /cache/sync")
        return {
            "status": "ok" if (redis_ok and order_ok and warehouse_ok and model) else "degraded",
            "redis": {"ok": redis_ok and order_ok, "detail": redis_detail},
            "warehouse": {"ok": warehouse_ok, "detail": warehouse_detail},
            "model": {"loaded": model is not None, "name": self.settings.model_name,
                      "version": model.version if model else None,
                      "feature_set": model.feature_set if model else None,
                      "dataset": model.record.params.get("dataset") if model else None,
                      "loaded_at": model.loaded_at if model else None,
                      "serving_form": model.serving_form if model else None, "error": self.models.error},
            "cache": cache, "uptime_seconds": round(time.monotonic() - self.started, 3),
        }

    def _warehouse_check(self) -> tuple[bool, str | None]:
        try:
            with self.warehouse.reader() as con:
                con.execute("SELECT 1").fetchall()
        except (WarehouseError, duckdb.Error) as exc:
            return False, scrub(str(exc))
        return True, None

    def _cache_stats(self) -> dict[str, Any]:
        try:
            self.features.flush_counts()
            stats = self.cache_store().stats()
        except (OnlineStoreError, WarehouseError):
            return {}
        rate = stats["hit_rate"]
        return {**stats, "hit_rate": None if math.isnan(rate) else rate}

    # -- cache admin -------------------------------------------------------------------------------
    def cache_store(self) -> OnlineStore:
        """The served model's online store (the offline store's feature set before any model)."""
        model = self.models.current
        if model is not None:
            return self.features.store_for(model)
        return self.features.store(materialize.namespace(self.warehouse), offline.feature_set(self.warehouse)[1])

    def sync_cache(self) -> dict[str, Any]:
        """Replace the online store with the offline store's latest vectors; counters restart."""
        store = self.cache_store()
        done = materialize.materialize(self.warehouse, store)
        self.features.forget_counts(store.prefix)
        self.features.order_ok[store.prefix] = True
        return {"feature_set": store.prefix.rsplit(":", 1)[-1], "removed": done.removed,
                "written": done.written.users, "seconds": round(done.written.seconds, 4)}

    def clear_cache(self) -> dict[str, Any]:
        """Empty the online store (every lookup then falls back to the offline store)."""
        store = self.cache_store()
        removed = store.clear()
        self.features.forget_counts(store.prefix)
        return {"feature_set": store.prefix.rsplit(":", 1)[-1], "removed": removed}
