"""``/explain``: why the model scores a user the way it does."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from starlette.concurrency import run_in_threadpool

from churn.serving.deps import State, UserId
from churn.serving.routes.predict import ERRORS
from churn.serving.schemas import ErrorOut, ExplanationOut

router = APIRouter(prefix="/explain", tags=["explain"])


@router.get("/{user_id}", response_model=ExplanationOut, summary="Explain one user's score",
            responses={404: {"model": ErrorOut, "description": "unknown user"},
                       501: {"model": ErrorOut, "description": "the model has no exact decomposition"}, **ERRORS})
async def explain(user_id: UserId, state: State) -> dict:
    """Per-feature contributions to the log-odds (coefficient x standardised value), largest
    first; ``intercept`` + their sum equals ``logit`` exactly."""
    result = await state.explain(user_id)
    if result is None:
        raise HTTPException(404, await run_in_threadpool(state.not_found_detail, user_id))
    return result
