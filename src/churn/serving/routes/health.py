"""``GET /health``: Redis, warehouse, model, cache hit rate, uptime."""

from __future__ import annotations

from fastapi import APIRouter

from churn.serving.deps import State
from churn.serving.schemas import HealthOut

router = APIRouter(prefix="/health", tags=["health"])


@router.get("", response_model=HealthOut, summary="Service health")
def health(state: State) -> dict:
    """``ok`` when Redis, the warehouse snapshot and a production model are all there;
    ``degraded`` otherwise (predictions may still be served, e.g. from the offline store)."""
    return state.health()
