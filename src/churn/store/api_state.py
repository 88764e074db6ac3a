"""The Redis keys the API keeps besides the feature vectors: its operational figures and the
shared rate-limit buckets.

Every API worker and replica adds its request counts to one hash and its latest latencies to
one capped list, so the monitor phase can report p50/p99 across all of them; with
``CHURN_RATE_LIMIT_SHARED`` each client's token bucket is one hash, refilled and spent
atomically by a Lua script (Redis' clock, so replicas need no synchronised clocks). The keys
are single keys, so they work on one Redis and on a cluster alike (each lands on one shard).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from churn.store.online import RedisClient

STATS_KEY = "churn:api:stats"
LATENCY_KEY = "churn:api:latency_ms"
LATENCY_KEEP = 10_000  # the latest latencies kept (the list is trimmed on every write)
RATE_LIMIT_PREFIX = "churn:ratelimit:"

TOKEN_BUCKET = """
local capacity, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1e6
local state = redis.call('HMGET', KEYS[1], 't', 'at')
local tokens, at = tonumber(state[1]) or capacity, tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens < 1 then wait = (1 - tokens) / rate else tokens = tokens - 1 end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return tostring(wait)
"""


def add_ops(client: RedisClient, requests: int, errors: int, latencies_ms: Sequence[float]) -> None:
    """Add a worker's pending counts and latencies (ms) to the shared figures, in one round trip.
    Raises redis-py's errors: the caller keeps its counts for the next try."""
    pipe = client.pipeline(transaction=False)
    pipe.hincrby(STATS_KEY, "requests", requests)
    pipe.hincrby(STATS_KEY, "server_errors", errors)
    if latencies_ms:
        pipe.lpush(LATENCY_KEY, *[f"{v:.4f}" for v in latencies_ms])
        pipe.ltrim(LATENCY_KEY, 0, LATENCY_KEEP - 1)
    pipe.execute()


def read_ops(client: RedisClient) -> dict[str, float]:
    """Requests, server errors and latency percentiles recorded by every worker so far."""
    stats = client.hgetall(STATS_KEY)
    latencies = np.array([float(v) for v in client.lrange(LATENCY_KEY, 0, LATENCY_KEEP - 1)])
    return {
        "requests": int(stats.get(b"requests", 0)),
        "server_errors": int(stats.get(b"server_errors", 0)),
        "latency_p50_ms": float(np.median(latencies)) if len(latencies) else float("nan"),
        "latency_p99_ms": float(np.quantile(latencies, 0.99)) if len(latencies) else float("nan"),
        "latency_samples": len(latencies),
    }


def clear_ops(client: RedisClient) -> None:
    """Forget the recorded figures (a new measurement period)."""
    client.delete(STATS_KEY, LATENCY_KEY)


class SharedBuckets:
    """Token buckets kept in Redis, one hash per client, spent through the asyncio client."""

    def __init__(self, capacity: float, rate: float) -> None:
        self.capacity, self.rate = capacity, rate
        self._script: Any = None  # registered on first use, on the first client that asks

    async def atake(self, aclient: Any, client: str) -> float:
        """0.0 when ``client`` had a token (now spent), else the seconds until its next one.
        Raises redis-py's errors (the caller decides what a dead Redis means)."""
        if self._script is None:
            self._script = aclient.register_script(TOKEN_BUCKET)
        return float(await self._script(keys=[RATE_LIMIT_PREFIX + client], args=[self.capacity, self.rate]))
