"""Liveness and readiness: what a load balancer asks before sending traffic."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.deps import ModelsDep
from service.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    summary="Models are loaded and the service can score",
    responses={503: {"model": Health, "description": "not ready: models missing"}},
)
def readyz(models: ModelsDep) -> JSONResponse:
    body = Health(
        status="ready" if models.ready else "not ready",
        models={d: s.version for d, s in models.scorers.items()}
        | {d: f"error: {e}" for d, e in models.errors.items()},
    )
    return JSONResponse(body.model_dump(), status_code=200 if models.ready else 503)
