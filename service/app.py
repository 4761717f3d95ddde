"""The FastAPI application: models load in the lifespan, never at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from borderrisk.logging import configure_logging
from borderrisk.settings import Settings, get_settings
from service import errors
from service.models_state import ServingModels
from service.routers import health, models, score

DESCRIPTION = """
Risk screening of cargo declarations and passenger records. **Decision support only**: every
selection is reviewed by a customs officer. Each response carries the calibrated score, the channel
and the exact SHAP explanation of the decision.
"""


def create_app(settings: Settings | None = None, *, load_models: bool = True) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if load_models:
            await run_in_threadpool(app.state.models.load_all, settings)
        yield

    app = FastAPI(title="borderrisk", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.models = ServingModels()
    errors.install(app)
    app.include_router(health.router)
    app.include_router(score.router)
    app.include_router(models.router)
    return app
