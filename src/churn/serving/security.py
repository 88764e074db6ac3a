"""API keys (``X-API-Key``) and the per-client rate limit.

By default the rate limit is an in-process token bucket: with several uvicorn workers (or API
replicas) each keeps its own buckets, so a client may get up to ``workers x`` the configured rate.
With ``CHURN_RATE_LIMIT_SHARED=true`` the buckets live in Redis (one Lua script per request,
atomic, timed by the Redis server's clock), so every worker and replica shares one budget per
client; while Redis does not answer (the online store's circuit breaker is open), the process
falls back to its local buckets.
"""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import redis
from fastapi import HTTPException, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from churn.serving.settings import Settings
from churn.store.api_state import SharedBuckets

if TYPE_CHECKING:
    from churn.serving.features import FeatureSource

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="required on admin endpoints, and on all when CHURN_API_KEY is set")


def key_matches(given: str | None, secret: SecretStr | None) -> bool:
    """Constant-time comparison; nothing matches an unset secret."""
    if not given or secret is None:
        return False
    return hmac.compare_digest(given.encode(), secret.get_secret_value().encode())


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def check_api_key(key: str | None, settings: Settings) -> None:
    """All endpoints, only when ``CHURN_API_KEY`` is set: the API key or the admin key."""
    if settings.api_key is None:
        return
    if not key:
        raise HTTPException(401, "missing X-API-Key header", headers={"WWW-Authenticate": "APIKey"})
    if not (key_matches(key, settings.api_key) or key_matches(key, settings.admin_key)):
        raise HTTPException(403, "invalid API key")


async def require_admin_key(request: Request, key: str | None = Security(api_key_header)) -> None:
    """Admin endpoints always need a key: CHURN_ADMIN_KEY, else CHURN_API_KEY."""
    secret = _settings(request).admin_secret
    if not key:
        raise HTTPException(401, "admin endpoint: missing X-API-Key header",
                            headers={"WWW-Authenticate": "APIKey"})
    if secret is None:
        raise HTTPException(403, "admin endpoints are disabled: the server has no CHURN_ADMIN_KEY "
                                 "or CHURN_API_KEY configured")
    if not key_matches(key, secret):
        raise HTTPException(403, "invalid admin key")


class RateLimiter:
    """Token bucket per client: ``per_minute`` burst, refilled at ``per_minute / 60`` per second."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic,
                 max_clients: int = 10_000) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, at)

    def acquire(self, client: str) -> float:
        """Take a token: 0.0 when allowed, else the seconds until the next token."""
        now = self.clock()
        tokens, at = self._buckets.get(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - at) * self.rate)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            return (1.0 - tokens) / self.rate
        if len(self._buckets) >= self.max_clients and client not in self._buckets:
            self._prune(now)
        self._buckets[client] = (tokens - 1.0, now)
        return 0.0

    def _prune(self, now: float) -> None:
        """Bound the memory without ever forgetting a throttled client (that would hand it a full
        bucket): first forget clients whose bucket is full again (they lose nothing), then, if
        still at the cap, the fullest half of the others that still hold a token. When every
        client is throttled nobody is forgotten; each refills within ``1 / rate`` seconds."""
        levels = {c: t + (now - at) * self.rate for c, (t, at) in self._buckets.items()}
        for client in [c for c, level in levels.items() if level >= self.capacity]:
            del self._buckets[client]
        if len(self._buckets) < self.max_clients:
            return
        spare = sorted((c for c in self._buckets if levels[c] >= 1.0), key=levels.__getitem__, reverse=True)
        for client in spare[: max(1, len(self._buckets) // 2)]:
            del self._buckets[client]


class SharedRateLimiter:
    """The same token bucket, kept in Redis and shared by every worker and replica."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.local = RateLimiter(per_minute)  # used while Redis does not answer
        self.buckets = SharedBuckets(self.capacity, self.rate)

    async def aacquire(self, client: str, features: FeatureSource | None) -> float:
        """0.0 when allowed, else the seconds until the client's next token. Redis is reached
        through the online store's client and obeys its circuit breaker: while Redis is marked
        down (or the script fails, which marks it down) the local buckets answer, so a dead or
        hung Redis costs no request a timeout here either."""
        if features is None or features.aclient is None or not features.redis_usable():
            return self.local.acquire(client)
        try:
            return await self.buckets.atake(features.aclient, client)
        except (redis.RedisError, OSError) as exc:
            features.mark_down(exc)
            return self.local.acquire(client)


def client_id(request: Request, key: str | None, settings: Settings) -> str:
    """A valid key identifies the client; anything else (no key, a guessed one) is its IP."""
    for name, secret in (("api", settings.api_key), ("admin", settings.admin_secret)):
        if key_matches(key, secret):
            return f"key:{name}"
    return f"ip:{request.client.host if request.client else 'unknown'}"


async def check_rate(request: Request, key: str | None, settings: Settings) -> None:
    """429 with ``Retry-After`` once a client has used its budget."""
    limiter: RateLimiter | SharedRateLimiter | None = request.app.state.limiter
    if limiter is None:
        return
    client = client_id(request, key, settings)
    if isinstance(limiter, SharedRateLimiter):
        serving = getattr(request.app.state, "serving", None)
        wait = await limiter.aacquire(client, serving.features if serving else None)
    else:
        wait = limiter.acquire(client)
    if wait > 0:
        raise HTTPException(429, f"rate limit of {int(limiter.capacity)} requests per minute exceeded; "
                                 f"retry in {math.ceil(wait)} s", headers={"Retry-After": str(math.ceil(wait))})


OPEN_PATHS = ("/docs", "/redoc", "/openapi.json")  # the docs pages and their assets, for a browser


class Guard:
    """Every request, as pure ASGI (no per-route dependency to solve): the rate limit first (so
    guessing keys is limited too), then the API key; refusals are the usual JSON errors."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(OPEN_PATHS):
            return await self.app(scope, receive, send)
        state = scope["app"].state  # the FastAPI app (Starlette sets it before any middleware)
        settings: Settings = state.settings
        if state.limiter is None and settings.api_key is None:  # nothing to check
            return await self.app(scope, receive, send)
        request = Request(scope)
        key = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-api-key"), None)
        try:
            await check_rate(request, key, settings)
            check_api_key(key, settings)
        except HTTPException as exc:
            response = JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
            return await response(scope, receive, send)
        await self.app(scope, receive, send)
