"""The API's operational figures: request count, errors and latency, shared through Redis.

Each worker process counts in memory (a few dict updates per request) and adds its counts to
the shared figures (:mod:`churn.store.api_state`, which owns the keys) on every background tick,
so the monitor phase can report p50/p99 across all workers.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import redis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from churn.store.api_state import LATENCY_KEEP, add_ops
from churn.store.online import RedisClient


class OpsStats:
    """In-process counters waiting to be flushed to Redis."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = self.errors = 0
        self.latencies: deque[float] = deque(maxlen=LATENCY_KEEP)

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
            add_ops(client, requests, errors, latencies)
        except (redis.RedisError, OSError):
            with self._lock:
                self.requests += requests
                self.errors += errors


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
