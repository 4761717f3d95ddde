"""The oversight web pages: decisions, a decision with its waterfall chart, model cards and the
proportionality report. Server-rendered (Jinja2), no JavaScript; auditors only (see
``service.oversight.session``); every page view is recorded in the decision log before it is shown.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from features.schemas import Day
from service.oversight import session
from service.oversight.cards import model_card
from service.oversight.proportionality import frame_from_log, proportionality
from service.oversight.render import render
from service.oversight.session import AuditorPage, LoginRequired, PageError
from service.oversight.views import decision_view
from service.routers.audit import explanation_response, load_decision, store_of
from service.store import AuditStore, StoreUnavailable

router = APIRouter(prefix="/oversight", include_in_schema=False)
PAGE_SIZE = 50


def _html(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    body = render(template, request_path=request.url.path, **context)
    return HTMLResponse(
        body,
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
            "form-action 'self'; frame-ancestors 'none'",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        },
    )


def _store(request: Request) -> AuditStore:
    try:
        return store_of(request)
    except HTTPException:
        raise PageError(503, "Not available", "The decision log is not available.") from None


def _read(store: AuditStore, who: str, decision_id: Any, what: str) -> None:
    try:
        store.append_read(who, decision_id, what)
    except StoreUnavailable:
        raise PageError(
            503,
            "Not recorded",
            "This page view could not be recorded in the decision log, so it is not shown.",
        ) from None


def _day(value: date | None, end: bool = False) -> datetime | None:
    if value is None:
        return None
    start = datetime.combine(value, time(0), tzinfo=UTC)
    return start + timedelta(days=1) if end else start


# ----------------------------------------------------------------------------- sign in / out


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
def home() -> Response:
    return RedirectResponse("/oversight/decisions", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    return _html(request, "oversight/login.html", next=session.safe_next(next), error=None)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request, api_key: Annotated[str, Form(max_length=200)], next: Annotated[str, Form()] = ""
) -> Response:
    keys = getattr(request.app.state, "keys", None)
    if keys is None:
        raise PageError(503, "Not available", "The key store is not available yet.")
    try:
        principal = keys.authenticate(api_key.strip())
    except StoreUnavailable:
        raise PageError(503, "Not available", "The key store is unavailable.") from None
    if principal is None:
        return _html(
            request,
            "oversight/login.html",
            401,
            next=session.safe_next(next),
            error="Invalid or revoked API key.",
        )
    if principal.role != "auditor":
        raise PageError(
            403,
            "Not allowed",
            f"The oversight pages are for auditors; role '{principal.role}' may not read them.",
        )
    response = RedirectResponse(session.safe_next(next), status_code=303)
    session.set_session(request, response, principal)
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/oversight/login", status_code=303)
    session.clear_session(response)
    return response


# ----------------------------------------------------------------------------- decisions


@router.get("/decisions", response_class=HTMLResponse)
def decisions_page(
    request: Request,
    who: AuditorPage,
    domain: Literal["cargo", "passenger", ""] = "",
    since: Day | None = None,
    until: Day | None = Query(None, description="last day included"),
    channel: Literal["green", "yellow", "red", ""] = "",
    selection: Literal["random", "risk", "none", ""] = "",
    reviewed: Literal["yes", "no", ""] = "",
    model_version: Annotated[str, Query(max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$")] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    store = _store(request)
    filters: dict[str, Any] = {
        "domain": domain or None,
        "since": _day(since),
        "until": _day(until, end=True),
        "channel": channel or None,
        "selection": selection or None,
        "reviewed": {"yes": True, "no": False}.get(reviewed),
        "model_version": model_version or None,
    }
    form = {
        "domain": domain,
        "since": since.isoformat() if since else "",
        "until": until.isoformat() if until else "",
        "channel": channel,
        "selection": selection,
        "reviewed": reviewed,
        "model_version": model_version,
    }
    shown = ", ".join(f"{k}={v}" for k, v in form.items() if v)
    _read(store, who.name, None, f"page: decision list ({shown or 'no filter'}; page {page})")
    try:
        items, total = store.list_decisions(**filters, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    except StoreUnavailable:
        raise PageError(503, "Not available", "The decision log is unavailable.") from None
    query = {k: v for k, v in form.items() if v}
    pages = max(1, -(-total // PAGE_SIZE))
    return _html(
        request,
        "oversight/decisions.html",
        who=who,
        items=items,
        total=total,
        page=page,
        pages=pages,
        form=form,
        prev_url=f"?{urlencode({**query, 'page': page - 1})}" if page > 1 else None,
        next_url=f"?{urlencode({**query, 'page': page + 1})}" if page < pages else None,
    )


@router.get("/decisions/{decision_id}", response_class=HTMLResponse)
def decision_page(decision_id: uuid.UUID, request: Request, who: AuditorPage) -> HTMLResponse:
    store = _store(request)
    try:
        decision = load_decision(store, decision_id)
    except HTTPException as exc:
        raise PageError(exc.status_code, "No such decision", str(exc.detail)) from None
    _read(store, who.name, decision_id, "page: decision")
    return _html(request, "oversight/decision.html", who=who, v=decision_view(decision))


@router.get("/decisions/{decision_id}/explanation.{fmt}")
def explanation_page(
    decision_id: uuid.UUID, fmt: Literal["html", "pdf"], request: Request, who: AuditorPage
) -> Response:
    store = _store(request)
    try:
        decision = load_decision(store, decision_id)
    except HTTPException as exc:
        raise PageError(exc.status_code, "No such decision", str(exc.detail)) from None
    _read(store, who.name, decision_id, f"page: explanation for the person concerned ({fmt})")
    try:
        return explanation_response(decision, fmt, f"decision-{decision_id}")
    except HTTPException as exc:
        raise PageError(exc.status_code, "Not available", str(exc.detail)) from None


# ----------------------------------------------------------------------------- models


@router.get("/models", response_class=HTMLResponse)
def models_page(request: Request, who: AuditorPage) -> Response:
    state = request.app.state
    serving = [
        {"domain": d, "name": s.name, "version": s.version, "sha256": s.sha256}
        for d, s in sorted(state.models.scorers.items())
    ]
    _read(_store(request), who.name, None, "page: models")
    return _html(request, "oversight/models.html", who=who, serving=serving)


@router.get("/models/{domain}/{version}", response_class=HTMLResponse)
async def model_page(
    domain: Literal["cargo", "passenger"],
    version: Annotated[str, Path(max_length=100, pattern=r"^[0-9]+$")],
    request: Request,
    who: AuditorPage,
) -> HTMLResponse:
    card = await run_in_threadpool(model_card, request.app.state, domain, version)
    if card is None:
        raise PageError(404, "No such model", f"No {domain} model version {version} in the registry.")
    await run_in_threadpool(
        _read, _store(request), who.name, None, f"page: model card {card['name']} v{version}"
    )
    return _html(request, "oversight/model.html", who=who, card=card)


# ----------------------------------------------------------------------------- proportionality


def proportionality_report(
    store: AuditStore,
    app_state: Any,
    domain: str,
    since: datetime | None,
    until: datetime | None,
    bound: float,
    min_group: int,
) -> dict[str, Any]:
    frame = frame_from_log(store, domain, since, until)
    scorer = app_state.models.get(domain) if app_state is not None else None
    report = proportionality(
        frame,
        domain,
        bound=bound,
        min_group=min_group,
        bundle=scorer.bundle if scorer is not None else None,
        model_version=scorer.version if scorer is not None else None,
    )
    report["since"], report["until"] = since, until
    report["period"] = period_label(since, until)
    report["source"] = "from the decision log"
    return report


def period_label(since: datetime | None, until: datetime | None) -> str:
    first = since.strftime("%Y-%m-%d") if since else "the first decision"
    last = (until - timedelta(microseconds=1)).strftime("%Y-%m-%d") if until else "now"
    return f"{first} to {last}"


@router.get("/proportionality", response_class=HTMLResponse)
def proportionality_page(
    request: Request,
    who: AuditorPage,
    domain: Literal["cargo", "passenger"] = "passenger",
    since: Day | None = None,
    until: Day | None = Query(None, description="last day included"),
    bound: Annotated[float | None, Query(gt=1, le=10)] = None,
) -> HTMLResponse:
    settings = request.app.state.settings
    store = _store(request)
    bound = bound or settings.oversight_ratio_bound
    period = f"{since or 'start'}..{until or 'now'}"
    _read(store, who.name, None, f"page: proportionality {domain} {period} (bound {bound:g})")
    try:
        report = proportionality_report(
            store,
            request.app.state,
            domain,
            _day(since),
            _day(until, end=True),
            bound,
            settings.oversight_min_group,
        )
    except StoreUnavailable:
        raise PageError(503, "Not available", "The decision log is unavailable.") from None
    form = {"domain": domain, "since": since or "", "until": until or "", "bound": bound}
    return _html(request, "oversight/proportionality.html", who=who, r=report, form=form, standalone=False)


# ----------------------------------------------------------------------------- errors


def install(app: FastAPI) -> None:
    """Add the pages and their HTML error handling to the app."""
    app.include_router(router)

    async def page_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        return _html(
            request,
            "oversight/error.html",
            exc.status,
            title=exc.title,
            message=exc.message,
            login_url=session.login_url(request.url.path),
        )

    async def login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return RedirectResponse(session.login_url(exc.next_url), status_code=303)

    app.add_exception_handler(PageError, page_error)
    app.add_exception_handler(LoginRequired, login_required)
