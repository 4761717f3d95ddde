"""Scoring endpoints: declarations in, logged decisions with their explanations out.

No CPU work of a decision runs on the event loop. A single record is handed to the worker's decision
thread (:mod:`service.decision_queue`, which decides the records that arrive together as one batch)
and awaited; a batch request is a plain ``def`` endpoint, which FastAPI runs in its thread pool.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel

from features.schemas import CargoDeclaration, PassengerRecord
from service.decision_queue import DecisionQueue
from service.decisions import COMPACT_WORDED, LOG_NOT_OPEN, ExplanationForm, decide
from service.deps import ModelsDep, SettingsDep, scorer_for
from service.schemas import BatchResponse, CargoBatch, PassengerBatch, ScoreResponse
from service.security import Officer

router = APIRouter(prefix="/v1", tags=["scoring"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "the body cannot be decoded (not UTF-8 text)"},
    401: {"description": "missing, malformed or revoked API key"},
    403: {"description": "the key's role may not score"},
    413: {"description": "request body over BORDERRISK_MAX_BODY_BYTES"},
    422: {"description": "invalid declaration: each bad field is named in `detail`"},
    503: {
        "description": (
            "no model is loaded, the decision log cannot be written, or the service is stopping: no score "
            "is returned unlogged (a decision not confirmed in time may still be in the log)"
        )
    },
}


def _json(body: dict) -> Response:
    """The decision as built (plain floats and strings), encoded once by orjson.

    The body already has the documented shape (``response_model`` documents it); returning a
    Response skips FastAPI re-validating the ~50 contributions of every explanation.
    """
    return Response(orjson.dumps(body), media_type="application/json")


async def _one(
    request: Request, models: ModelsDep, settings: SettingsDep, officer: str, domain: str, record: BaseModel
) -> Response:
    scorer = scorer_for(models, domain)
    store = getattr(request.app.state, "audit", None)
    if store is None:
        raise HTTPException(503, LOG_NOT_OPEN)
    queue: DecisionQueue = request.app.state.decisions
    body = await queue.decide(store, scorer, domain, officer, record, settings.random_share)
    return Response(body, media_type="application/json")


#: The batch endpoints' choice of explanation: every contribution worded, or the largest few.
ExplanationQuery = Annotated[
    ExplanationForm,
    Query(
        description=(
            "`full`: every contribution with its label, value and reason (as the single endpoint). "
            f"`compact`: the {COMPACT_WORDED} largest so, and every other feature's exact contribution "
            "by name under `remaining` — the same numbers, a quarter of the bytes, for file-scale "
            "batches. The decision log keeps the explanation returned."
        )
    ),
]


def _batch(
    request: Request,
    models: ModelsDep,
    settings: SettingsDep,
    officer: str,
    domain: str,
    items,
    explanation: ExplanationForm,
) -> Response:
    if len(items) > settings.batch_max:
        field = "declarations" if domain == "cargo" else "records"
        raise HTTPException(
            422,
            [
                {
                    "loc": ["body", field],
                    "msg": f"at most {settings.batch_max} items per batch (got {len(items)})",
                    "type": "too_long",
                }
            ],
        )
    scorer = scorer_for(models, domain)
    store = getattr(request.app.state, "audit", None)
    records = [item.model_dump() for item in items]
    decisions = decide(store, scorer, domain, officer, records, settings.random_share, explanation)
    return _json({"decisions": decisions})


@router.post(
    "/cargo/score", response_model=ScoreResponse, responses=_RESPONSES, summary="Score one cargo declaration"
)
async def score_cargo(
    declaration: CargoDeclaration, request: Request, models: ModelsDep, settings: SettingsDep, who: Officer
) -> Response:
    return await _one(request, models, settings, who.name, "cargo", declaration)


@router.post(
    "/passenger/score",
    response_model=ScoreResponse,
    responses=_RESPONSES,
    summary="Score one passenger record",
)
async def score_passenger(
    record: PassengerRecord, request: Request, models: ModelsDep, settings: SettingsDep, who: Officer
) -> Response:
    return await _one(request, models, settings, who.name, "passenger", record)


@router.post(
    "/cargo/score/batch",
    response_model=BatchResponse,
    responses=_RESPONSES,
    summary="Score a batch of cargo declarations (logged in one transaction)",
)
def score_cargo_batch(
    batch: CargoBatch,
    request: Request,
    models: ModelsDep,
    settings: SettingsDep,
    who: Officer,
    explanation: ExplanationQuery = "full",
) -> Response:
    return _batch(request, models, settings, who.name, "cargo", batch.declarations, explanation)


@router.post(
    "/passenger/score/batch",
    response_model=BatchResponse,
    responses=_RESPONSES,
    summary="Score a batch of passenger records (logged in one transaction)",
)
def score_passenger_batch(
    batch: PassengerBatch,
    request: Request,
    models: ModelsDep,
    settings: SettingsDep,
    who: Officer,
    explanation: ExplanationQuery = "full",
) -> Response:
    return _batch(request, models, settings, who.name, "passenger", batch.records, explanation)
