"""Auditor sessions for the oversight pages.

An auditor signs in once with an API key; the page then keeps a session cookie that is signed with
``BORDERRISK_SESSION_SECRET`` (itsdangerous, with a timestamp: it expires after
``BORDERRISK_OVERSIGHT_SESSION_HOURS``), ``HttpOnly`` (no script can read it), ``SameSite=Strict``
(no other site can send it) and, outside dev and test, ``Secure``. The cookie holds the key's public
id and name, never the key: every page re-checks that the key is still active and an auditor's, so
revoking the key ends the session. Scripts may send the API key instead (``Authorization: Bearer``);
any other role gets 403.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from fastapi.responses import Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from service.security import presented_key
from service.store import Principal, StoreUnavailable

COOKIE = "borderrisk_oversight"
COOKIE_PATH = "/oversight"
SALT = "borderrisk-oversight-session"


class PageError(Exception):
    """An error shown as an HTML page (with a link to sign in where that helps)."""

    def __init__(self, status: int, title: str, message: str, login: bool = False) -> None:
        super().__init__(message)
        self.status, self.title, self.message, self.login = status, title, message, login


class LoginRequired(Exception):
    """No (valid) session: the browser is sent to the sign-in page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def _serializer(request: Request) -> URLSafeTimedSerializer:
    secret = request.app.state.settings.session_secret.get_secret_value()
    return URLSafeTimedSerializer(secret, salt=SALT)


def _max_age(request: Request) -> int:
    return int(request.app.state.settings.oversight_session_hours * 3600)


def set_session(request: Request, response: Response, principal: Principal) -> None:
    token = _serializer(request).dumps({"kid": principal.key_id, "name": principal.name})
    settings = request.app.state.settings
    response.set_cookie(
        COOKIE,
        token,
        max_age=_max_age(request),
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=settings.env == "prod",
    )


def clear_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")


def _keys(request: Request):
    keys = getattr(request.app.state, "keys", None)
    if keys is None:
        raise PageError(503, "Not available", "The key store is not available yet.")
    return keys


def _require_auditor(principal: Principal) -> Principal:
    if principal.role != "auditor":
        raise PageError(
            403,
            "Not allowed",
            f"The oversight pages are for auditors; role '{principal.role}' may not read them.",
        )
    return principal


def auditor_page(request: Request) -> Principal:
    """Dependency of every oversight page: the signed-in auditor (or 403, or off to sign in)."""
    key = presented_key(request)
    try:
        if key is not None:
            principal = _keys(request).authenticate(key)
            if principal is None:
                raise HTTPException(
                    401,
                    "invalid or revoked API key",
                    headers={"WWW-Authenticate": 'Bearer realm="borderrisk"'},
                )
            return _require_auditor(principal)
        token = request.cookies.get(COOKIE)
        next_url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if not token:
            raise LoginRequired(next_url)
        try:
            data = _serializer(request).loads(token, max_age=_max_age(request))
        except BadSignature:
            raise LoginRequired(next_url) from None
        principal = _keys(request).principal(str(data.get("kid", "")))
        if principal is None or principal.name != data.get("name"):
            raise LoginRequired(next_url)
        return _require_auditor(principal)
    except StoreUnavailable as exc:
        raise PageError(503, "Not available", f"The key store is unavailable: {exc}") from None


AuditorPage = Annotated[Principal, Depends(auditor_page)]


def login_url(next_url: str) -> str:
    return f"{COOKIE_PATH}/login?next={quote(next_url, safe='')}"


def safe_next(next_url: str | None) -> str:
    """Only a path inside the oversight pages (never another site) after signing in."""
    if next_url and next_url.startswith(COOKIE_PATH + "/") and not next_url.startswith("//"):
        return next_url
    return COOKIE_PATH + "/decisions"
