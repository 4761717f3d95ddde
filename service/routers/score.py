"""Scoring endpoints: one declaration or passenger record in, a decision with its explanation out.

Plain ``def`` endpoints: scoring is CPU work, and FastAPI runs sync endpoints in its thread pool
instead of blocking the event loop.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter

from features.schemas import CargoDeclaration, PassengerRecord
from service.deps import ModelsDep, scorer_for
from service.schemas import ScoreResponse

router = APIRouter(prefix="/v1", tags=["scoring"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"description": "invalid declaration: each bad field is named in `detail`"},
    503: {"description": "no model is loaded for this domain"},
}


def _decide(models: ModelsDep, domain: str, record: CargoDeclaration | PassengerRecord) -> ScoreResponse:
    scorer = scorer_for(models, domain)
    score, channel, explanation = scorer.score_record(record.model_dump())
    t = scorer.thresholds
    return ScoreResponse(
        decision_id=str(uuid.uuid4()),
        domain=domain,  # type: ignore[arg-type]
        model=scorer.model_info,  # type: ignore[arg-type]
        score=score,
        channel=channel,  # type: ignore[arg-type]
        thresholds={"yellow": t.yellow_score, "red": t.red_score},
        explanation=explanation,  # type: ignore[arg-type]
    )


@router.post(
    "/cargo/score", response_model=ScoreResponse, responses=_RESPONSES, summary="Score one cargo declaration"
)
def score_cargo(declaration: CargoDeclaration, models: ModelsDep) -> ScoreResponse:
    return _decide(models, "cargo", declaration)


@router.post(
    "/passenger/score",
    response_model=ScoreResponse,
    responses=_RESPONSES,
    summary="Score one passenger record",
)
def score_passenger(record: PassengerRecord, models: ModelsDep) -> ScoreResponse:
    return _decide(models, "passenger", record)
