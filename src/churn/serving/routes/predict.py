"""``/predict``: churn probability for one user or a batch."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from churn.serving.deps import SettingsDep, State, UserId
from churn.serving.responses import FastJSONResponse
from churn.serving.schemas import BatchOut, BatchRequest, ErrorOut, PredictionDetailOut
from churn.serving.service import ServingState

router = APIRouter(prefix="/predict", tags=["predict"])
ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 429: {"model": ErrorOut},
          503: {"model": ErrorOut, "description": "no production model / store unavailable"}}


@router.get("/{user_id}", response_model=PredictionDetailOut, summary="Predict one user",
            responses={404: {"model": ErrorOut, "description": "unknown user: says whether the user churned or "
                                                               "never existed"}, **ERRORS})
async def predict_one(user_id: UserId, request: Request) -> FastJSONResponse:
    """Features from Redis (offline store on a miss, which refills Redis), scored in memory."""
    # the state straight from the app, not through the ``State`` dependency: on the hottest route
    # FastAPI's dependency solving was a quarter of its per-request cost (measured in process)
    state: ServingState = request.app.state.serving
    result = await state.predict_one(user_id)
    if result is None:
        raise HTTPException(404, await run_in_threadpool(state.not_found_detail, user_id))
    # built already in the documented shape (the contract test checks it): serialising it
    # through the response model again would double the per-request work
    return FastJSONResponse(result)


@router.post("/batch", response_model=BatchOut, summary="Predict a batch of users",
             responses={413: {"model": ErrorOut, "description": "more ids than CHURN_BATCH_LIMIT"}, **ERRORS})
async def predict_batch(body: BatchRequest, state: State, settings: SettingsDep) -> FastJSONResponse:
    """One Redis round trip and one vectorised scoring for all ids; unknown ids are listed in
    ``not_found`` instead of failing the batch."""
    if len(body.user_ids) > settings.batch_limit:
        raise HTTPException(413, f"{len(body.user_ids):,} user ids in one batch; the limit is "
                                 f"{settings.batch_limit:,}: split the request")
    return FastJSONResponse(await state.predict(body.user_ids, use_cache=body.use_cache))
