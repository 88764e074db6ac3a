"""The FastAPI app factory: ``uvicorn churn.serving.app:create_app --factory``."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from churn.serving import docs, errors, openapi, proxy
from churn.serving.middleware import BodySizeLimit
from churn.serving.ops import OpsRecorder, OpsStats
from churn.serving.routes import cache, dashboard, explain, health, predict
from churn.serving.security import Guard, RateLimiter, SharedRateLimiter
from churn.serving.service import ServingState
from churn.serving.settings import Settings

log = logging.getLogger("churn.serving")
DESCRIPTION = """Churn probabilities, explanations and registry/monitoring views.

Features come from Redis (online store) and fall back to the DuckDB offline store on a miss.
Send `X-API-Key` on the admin endpoints (`/cache/*`) always, and on every endpoint when the server
has `CHURN_API_KEY` set. Each client (key or IP) gets `CHURN_RATE_LIMIT_PER_MINUTE` requests per
minute per worker process; above it the answer is 429 with `Retry-After`. Errors are
`{"detail": "..."}` (422 adds the structured `errors` list). Times are UTC with an offset."""


async def _poll(state: ServingState, every: float, ops: OpsStats) -> None:
    """Reload a changed production model (and flush counters) without a restart."""
    while True:
        await asyncio.sleep(every)
        try:
            await run_in_threadpool(state.tick)
            await run_in_threadpool(ops.flush, state.features.client)
        except Exception:  # a failed tick must not stop the next ones
            log.exception("background refresh failed")


def freeze_heap() -> None:
    """Move everything alive after start-up (the imported libraries, the model, the latest-vector
    index: ~200,000 objects) out of the garbage collector's reach. Requests in flight during a
    young-generation collection get promoted, so under load the full collection ran every second
    or so and walked the whole heap each time: 70-80 ms with the event loop stopped, the p99 of a
    1-worker -c32 load (61 ms; 5 ms frozen). The young generations are collected first (a full
    collection would cost 0.2-0.5 s per start: per app in the tests); garbage already in the oldest
    generation stays until shutdown (once, bounded). Objects made later (a reloaded model) are
    collected as usual."""
    gc.collect(1)
    gc.freeze()


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    state = await run_in_threadpool(ServingState.open, settings, index=True)
    app.state.serving = state
    task = asyncio.create_task(_poll(state, settings.model_poll_seconds, app.state.ops))
    freeze_heap()
    try:
        yield
    finally:
        gc.unfreeze()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await state.aclose()
        state.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; ``settings`` defaults to the environment (``Settings()``)."""
    settings = settings or Settings()
    app = FastAPI(title="Churn prediction API", version="1.0", description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    docs.install(app)  # Swagger UI and ReDoc from local assets (no CDN)
    app.state.settings = settings
    per_minute = settings.rate_limit_per_minute
    limiter = SharedRateLimiter if settings.rate_limit_shared else RateLimiter
    app.state.limiter = limiter(per_minute) if per_minute else None
    for module in (health, predict, explain, cache, dashboard):
        app.include_router(module.router)
    errors.install(app)
    openapi.install(app)
    app.add_middleware(predict.SinglePredictionPath, api=app)  # innermost: GET /predict/{id} without the router
    app.add_middleware(Guard)  # next: sees the real client (ForwardedFor) and is counted (OpsRecorder)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.state.ops = OpsStats()
    app.add_middleware(OpsRecorder, stats=app.state.ops)
    proxy.install(app, settings.forwarded_allow_ips)  # outermost, so everything inside sees the real client
    return app
