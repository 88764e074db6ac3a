"""``Annotated`` dependency aliases shared by the routers."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from pydantic import BeforeValidator

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
_CANONICAL_ID = re.compile(r"0|[1-9][0-9]*")


def canonical_id(value: Any) -> Any:
    """Only plain decimal digits: ``0005``, ``+5``, ``1_0`` or `` 5`` would all parse as an int
    (and name the same user in several ways), so they are refused."""
    if isinstance(value, str) and not _CANONICAL_ID.fullmatch(value):
        raise ValueError("user ids are plain decimal digits (no sign, leading zeros, spaces or separators)")
    return value


# Path first: after a validator FastAPI would write the bounds as non-standard "ge"/"le" keys
UserId = Annotated[int, Path(ge=0, le=MAX_USER_ID, description="the user's integer id", examples=[42]),
                   BeforeValidator(canonical_id)]
AdminKey = Depends(require_admin_key)
