"""Reading the decision log, for auditors: why was this selected, which model did it, who reviewed it.

Every read is itself recorded in the hash-chained log (``AuditStore.append_read``: who, which
decision or which listing, when) *before* the answer is sent; if that record cannot be written the
auditor gets 503 and no data.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from features.schemas import IsoDateTime
from service import metrics
from service.oversight.render import PdfUnavailable, html_to_pdf, render
from service.oversight.views import decision_view
from service.schemas import Explanation, ModelRef
from service.security import Auditor
from service.store import AuditStore, StoreUnavailable

router = APIRouter(prefix="/v1/decisions", tags=["audit"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing, malformed or revoked API key"},
    403: {"description": "only auditors read the decision log"},
    503: {"description": "the decision log is unavailable, or this read could not be recorded"},
}


class DecisionSummary(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    decision_id: str
    created_at: datetime
    domain: Literal["cargo", "passenger"]
    officer: str = Field(description="the key (person or system) that asked for the score")
    model_name: str
    model_version: str
    score: float
    channel: Literal["green", "yellow", "red"]
    selection: Literal["random", "risk", "none"]
    reviewed: bool


class DecisionPage(BaseModel):
    total: int = Field(description="decisions matching the filters")
    limit: int
    offset: int
    items: list[DecisionSummary]


class PlainLanguage(BaseModel):
    selection: str = Field(description="why it was (not) selected for inspection")
    score: str
    review: str
    reasons: list[str] = Field(description="the main reasons, largest first")


class Review(BaseModel):
    review_id: str
    created_at: datetime
    officer: str
    action: str
    channel: str
    reason: str


class Outcome(BaseModel):
    outcome_id: str
    created_at: datetime
    officer: str
    finding: bool
    revenue_recovered: float | None
    note: str | None
    note_masked: bool


class DecisionDetail(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    decision_id: str
    created_at: datetime
    domain: Literal["cargo", "passenger"]
    officer: str
    model: ModelRef
    model_card: str = Field(description="the model card page of the model version that decided")
    input: dict[str, Any] = Field(description="the record as scored (personal fields included until masked)")
    personal_masked: bool = Field(description="personal fields were removed by the retention period")
    score: float
    channel: Literal["green", "yellow", "red"] = Field(description="the model's channel")
    effective_channel: Literal["green", "yellow", "red"] = Field(description="after officers' reviews")
    selection: Literal["random", "risk", "none"]
    selected_for_inspection: bool
    thresholds: dict[str, float]
    explanation: Explanation
    plain_language: PlainLanguage
    reviews: list[Review]
    outcomes: list[Outcome]
    ledger_seq: int
    hash: str = Field(description="the decision's record hash in the chain")


def store_of(request: Request) -> AuditStore:
    store = getattr(request.app.state, "audit", None)
    if store is None:
        raise HTTPException(503, "the decision log is not available")
    return store


def record_read(store: AuditStore, who: str, decision_id: Any, what: str) -> None:
    """Log the read first; no record, no data."""
    try:
        store.append_read(who, decision_id, what)
    except StoreUnavailable:
        metrics.AUDIT_ERRORS.labels("append_read").inc()
        raise HTTPException(
            503, "this read could not be recorded in the decision log; nothing is shown"
        ) from None


def load_decision(store: AuditStore, decision_id: uuid.UUID | str) -> dict[str, Any]:
    try:
        decision = store.get_decision(decision_id)
    except StoreUnavailable:
        raise HTTPException(503, "the decision log is unavailable") from None
    if decision is None:
        raise HTTPException(404, f"no decision {decision_id} (unknown, or removed by retention)")
    return decision


def detail(decision: dict[str, Any]) -> dict[str, Any]:
    view = decision_view(decision)
    return {
        **{k: decision[k] for k in ("decision_id", "created_at", "domain", "officer", "model", "score")},
        **{k: decision[k] for k in ("channel", "effective_channel", "selection", "thresholds")},
        **{k: decision[k] for k in ("explanation", "reviews", "outcomes", "ledger_seq", "hash")},
        "model_card": view["model_url"],
        "input": {**decision["input_public"], **(decision["input_personal"] or {})},
        "personal_masked": decision["personal_masked"],
        "selected_for_inspection": view["selected"],
        "plain_language": {
            "selection": view["selection_sentence"],
            "score": view["score_sentence"],
            "review": view["review_sentence"],
            "reasons": [r["sentence"] for r in view["reasons"]],
        },
    }


def explanation_response(decision: dict[str, Any], fmt: str, filename: str) -> Response:
    html = render("oversight/explanation.html", v=decision_view(decision, top=8))
    if fmt == "pdf":
        try:
            pdf = html_to_pdf(html)
        except PdfUnavailable as exc:
            raise HTTPException(501, str(exc)) from None
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{filename}.pdf"'},
        )
    return HTMLResponse(html, headers={"Content-Disposition": f'inline; filename="{filename}.html"'})


@router.get("", response_model=DecisionPage, responses=_RESPONSES, summary="List logged decisions")
def list_decisions(
    request: Request,
    who: Auditor,
    domain: Literal["cargo", "passenger"] | None = None,
    since: IsoDateTime | None = Query(None, description="from this instant (inclusive, with a time zone)"),
    until: IsoDateTime | None = Query(None, description="before this instant"),
    channel: Literal["green", "yellow", "red"] | None = None,
    selection: Literal["random", "risk", "none"] | None = Query(None, description="the selection reason"),
    reviewed: bool | None = Query(None, description="reviewed by an officer, or not"),
    model_version: str | None = Query(None, max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$"),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
) -> dict[str, Any]:
    store = store_of(request)
    filters: dict[str, Any] = {
        "domain": domain,
        "since": since,
        "until": until,
        "channel": channel,
        "selection": selection,
        "reviewed": reviewed,
        "model_version": model_version,
    }
    for name in ("since", "until"):
        value = filters[name]
        if value is not None and value.tzinfo is None:
            raise HTTPException(
                422, [{"loc": ["query", name], "msg": "needs a time zone", "type": "value_error"}]
            )
    shown = ", ".join(
        f"{k}={v.isoformat() if hasattr(v, 'isoformat') else v}" for k, v in filters.items() if v is not None
    )
    record_read(store, who.name, None, f"api: list decisions ({shown or 'no filter'}; offset {offset})")
    try:
        items, total = store.list_decisions(**filters, limit=limit, offset=offset)
    except StoreUnavailable:
        raise HTTPException(503, "the decision log is unavailable") from None
    return {"total": total, "limit": limit, "offset": offset, "items": items}


@router.get(
    "/{decision_id}",
    response_model=DecisionDetail,
    responses={**_RESPONSES, 404: {"description": "no such decision (or removed by retention)"}},
    summary="One decision: input, score, channel, full explanation in numbers and words, review trail",
)
def get_decision(decision_id: uuid.UUID, request: Request, who: Auditor) -> dict[str, Any]:
    store = store_of(request)
    decision = load_decision(store, decision_id)
    record_read(store, who.name, decision_id, "api: decision detail")
    return detail(decision)


@router.get(
    "/{decision_id}/explanation",
    responses={
        **_RESPONSES,
        200: {"content": {"text/html": {}, "application/pdf": {}}, "description": "the explanation page"},
        404: {"description": "no such decision"},
        501: {"description": "PDF asked for but no headless browser is installed"},
    },
    response_class=HTMLResponse,
    summary="The explanation for the person concerned, as a self-contained HTML page or a PDF",
)
def explanation(
    decision_id: uuid.UUID,
    request: Request,
    who: Auditor,
    format: Literal["html", "pdf"] = "html",
) -> Response:
    store = store_of(request)
    decision = load_decision(store, decision_id)
    record_read(store, who.name, decision_id, f"api: explanation for the person concerned ({format})")
    return explanation_response(decision, format, f"decision-{decision_id}")
