"""FastAPI dependencies, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from borderrisk.settings import Settings
from models.scoring import Scorer
from service.models_state import ServingModels


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_models(request: Request) -> ServingModels:
    return request.app.state.models


SettingsDep = Annotated[Settings, Depends(get_settings)]
ModelsDep = Annotated[ServingModels, Depends(get_models)]


def scorer_for(models: ServingModels, domain: str) -> Scorer:
    scorer = models.get(domain)
    if scorer is None:
        reason = models.errors.get(domain, "not loaded yet")
        raise HTTPException(status_code=503, detail=f"no {domain} model is being served: {reason}")
    return scorer
