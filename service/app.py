"""The FastAPI application: the decision log and the models are set up in the lifespan, never at
import time, and readiness says so only when both are there."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import FrameType

import structlog
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from borderrisk.logging import configure_logging
from borderrisk.settings import Settings, get_settings
from service import errors
from service.decision_queue import DecisionQueue
from service.middleware import RequestContext
from service.models_state import ServingModels
from service.routers import audit, decisions, health, models, oversight, score
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


#: Seconds between two attempts to open a decision log that could not be opened at start-up.
STORE_RETRY_SECONDS = 2.0
#: Seconds between two looks for a reload announced by another worker (service.models_state).
FOLLOW_SECONDS = 1.0


def open_store(app: FastAPI, settings: Settings) -> bool:
    """Connect and migrate the decision log; on failure the service runs but is not ready (False)."""
    engine = None
    try:
        if settings.audit_url.startswith("sqlite"):
            settings.data_path.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.audit_url)
        migrate(engine)
    except Exception as exc:
        if engine is not None:
            engine.dispose()
        app.state.store_error = str(exc)
        log.error("decision_log_unavailable", error=str(exc))
        return False
    app.state.engine = engine
    app.state.audit = AuditStore(engine, log_writer=settings.log_writer)
    app.state.keys = KeyStore(engine, cache_ttl=settings.key_cache_ttl)
    app.state.store_error = None
    return True


async def keep_opening_store(app: FastAPI, settings: Settings) -> None:
    """Try again until the decision log opens: a database that was down at start-up and comes back
    makes the service ready by itself, without a restart."""
    while True:
        await asyncio.sleep(STORE_RETRY_SECONDS)
        if await run_in_threadpool(open_store, app, settings):
            log.info("decision_log_available")
            return


async def follow_reloads(app: FastAPI, settings: Settings) -> None:
    """Serve what another worker's reload announced (one stat-and-read of a small file a poll)."""
    models: ServingModels = app.state.models
    while True:
        await asyncio.sleep(FOLLOW_SECONDS)
        try:
            await run_in_threadpool(models.follow, settings)
        except Exception as exc:  # never let the watcher die: the next poll tries again
            log.error("model_follow_error", error=repr(exc))


def flag_stopping_on_signals(app: FastAPI) -> Callable[[], None]:
    """Make ``state.stopping`` (and so /readyz's 503) start the moment SIGTERM or SIGINT arrives.

    uvicorn acts on the signal at its next tick (0.1 s later, more on a busy machine), and only then
    stops accepting connections; the lifespan's shutdown runs after the last connection has closed,
    when nobody can ask /readyz any more. So the server's own handler is wrapped (uvicorn installs it
    with ``signal.signal`` before the lifespan starts, in the main thread) and put back on shutdown.
    Returns the function that puts it back.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # not under a server (a test client's thread): no signals to chain
    previous: dict[int, Callable[[int, FrameType | None], object]] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        handler = signal.getsignal(sig)
        if not callable(handler):
            continue

        def on_signal(signum: int, frame: FrameType | None, _next=handler) -> None:
            app.state.stopping = True
            _next(signum, frame)

        previous[sig] = handler
        signal.signal(sig, on_signal)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def create_app(settings: Settings | None = None, *, load_models: bool = True) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.stopping = False  # a lifespan run again on the same app object starts ready to serve
        app.state.decisions = DecisionQueue()
        app.state.decisions.start()
        opened = await run_in_threadpool(open_store, app, settings)
        retry = None if opened else asyncio.create_task(keep_opening_store(app, settings))
        follower = None
        if load_models:
            await run_in_threadpool(app.state.models.load_all, settings)
            follower = asyncio.create_task(follow_reloads(app, settings))
        log.info("service_started", ready=app.state.models.ready, store=hasattr(app.state, "audit"))
        restore_signals = flag_stopping_on_signals(app)
        try:
            yield
        finally:
            app.state.stopping = True  # /readyz answers 503 while in-flight requests finish
            restore_signals()
            for task in (retry, follower):
                if task is not None:
                    task.cancel()
        # After the last request (uvicorn runs this once every connection has closed).
        await run_in_threadpool(app.state.decisions.stop)
        engine = getattr(app.state, "engine", None)
        if engine is not None:
            engine.dispose()

    app = FastAPI(title="borderrisk", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.models = ServingModels()
    app.state.decisions = DecisionQueue()  # each lifespan starts its own (a first one starts on use)
    app.state.stopping = False
    errors.install(app)
    for router in (health.router, score.router, decisions.router, audit.router, models.router):
        app.include_router(annotate_roles(router))
    oversight.install(app)  # the auditors' web pages (cookie sessions, not in the OpenAPI document)
    app.add_middleware(RequestContext, max_body_bytes=settings.max_body_bytes)
    return app
