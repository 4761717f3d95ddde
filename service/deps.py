"""FastAPI dependencies, as ``Annotated`` aliases.

They only read attributes of the application, so they are ``async def``: FastAPI runs a plain
``def`` dependency in its thread pool, and three such hops before every scoring request cost more
than the model does.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from borderrisk.settings import Settings
from models.scoring import Scorer
from service.models_state import ServingModels


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_models(request: Request) -> ServingModels:
    return request.app.state.models


SettingsDep = Annotated[Settings, Depends(get_settings)]
ModelsDep = Annotated[ServingModels, Depends(get_models)]


def scorer_for(models: ServingModels, domain: str) -> Scorer:
    scorer = models.get(domain)
    if scorer is None:
        reason = models.errors.get(domain, "not loaded yet")
        raise HTTPException(status_code=503, detail=f"no {domain} model is being served: {reason}")
    return scorer
