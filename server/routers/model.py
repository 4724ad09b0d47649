"""GET /v1/model: what the workers serve (defaults, cache policies and their knobs) and this server's limits,
from the model profile the workers publish, so clients can fill forms and check requests before submitting."""

from __future__ import annotations

from pathlib import PurePath

from fastapi import APIRouter, Depends, HTTPException, status

from .. import limits
from ..auth import owner
from ..deps import Clients, clients
from ..schemas import Limits, ModelInfo

router = APIRouter(prefix="/v1", tags=["model"])


@router.get("/model", response_model=ModelInfo, responses={503: {"description": "no worker has started yet"}})
def model_info(_: str = Depends(owner), c: Clients = Depends(clients)) -> ModelInfo:
    profile = limits.load_profile(c.redis)
    if profile is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no worker has published its model yet: start one")
    s = c.settings
    return ModelInfo(model=PurePath(profile.get("model", "")).name, defaults=profile["defaults"],
                     policies=profile.get("policies") or {},
                     limits=Limits(max_frames=s.max_frames, max_pixels=s.max_pixels, max_steps=s.max_steps,
                                   max_prompt_length=s.max_prompt_length))
