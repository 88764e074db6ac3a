"""``/cache``: refill or empty the online store (admin key required; POST only: they change state,
so a crawler, a prefetching browser or an ``<img src>`` can never trigger them)."""

from __future__ import annotations

from fastapi import APIRouter

from churn.serving.deps import AdminKey, State
from churn.serving.schemas import CacheClearOut, CacheSyncOut, ErrorOut

router = APIRouter(prefix="/cache", tags=["cache (admin)"], dependencies=[AdminKey], responses={
    401: {"model": ErrorOut, "description": "missing X-API-Key"},
    403: {"model": ErrorOut, "description": "wrong key, or no admin key configured"},
    503: {"model": ErrorOut, "description": "Redis or the warehouse unavailable"}})


@router.post("/sync", response_model=CacheSyncOut, summary="Refill the online store", operation_id="cache_sync")
def sync(state: State) -> dict:
    """Replace the online store with every user's latest vector from the offline store; the
    hit/miss counters restart."""
    return state.sync_cache()


@router.post("/clear", response_model=CacheClearOut, summary="Empty the online store", operation_id="cache_clear")
def clear(state: State) -> dict:
    """Delete every cached vector of the served feature set (lookups fall back to the warehouse)."""
    return state.clear_cache()
