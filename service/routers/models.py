"""What is being served, and swapping in the registry's champion without dropping requests."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException

from service import metrics
from service.deps import ModelsDep, SettingsDep
from service.schemas import ModelInfo, ReloadResponse
from service.security import Admin, ModelReader

router = APIRouter(prefix="/v1/models", tags=["models"])

_AUTH: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing, malformed or revoked API key"},
    403: {"description": "the key's role may not do this"},
}


@router.get(
    "", response_model=list[ModelInfo], responses=_AUTH, summary="Models currently serving, one per domain"
)
def list_models(models: ModelsDep, who: ModelReader) -> list[ModelInfo]:
    out = []
    for domain, scorer in sorted(models.scorers.items()):
        meta = scorer.bundle.metadata
        t = scorer.thresholds
        out.append(
            ModelInfo(
                domain=domain,
                name=scorer.name,
                version=scorer.version,
                sha256=scorer.sha256,
                training_period=meta["training_period"],
                validation_period=meta["validation_period"],
                calibration=meta["calibration"],
                thresholds={
                    "yellow": t.yellow_score,
                    "red": t.red_score,
                    "yellow_share": t.yellow_share,
                    "red_share": t.red_share,
                },
                metrics={k: v for k, v in meta["metrics"].items() if v == v},
                features=meta["features"],
            )
        )
    return out


@router.post(
    "/{domain}/reload",
    response_model=ReloadResponse,
    responses={**_AUTH, 409: {"description": "the new model could not be loaded; the old one keeps serving"}},
    summary="Load the registry's champion beside the serving model and swap atomically",
)
def reload_model(
    domain: Literal["cargo", "passenger"], models: ModelsDep, settings: SettingsDep, who: Admin
) -> ReloadResponse:
    previous = models.get(domain)
    try:
        scorer = models.load(settings, domain)
    except Exception as exc:
        metrics.RELOADS.labels(domain, "failed").inc()
        serving = f"; still serving version {previous.version}" if previous else ""
        raise HTTPException(409, f"reload of the {domain} model failed: {exc}{serving}") from None
    metrics.RELOADS.labels(domain, "ok").inc()
    models.announce(settings, domain, scorer)  # the other workers follow (service.models_state)
    return ReloadResponse(
        domain=domain,
        name=scorer.name,
        version=scorer.version,
        sha256=scorer.sha256,
        previous_version=previous.version if previous else None,
    )
