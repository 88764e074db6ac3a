"""Ceiling apps for the serving benchmark: what the framework and the server cost on their own.

``bare_fastapi`` is a FastAPI app whose ``GET /predict/{user_id}`` returns a constant JSON body
(a path parameter, no dependencies, no middleware); ``raw_asgi`` answers every request with the
same bytes straight from ASGI. Both are run by the same launcher with the same server settings
as the real API (``python -m churn.serving --app ...``), so every serving figure can be given as
a share of them. They also answer ``/health`` so the launcher's readiness probe passes.
"""

from __future__ import annotations

import json

from fastapi import FastAPI

BODY = {
    "user_id": 1,
    "probability": 0.0731,
    "risk_band": "medium",
    "model_version": 1,
    "features_as_of": "2026-01-01T00:00:00Z",
    "cached": True,
    "model": {"loaded": True},
}
_BYTES = json.dumps(BODY).encode()
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(_BYTES)).encode())]


def bare_fastapi() -> FastAPI:
    app = FastAPI()

    @app.get("/predict/{user_id}")
    async def predict(user_id: int) -> dict:
        return BODY

    @app.get("/health")
    async def health() -> dict:
        return BODY

    return app


async def raw_asgi(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _BYTES})


def raw_asgi_factory():
    return raw_asgi
