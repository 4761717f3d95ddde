"""Human review and inspection outcomes: each is its own chained record; a decision never changes."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from service import metrics
from service.schemas import OutcomeRequest, OutcomeResponse, ReviewRequest, ReviewResponse
from service.security import Officer
from service.store import AuditStore, DecisionNotFound, StoreUnavailable

router = APIRouter(prefix="/v1/decisions", tags=["decisions"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "the body cannot be decoded (not UTF-8 text)"},
    401: {"description": "missing, malformed or revoked API key"},
    403: {"description": "the key's role may not do this"},
    404: {"description": "no such decision"},
    422: {"description": "invalid body (an override needs a channel and a reason)"},
    503: {"description": "the decision log is unavailable; nothing was recorded"},
}


def _store(request: Request) -> AuditStore:
    store = getattr(request.app.state, "audit", None)
    if store is None:
        raise HTTPException(503, "the decision log is not available")
    return store


@router.post(
    "/{decision_id}/review",
    response_model=ReviewResponse,
    responses=_RESPONSES,
    summary="Confirm or override a decision's channel",
)
def review(decision_id: uuid.UUID, body: ReviewRequest, request: Request, who: Officer) -> ReviewResponse:
    store = _store(request)
    try:
        current = store.get_decision(decision_id)
        if current is None:
            raise DecisionNotFound(decision_id)
        channel: str = (body.channel or "") if body.action == "override" else current["effective_channel"]
        if body.action == "confirm" and body.channel not in (None, channel):
            raise HTTPException(
                422,
                [
                    {
                        "loc": ["body", "channel"],
                        "type": "value_error",
                        "msg": f"confirm names the current channel '{channel}'; use override",
                    }
                ],
            )
        appended = store.append_review(decision_id, who.name, body.action, channel, body.reason)
    except DecisionNotFound:
        raise HTTPException(404, f"no decision {decision_id}") from None
    except ValueError as exc:
        raise HTTPException(422, [{"loc": ["body"], "msg": str(exc), "type": "value_error"}]) from None
    except StoreUnavailable:
        metrics.AUDIT_ERRORS.labels("append_review").inc()
        raise HTTPException(503, "the decision log cannot be written; the review was not recorded") from None
    return ReviewResponse(
        review_id=appended.record_id,
        decision_id=str(decision_id),
        action=body.action,
        channel=channel,
        previous_channel=current["effective_channel"],
    )


@router.post(
    "/{decision_id}/outcome",
    response_model=OutcomeResponse,
    responses=_RESPONSES,
    summary="Record the result of the inspection",
)
def outcome(decision_id: uuid.UUID, body: OutcomeRequest, request: Request, who: Officer) -> OutcomeResponse:
    store = _store(request)
    try:
        appended = store.append_outcome(
            decision_id, who.name, body.finding, body.revenue_recovered, body.note
        )
    except DecisionNotFound:
        raise HTTPException(404, f"no decision {decision_id}") from None
    except ValueError as exc:
        raise HTTPException(422, [{"loc": ["body"], "msg": str(exc), "type": "value_error"}]) from None
    except StoreUnavailable:
        metrics.AUDIT_ERRORS.labels("append_outcome").inc()
        raise HTTPException(503, "the decision log cannot be written; the outcome was not recorded") from None
    return OutcomeResponse(outcome_id=appended.record_id, decision_id=str(decision_id), finding=body.finding)
