"""The online store: the latest feature vector per user in Redis.

Each user's vector is one binary value (``snapshot_at`` in microseconds as int64, then the features as
float64 in the feature set's order), so a read is exact to the last bit and a batch of users is a
single ``MGET``. Keys are namespaced by the feature spec's key (``FeatureSpec.key``,
``name:version``): ``churn:fs:<name>:<version>:u:<user_id>``; ``churn:fs:<namespace>:meta``
records the feature order so a reader with another order is refused (no training/serving skew).
Hit and miss counters live in Redis under the same namespace, shared by every process.

A value that cannot be a vector (another length, NaN or infinite features, an as-of time outside
1900-2200) is reported as ``bad`` for that key only: the caller treats it as a miss and rewrites
it, and every other key of the same read is served as usual.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import math
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
import redis
import redis.asyncio
from redis.connection import HiredisRespSerializer
from redis.crc import key_slot
from redis.utils import HIREDIS_AVAILABLE

from churn.store.pipelined import ClusterReads, PipelinedReads

if HIREDIS_AVAILABLE:
    import hiredis


def queue_counts(pipe: Any, prefix: str, hits: int, misses: int, bad: int = 0) -> None:
    """Queue additions to the store's shared counters (the hash ``OnlineStore.stats()`` reads) on
    a Redis pipeline: one owner of the counter keys for the store and the API's batched flush."""
    pipe.hincrby(f"{prefix}:stats", "hits", hits)
    pipe.hincrby(f"{prefix}:stats", "misses", misses)
    if bad:
        pipe.hincrby(f"{prefix}:stats", "bad_values", bad)


class OnlineStoreError(RuntimeError):
    """The online store is unreachable or holds another feature set than expected."""


CLUSTER_SCHEME = "redis+cluster://"
RedisClient = redis.Redis | redis.RedisCluster
AsyncRedisClient = redis.asyncio.Redis | redis.asyncio.RedisCluster
CLUSTER_BUCKETS = 64  # hash-tag buckets: a batch read is one MGET per bucket, one round trip per shard


def client_from_url(url: str, **kwargs: Any) -> RedisClient:
    """A client for ``url``; ``redis+cluster://host:port`` (any node) gives the cluster client."""
    if url.startswith(CLUSTER_SCHEME):
        kwargs.pop("retry", None)  # the cluster client retries by redirection instead
        return redis.RedisCluster.from_url("redis://" + url[len(CLUSTER_SCHEME):], **kwargs)
    return redis.Redis.from_url(url, **kwargs)


class _HiredisPacking:
    """Commands packed by hiredis (C), as redis-py's sync client already does when hiredis is
    installed; its asyncio connections pack in Python, which was a third of a 1,000-id read."""

    _serializer = HiredisRespSerializer()

    def pack_command(self, *args: Any) -> list[bytes]:
        # A one-word command of str/bytes/number arguments (every read of the request path)
        # goes to hiredis as it is: redis-py's packer first copies the arguments, checking each
        # (a 1,000-key MGET paid ~1,000 isinstance calls). Anything else takes redis-py's path.
        if type(args[0]) is str and " " not in args[0]:
            try:
                return [hiredis.pack_command(args)]
            except TypeError:  # a bytearray or memoryview argument: redis-py converts it
                pass
        packed: list[bytes] = self._serializer.pack(*args)
        return packed


class _TcpConnection(_HiredisPacking, redis.asyncio.Connection):
    pass


class _UnixConnection(_HiredisPacking, redis.asyncio.UnixDomainSocketConnection):
    pass


class PipelinedRedis(redis.asyncio.Redis):
    """``redis.asyncio.Redis`` whose request-path reads (:meth:`read_values`) go over one
    pipelined connection (:mod:`churn.store.pipelined`) when the URL is a plain one; every other
    command, and every read on a URL that path does not handle, through redis-py as usual."""

    @functools.cached_property
    def _reads(self) -> PipelinedReads | None:
        """The pipelined path for this client's URL (None: redis-py's), looked at on first use."""
        return PipelinedReads.for_client(self)

    async def read_values(self, keys: list[bytes]) -> list[Any]:
        """``MGET keys`` (raw values, None for a missing key)."""
        if self._reads is not None:
            return await self._reads.mget(keys)
        return cast("list[Any]", await self.mget(keys))

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        if (reads := self.__dict__.get("_reads")) is not None:  # only if it was ever opened
            reads.close()
        await super().aclose(close_connection_pool)


class PipelinedRedisCluster(redis.asyncio.RedisCluster):
    """``redis.asyncio.RedisCluster`` whose request-path reads of hash-tagged keys go to each
    node over a pipelined connection (:class:`churn.store.pipelined.ClusterReads`)."""

    @functools.cached_property
    def _reads(self) -> ClusterReads | None:
        """The pipelined per-node path for this cluster (None: redis-py's), looked at on first use."""
        return ClusterReads.for_client(self)

    async def read_groups(self, groups: list[list[bytes]], slots: list[int]) -> list[list[Any]]:
        """``MGET`` of each group (keys of one hash tag, in slot ``slots[i]``), one write per node, nodes at once;
        after a redirection or without the fast path, redis-py's ``mget_nonatomic``."""
        if self._reads is not None:
            try:
                return await self._reads.mget(groups, slots)
            except redis.ResponseError:  # MOVED/ASK (a resharding): the cluster client follows it
                pass
        values = await self.mget_nonatomic([k for group in groups for k in group])
        out, start = [], 0
        for group in groups:
            out.append(values[start:start + len(group)])
            start += len(group)
        return out

    async def aclose(self) -> None:
        if (reads := self.__dict__.get("_reads")) is not None:
            reads.close()
        await super().aclose()


def async_client_from_url(url: str, **kwargs: Any) -> AsyncRedisClient:
    """The asyncio counterpart of :func:`client_from_url` (reads pipelined: see
    :class:`PipelinedRedis`, :class:`PipelinedRedisCluster`)."""
    if url.startswith(CLUSTER_SCHEME):
        kwargs.pop("retry", None)
        return PipelinedRedisCluster.from_url("redis://" + url[len(CLUSTER_SCHEME):], **kwargs)
    client = PipelinedRedis.from_url(url, **kwargs)
    pool = client.connection_pool  # connections are made on first use: swap the class before that
    packed = {redis.asyncio.Connection: _TcpConnection, redis.asyncio.UnixDomainSocketConnection: _UnixConnection}
    if HIREDIS_AVAILABLE and pool.connection_class in packed:
        pool.connection_class = packed[pool.connection_class]
    return client


# a vector's snapshot time must lie in [1900, 2200): anything else is a corrupted value
SNAPSHOT_RANGE_US = (int(np.datetime64("1900-01-01", "us").astype(np.int64)),
                     int(np.datetime64("2200-01-01", "us").astype(np.int64)))


@dataclass(frozen=True)
class WriteStats:
    """What ``online_write_batch`` did."""

    users: int
    batches: int
    seconds: float


@dataclass(frozen=True)
class OnlineRead:
    """Vectors for the requested users; ``found[i]`` tells whether user ``i`` had a valid vector
    in the store, ``bad[i]`` whether it had a value that is not one (a miss to rewrite)."""

    user_ids: np.ndarray
    found: np.ndarray
    snapshot_at: np.ndarray  # datetime64[us] (the time each vector describes), NaT where missing
    values: np.ndarray  # (n, n_features) float64, NaN rows where missing
    bad: np.ndarray | None = None

    @property
    def bad_ids(self) -> list[int]:
        return [] if self.bad is None else self.user_ids[self.bad].tolist()

    def to_frame(self, features: list[str]) -> pd.DataFrame:
        frame = pd.DataFrame(self.values, columns=features)
        frame.insert(0, "snapshot_at", self.snapshot_at)
        frame.insert(0, "user_id", self.user_ids)
        return frame[self.found].reset_index(drop=True)


class OnlineStore:
    """Redis-backed online store for one feature spec.

    Args:
        client: a redis-py client (``redis.Redis.from_url(url)``).
        namespace: the feature spec's key (``FeatureSpec.key``, e.g. ``"churn_features:v1"``;
            see :func:`churn.store.materialize.namespace`): every key and counter lives under it.
        features: feature names in model order.
        ttl_seconds: optional expiry of every vector.
        aclient: an asyncio client on the same server, for :meth:`aonline_read` (the API's event loop).
    """

    def __init__(self, client: RedisClient, namespace: str, features: list[str],
                 ttl_seconds: int | None = None, aclient: AsyncRedisClient | None = None) -> None:
        self.client = client
        self.aclient = aclient
        self.features = list(features)
        self.ttl = ttl_seconds
        self.namespace = namespace
        self.prefix = f"churn:fs:{namespace}"
        # On a cluster, users are spread over hash-tagged buckets: keys of one bucket share a slot
        self.cluster = isinstance(client, redis.RedisCluster)
        self.vector_pattern = f"{self.prefix}:{{b*}}:u:*" if self.cluster else f"{self.prefix}:u:*"
        # each bucket's key head and slot, made once (a batch read builds 1,000 keys)
        self._heads = [b"%s:{b%d}:u:" % (self.prefix.encode(), b) for b in range(CLUSTER_BUCKETS)]
        self._slots = [key_slot(head) for head in self._heads]
        self._dtype = np.dtype([("snapshot_at", "<i8"), ("values", "<f8", (len(self.features),))])
        self._struct = struct.Struct(f"<q{len(self.features)}d")  # the same layout, for one value
        self._coalescer = _Coalescer(self._aread)

    @classmethod
    def from_url(cls, url: str, namespace: str, features: list[str], ttl_seconds: int | None = None) -> OnlineStore:
        return cls(client_from_url(url, socket_timeout=5), namespace, features, ttl_seconds)

    def key(self, user_id: int) -> str:
        if self.cluster:
            return f"{self.prefix}:{{b{int(user_id) % CLUSTER_BUCKETS}}}:u:{int(user_id)}"
        return f"{self.prefix}:u:{int(user_id)}"

    def keys(self, user_ids: np.ndarray) -> list[bytes]:
        """:meth:`key` of many users, as bytes: the client sends bytes as they are, where each
        ``str`` would be encoded again (a third of a 1,000-id read was building its command)."""
        if self.cluster:
            heads = self._heads
            return [b"%s%d" % (heads[u % CLUSTER_BUCKETS], u) for u in user_ids.tolist()]
        head = self.key(0)[:-1].encode()
        return [b"%s%d" % (head, u) for u in user_ids.tolist()]

    def _mget(self, keys: list[bytes]) -> list[Any]:
        if isinstance(self.client, redis.RedisCluster):
            return self.client.mget_nonatomic(keys)  # one MGET per hash-tag bucket, one round trip per shard
        return self.client.mget(keys)

    def online_write_batch(self, frame: pd.DataFrame, batch_size: int = 5000) -> WriteStats:
        """Write one vector per row of ``frame`` (user_id, snapshot_at, features) in pipelined
        batches; the feature order is recorded first so readers can check it."""
        started = time.perf_counter()
        records = np.zeros(len(frame), dtype=self._dtype)
        records["snapshot_at"] = frame["snapshot_at"].to_numpy("datetime64[us]").astype("int64")
        records["values"] = frame[self.features].to_numpy(np.float64)
        user_ids = frame["user_id"].to_numpy(np.int64)
        batches = 0
        with self._guard():
            self.client.set(f"{self.prefix}:meta", json.dumps({"features": self.features}))
            for lo in range(0, len(records), batch_size):
                pipe = self.client.pipeline(transaction=False)
                for uid, rec in zip(user_ids[lo:lo + batch_size], records[lo:lo + batch_size], strict=True):
                    pipe.set(self.key(uid), rec.tobytes(), ex=self.ttl)
                pipe.execute()
                batches += 1
        return WriteStats(users=len(records), batches=batches, seconds=time.perf_counter() - started)

    def online_read(self, user_ids: list[int] | np.ndarray, count: bool = True) -> OnlineRead:
        """Vectors for ``user_ids`` in one round trip; counts hits and misses when ``count``."""
        ids = np.asarray(user_ids, dtype=np.int64)
        if not len(ids):
            return self.decode(ids, [])
        with self._guard():
            raw = self._mget(self.keys(ids))
        read = self.decode(ids, raw)
        if count:
            bad = 0 if read.bad is None else int(read.bad.sum())
            self.add_counts(int(read.found.sum()), len(ids) - int(read.found.sum()), bad)
        return read

    async def aonline_read(self, user_ids: list[int] | np.ndarray) -> OnlineRead:
        """``online_read`` (without counting) on the asyncio client: a slow or hung Redis holds
        only the requests that wait for it, never the event loop."""
        ids = np.asarray(user_ids, dtype=np.int64)
        if not len(ids):
            return self.decode(ids, [])
        if self.aclient is None:
            raise OnlineStoreError("this OnlineStore has no asyncio client")
        return self.decode(ids, await self._aread(ids))

    async def aonline_get(self, user_id: int) -> bytes | None:
        """One user's raw value (on the asyncio client): :meth:`decode_one` reads it.

        Concurrent calls on one event loop share a round trip: the keys asked for while the loop
        runs its ready tasks are read by one ``MGET`` right after them (automatic pipelining). A
        client's command costs far more CPU (pool, timeouts, retries, parsing) than the key, so
        under load most of it is paid once per loop turn instead of once per request; a lone
        request waits only for the end of its own turn."""
        if self.aclient is None:
            raise OnlineStoreError("this OnlineStore has no asyncio client")
        return cast("bytes | None", await self._coalescer.get(int(user_id)))

    async def _aread(self, user_ids: list[int] | np.ndarray) -> list[Any]:
        """Raw values of these users' keys in one ``MGET`` (one per hash-tag bucket on a cluster,
        each node's in one write), in order, on the asyncio client."""
        client = self.aclient
        assert client is not None
        ids = np.asarray(user_ids, dtype=np.int64)  # no copy for a batch's int64 array
        with self._guard():
            if isinstance(client, PipelinedRedisCluster):
                return await self._aread_cluster(client, ids)
            keys = self.keys(ids)
            if isinstance(client, PipelinedRedis):
                return await client.read_values(keys)
            if isinstance(client, redis.asyncio.RedisCluster):
                return cast("list[Any]", await client.mget_nonatomic(keys))
            return cast("list[Any]", await client.mget(keys))

    async def _aread_cluster(self, client: PipelinedRedisCluster, ids: np.ndarray) -> list[Any]:
        """Keys grouped by hash-tag bucket (one ``MGET`` each), values put back in request order."""
        buckets = ids % CLUSTER_BUCKETS
        order = np.argsort(buckets, kind="stable")
        ordered_buckets = buckets[order]
        heads, bucket_list = self._heads, ordered_buckets.tolist()
        keys = [b"%s%d" % (heads[b], u) for b, u in zip(bucket_list, ids[order].tolist(), strict=True)]
        starts = np.flatnonzero(np.diff(ordered_buckets, prepend=-1)).tolist()
        groups = [keys[lo:hi] for lo, hi in zip(starts, [*starts[1:], len(keys)], strict=True)]
        replies = await client.read_groups(groups, [self._slots[bucket_list[lo]] for lo in starts])
        values = np.empty(len(ids), dtype=object)  # fromiter: bytes stay Python objects (no 'S' array)
        values[order] = np.fromiter(itertools.chain.from_iterable(replies), dtype=object, count=len(ids))
        return values.tolist()

    def decode_one(self, raw: bytes | None) -> tuple[int, tuple[float, ...]] | None:
        """One value -> (snapshot_at in microseconds, features) when it is a valid vector, else None
        (absent or bad: :meth:`decode` tells which). Same checks as :meth:`decode`, in plain
        Python: for a single vector numpy's per-call overhead would be most of the cost."""
        if raw is None or len(raw) != self._struct.size:
            return None
        snapshot_at, *values = self._struct.unpack(raw)
        if not SNAPSHOT_RANGE_US[0] <= snapshot_at < SNAPSHOT_RANGE_US[1] or not all(map(math.isfinite, values)):
            return None
        return snapshot_at, tuple(values)

    def decode(self, ids: np.ndarray, raw: list[Any]) -> OnlineRead:
        """Vectors from the raw ``MGET`` answer; a value that is not a valid vector is ``bad``."""
        size = self._dtype.itemsize
        lengths = np.array([-1 if r is None else len(r) for r in raw], dtype=np.int64)
        present, sized = lengths >= 0, lengths == size
        records = np.zeros(len(ids), dtype=self._dtype)
        if sized.any():
            records[sized] = np.frombuffer(b"".join(itertools.compress(raw, sized.tolist())), dtype=self._dtype)
        valid = sized.copy()
        if sized.any():
            stamps = records["snapshot_at"]
            valid &= np.isfinite(records["values"]).all(axis=1)
            valid &= (stamps >= SNAPSHOT_RANGE_US[0]) & (stamps < SNAPSHOT_RANGE_US[1])
        values = records["values"].astype(np.float64)
        values[~valid] = np.nan
        snapshot_at = records["snapshot_at"].astype("datetime64[us]")
        snapshot_at[~valid] = np.datetime64("NaT")
        return OnlineRead(user_ids=ids, found=valid, snapshot_at=snapshot_at, values=values, bad=present & ~valid)

    def add_counts(self, hits: int, misses: int, bad: int = 0) -> None:
        """Add to the shared counters (``bad`` values are also counted as misses)."""
        with self._guard():
            pipe = self.client.pipeline(transaction=False)
            queue_counts(pipe, self.prefix, hits, misses, bad)
            pipe.execute()

    def online_delete(self, user_ids: list[int] | np.ndarray) -> int:
        """Delete these users' vectors (e.g. a bad value of a user the offline store lacks)."""
        if not len(user_ids):
            return 0
        with self._guard():
            return int(self.client.unlink(*[self.key(u) for u in user_ids]))

    def stored_user_ids(self) -> np.ndarray:
        """Ids of every user with a vector of this feature set (SCAN, so Redis is not blocked)."""
        with self._guard():
            ids = [int(key.rsplit(b":", 1)[-1]) for key in self.client.scan_iter(self.vector_pattern, count=5000)]
        return np.array(sorted(ids), dtype=np.int64)

    def online_sync(self, frame: pd.DataFrame, batch_size: int = 5000) -> tuple[WriteStats, int, int]:
        """Make the store hold exactly ``frame``'s users, writing only what changed: users whose
        feature values differ from the stored ones (or who have none) are written, users no
        longer in ``frame`` deleted. An unchanged vector keeps its stored ``snapshot_at`` (the day its
        values were computed first). Returns (what was written, users unchanged, users removed)."""
        ids = frame["user_id"].to_numpy(np.int64)
        current = self.online_read(ids, count=False)
        values = np.ascontiguousarray(frame[self.features].to_numpy(np.float64))
        stored = np.ascontiguousarray(current.values)
        # bit-for-bit, as the parity check compares (NaN never equals itself as a float)
        same = current.found & (stored.view(np.uint64) == values.view(np.uint64)).all(axis=1)
        written = WriteStats(users=0, batches=0, seconds=0.0)
        if (~same).any():
            written = self.online_write_batch(frame[~same], batch_size=batch_size)
        gone = np.setdiff1d(self.stored_user_ids(), ids)
        return written, int(same.sum()), self.online_delete(gone)

    def check_feature_order(self) -> None:
        """Refuse a store written with another feature order than this reader expects."""
        with self._guard():
            meta = self.client.get(f"{self.prefix}:meta")
        if meta is not None and json.loads(meta)["features"] != self.features:
            raise OnlineStoreError(
                f"online store {self.prefix} was written with features {json.loads(meta)['features']}, "
                f"but this reader expects {self.features}"
            )

    def stats(self) -> dict[str, float]:
        """Hits, misses (bad values included), hit rate and bad values since the last reset."""
        with self._guard():
            raw = self.client.hgetall(f"{self.prefix}:stats")
        hits, misses = int(raw.get(b"hits", 0)), int(raw.get(b"misses", 0))
        total = hits + misses
        return {"hits": hits, "misses": misses, "hit_rate": hits / total if total else float("nan"),
                "bad_values": int(raw.get(b"bad_values", 0))}

    def reset_stats(self) -> None:
        with self._guard():
            self.client.delete(f"{self.prefix}:stats")

    def count(self) -> int:
        """Number of user vectors held (SCAN, so it does not block Redis)."""
        with self._guard():
            return sum(1 for _ in self.client.scan_iter(self.vector_pattern, count=5000))

    def clear(self) -> int:
        """Delete every vector of this feature set (counters too); returns vectors deleted."""
        deleted = 0
        with self._guard():
            batch = []
            for key in self.client.scan_iter(self.vector_pattern, count=5000):
                batch.append(key)
                if len(batch) >= 5000:
                    deleted += self.client.unlink(*batch)
                    batch = []
            if batch:
                deleted += self.client.unlink(*batch)
            self.client.delete(f"{self.prefix}:stats", f"{self.prefix}:meta")
        return deleted

    def _guard(self) -> _RedisGuard:
        return _RedisGuard(self.prefix)


class _Coalescer:
    """Single-key reads of one event loop gathered into one batched read per loop turn.

    The first key of a turn schedules the read with ``call_soon``: it runs after every task that
    was ready in the same turn (the requests that arrived together) has added its key. Each caller
    gets its own value, or the read's error (``OnlineStoreError`` for an unreachable Redis, so
    every waiting request takes the fallback as it would alone); a cancelled caller is skipped.
    """

    def __init__(self, read: Callable[[list[Any]], Awaitable[list[Any]]]) -> None:
        self._read = read
        self._loop: asyncio.AbstractEventLoop | None = None
        self._keys: list[Any] = []
        self._waiters: list[asyncio.Future[Any]] = []
        self._running: set[asyncio.Task[None]] = set()  # strong references until each read ends

    async def get(self, key: Any) -> Any:
        loop = asyncio.get_running_loop()
        if not self._keys or self._loop is not loop:
            self._loop, self._keys, self._waiters = loop, [], []
            loop.call_soon(self._flush, self._keys, self._waiters)
        waiter: asyncio.Future[Any] = loop.create_future()
        self._keys.append(key)
        self._waiters.append(waiter)
        return await waiter

    def _flush(self, keys: list[Any], waiters: list[asyncio.Future[Any]]) -> None:
        if self._keys is keys:  # later keys start the next batch
            self._keys, self._waiters = [], []
        task = asyncio.get_running_loop().create_task(self._answer(keys, waiters))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _answer(self, keys: list[Any], waiters: list[asyncio.Future[Any]]) -> None:
        try:
            values = await self._read(keys)
        except BaseException as exc:  # every waiter gets it (cancellation too)
            for waiter in waiters:
                if waiter.done():
                    continue
                if isinstance(exc, asyncio.CancelledError):
                    waiter.cancel()
                else:  # one exception object per waiter: each request raises (and logs) its own
                    waiter.set_exception(_copy_error(exc))
            if not isinstance(exc, Exception):
                raise
            return
        for waiter, value in zip(waiters, values, strict=True):
            if not waiter.done():
                waiter.set_result(value)


def _copy_error(exc: BaseException) -> BaseException:
    """A fresh exception of the same class and message (a shared one would gather tracebacks)."""
    try:
        copy = type(exc)(*exc.args)
    except Exception:  # an exception class with another signature
        return exc
    copy.__cause__ = exc.__cause__
    return copy


class _RedisGuard:
    """Turns connection failures into one clear ``OnlineStoreError``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Literal[False]:
        if exc is not None and isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
            raise OnlineStoreError(f"online store (Redis) unreachable: {exc}") from None
        return False
