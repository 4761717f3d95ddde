"""The FastAPI application: the decision log and the models are set up in the lifespan, never at
import time, and readiness says so only when both are there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from borderrisk.logging import configure_logging
from borderrisk.settings import Settings, get_settings
from service import errors
from service.middleware import RequestContext
from service.models_state import ServingModels
from service.routers import decisions, health, models, score
from service.security import annotate_roles
from service.store import AuditStore, KeyStore, make_engine, migrate

log = structlog.get_logger(__name__)

DESCRIPTION = """
Risk screening of cargo declarations and passenger records. **Decision support only**: every
selection is reviewed by a customs officer. Each response carries the calibrated score, the channel,
the selection reason and the exact SHAP explanation of the decision, which is logged — hash-chained —
before the response is sent.

Authenticate with `Authorization: Bearer <API key>`; each operation lists the roles it admits.
"""


def open_store(app: FastAPI, settings: Settings) -> None:
    """Connect and migrate the decision log; on failure the service runs but is not ready."""
    try:
        if settings.audit_url.startswith("sqlite"):
            settings.data_path.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.audit_url)
        migrate(engine)
    except Exception as exc:
        app.state.store_error = str(exc)
        log.error("decision_log_unavailable", error=str(exc))
        return
    app.state.engine = engine
    app.state.audit = AuditStore(engine)
    app.state.keys = KeyStore(engine, cache_ttl=settings.key_cache_ttl)


def create_app(settings: Settings | None = None, *, load_models: bool = True) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(open_store, app, settings)
        if load_models:
            await run_in_threadpool(app.state.models.load_all, settings)
        log.info("service_started", ready=app.state.models.ready, store=hasattr(app.state, "audit"))
        yield
        app.state.stopping = True  # /readyz answers 503 while in-flight requests finish
        engine = getattr(app.state, "engine", None)
        if engine is not None:
            engine.dispose()

    app = FastAPI(title="borderrisk", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.models = ServingModels()
    app.state.stopping = False
    errors.install(app)
    for router in (health.router, score.router, decisions.router, models.router):
        app.include_router(annotate_roles(router))
    app.add_middleware(RequestContext, max_body_bytes=settings.max_body_bytes)
    return app
