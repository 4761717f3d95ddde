"""Liveness, readiness and metrics: what a load balancer and Prometheus ask, without a key."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from service import metrics
from service.deps import ModelsDep
from service.schemas import Health
from service.store import ping

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    summary="Models are loaded and the decision log is writable",
    responses={
        503: {"model": Health, "description": "not ready: models or the decision log missing, or stopping"}
    },
)
def readyz(request: Request, models: ModelsDep) -> JSONResponse:
    state = request.app.state
    problems = {d: f"error: {e}" for d, e in models.errors.items()}
    engine = getattr(state, "engine", None)
    store_ok = engine is not None and ping(engine)
    if not store_ok:
        problems["decision_log"] = getattr(state, "store_error", None) or "unreachable"
    elif (writer := state.audit.log_writer) is not None and not writer.ping():
        store_ok = False
        problems["decision_log"] = "the decision-log writer does not answer"
    if getattr(state, "stopping", False):
        problems["service"] = "shutting down"
    ready = models.ready and store_ok and not getattr(state, "stopping", False)
    body = Health(
        status="ready" if ready else "not ready",
        models={d: s.version for d, s in models.scorers.items()} | problems,
    )
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def prometheus() -> Response:
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
