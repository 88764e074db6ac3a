"""``/predict``: churn probability for one user or a batch.

``GET /predict/{id}`` is the hottest route: :class:`SinglePredictionPath` answers it straight from
ASGI, in front of FastAPI's router (whose route matching, dependency solving and parameter
validation cost more CPU than the prediction itself), with the same function the documented
FastAPI route runs (:func:`single_prediction`) and the app's own exception handlers; anything it
does not recognise (another method, an id FastAPI would refuse with 422) goes to FastAPI as before.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from churn.serving.deps import SettingsDep, State, UserId
from churn.serving.responses import FastJSONResponse
from churn.serving.schemas import MAX_USER_ID, BatchOut, BatchRequest, ErrorOut, PredictionDetailOut
from churn.serving.service import ServingState

router = APIRouter(prefix="/predict", tags=["predict"])
ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 429: {"model": ErrorOut},
          503: {"model": ErrorOut, "description": "no production model / store unavailable"}}


async def single_prediction(state: ServingState, user_id: int) -> FastJSONResponse:
    """One user's prediction response; a 404 (``HTTPException``) that says why for an unknown user."""
    result = await state.predict_one(user_id)
    if result is None:
        raise HTTPException(404, await run_in_threadpool(state.not_found_detail, user_id))
    # built already in the documented shape (the contract test checks it): serialising it
    # through the response model again would double the per-request work
    return FastJSONResponse(result)


@router.get("/{user_id}", response_model=PredictionDetailOut, summary="Predict one user",
            responses={404: {"model": ErrorOut, "description": "unknown user: says whether the user churned or "
                                                               "never existed"}, **ERRORS})
async def predict_one(user_id: UserId, request: Request) -> FastJSONResponse:
    """Features from Redis (offline store on a miss, which refills Redis), scored in memory."""
    return await single_prediction(request.app.state.serving, user_id)


@router.post("/batch", response_model=BatchOut, summary="Predict a batch of users",
             responses={413: {"model": ErrorOut, "description": "more ids than CHURN_BATCH_LIMIT"}, **ERRORS})
async def predict_batch(body: BatchRequest, state: State, settings: SettingsDep) -> FastJSONResponse:
    """One Redis round trip and one vectorised scoring for all ids; unknown ids are listed in
    ``not_found`` instead of failing the batch."""
    if len(body.user_ids) > settings.batch_limit:
        raise HTTPException(413, f"{len(body.user_ids):,} user ids in one batch; the limit is "
                                 f"{settings.batch_limit:,}: split the request")
    return FastJSONResponse(await state.predict(body.user_ids, use_cache=body.use_cache))


SINGLE_PATH = re.compile(r"/predict/(0|[1-9][0-9]{0,18})")  # what ``deps.UserId`` accepts (checked below)


class SinglePredictionPath:
    """``GET /predict/{id}`` as pure ASGI: the innermost middleware (inside the guard, the body
    limit, the metrics and the forwarded-header handling, so every one of them still applies).

    It answers only a GET of a valid id on an app without a root path, after start-up; errors are
    rendered by the handler the app registered for them (an unhandled one propagates to the app's
    500 handler, as from the route). Everything else is passed on to FastAPI unchanged.
    """

    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app = app
        self.api = api  # the FastAPI app: its state (the ServingState) and exception handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user_id = self._user_id(scope)
        state: ServingState | None = getattr(self.api.state, "serving", None)
        if user_id is None or state is None:
            return await self.app(scope, receive, send)
        try:
            response = await single_prediction(state, user_id)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise  # the app's 500 handler (ServerErrorMiddleware, outside) answers and logs it
            response = await handler(Request(scope, receive), exc)
        await response(scope, receive, send)

    @staticmethod
    def _user_id(scope: Scope) -> int | None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope.get("root_path"):
            return None
        match = SINGLE_PATH.fullmatch(scope["path"])
        if match is None:
            return None
        user_id = int(match.group(1))
        return user_id if user_id <= MAX_USER_ID else None

    def _handler(self, exc: Exception) -> Any:
        """The app's handler for ``exc`` (by class, most specific first), as Starlette's
        exception middleware finds it; None for the catch-all 500 handler."""
        handlers = self.api.exception_handlers
        for cls in type(exc).__mro__:
            if cls is Exception:
                return None
            if cls in handlers:
                return handlers[cls]
        return None
