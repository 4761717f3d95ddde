"""What is being served: model name, version, hash, training period, metrics."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import ModelsDep
from service.schemas import ModelInfo

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.get("", response_model=list[ModelInfo], summary="Models currently serving, one per domain")
def list_models(models: ModelsDep) -> list[ModelInfo]:
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
