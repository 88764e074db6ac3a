"""``Annotated`` dependency aliases shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from churn.serving.schemas import MAX_USER_ID
from churn.serving.security import require_admin_key
from churn.serving.service import ServingState
from churn.serving.settings import Settings


# async on purpose: FastAPI runs plain ``def`` dependencies in the thread pool (~50 us each)
async def get_state(request: Request) -> ServingState:
    return request.app.state.serving


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


State = Annotated[ServingState, Depends(get_state)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
UserId = Annotated[int, Path(ge=0, le=MAX_USER_ID, description="the user's integer id", examples=[42])]
AdminKey = Depends(require_admin_key)
