"""The API's operational figures: request count, errors and latency, shared through Redis.

Each worker process counts in memory (a few dict updates per request) and adds its counts to
``churn:api:stats`` on every background tick; the latest latencies go to a capped Redis list, so
the monitor phase can report p50/p99 across all workers.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np
import redis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from churn.store.online import RedisClient

STATS_KEY, LATENCY_KEY, KEEP = "churn:api:stats", "churn:api:latency_ms", 10_000


class OpsStats:
    """In-process counters waiting to be flushed to Redis."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = self.errors = 0
        self.latencies: deque[float] = deque(maxlen=KEEP)

    def record(self, status: int, seconds: float) -> None:
        with self._lock:
            self.requests += 1
            self.errors += status >= 500
            self.latencies.append(seconds * 1000)

    def flush(self, client: RedisClient) -> None:
        """Add the pending counts to Redis; kept for the next tick if Redis is unreachable."""
        with self._lock:
            requests, errors, latencies = self.requests, self.errors, list(self.latencies)
            self.requests = self.errors = 0
            self.latencies.clear()
        if not requests:
            return
        try:
            pipe = client.pipeline(transaction=False)
            pipe.hincrby(STATS_KEY, "requests", requests)
            pipe.hincrby(STATS_KEY, "server_errors", errors)
            pipe.lpush(LATENCY_KEY, *[f"{v:.4f}" for v in latencies])
            pipe.ltrim(LATENCY_KEY, 0, KEEP - 1)
            pipe.execute()
        except (redis.RedisError, OSError):
            with self._lock:
                self.requests += requests
                self.errors += errors


def read_ops(client: RedisClient) -> dict[str, float]:
    """Requests, server errors and latency percentiles recorded by every worker so far."""
    stats = client.hgetall(STATS_KEY)
    latencies = np.array([float(v) for v in client.lrange(LATENCY_KEY, 0, KEEP - 1)])
    return {
        "requests": int(stats.get(b"requests", 0)), "server_errors": int(stats.get(b"server_errors", 0)),
        "latency_p50_ms": float(np.median(latencies)) if len(latencies) else float("nan"),
        "latency_p99_ms": float(np.quantile(latencies, 0.99)) if len(latencies) else float("nan"),
        "latency_samples": len(latencies),
    }


class OpsRecorder:
    """Pure-ASGI middleware timing every HTTP request into an ``OpsStats``."""

    def __init__(self, app: ASGIApp, stats: OpsStats) -> None:
        self.app, self.stats = app, stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), [500]

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            self.stats.record(status[0], time.perf_counter() - started)
