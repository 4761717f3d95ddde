"""API keys and roles.

Every endpoint states the roles it admits through an :class:`Auth` dependency; a missing, malformed
or revoked key gets 401, a valid key of the wrong role 403. Keys are looked up by their public id and
compared by hash in constant time (``KeyStore.authenticate``). ``annotate_roles`` copies each route's
roles into the OpenAPI document (``x-roles``), so the route table is the single source of truth that
the docs and the access-matrix tests read.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from service.store import Principal, StoreUnavailable

ROLES = ("officer", "analyst", "auditor", "admin")
PUBLIC = "public"


def presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else ""
    return request.headers.get("x-api-key")


class Auth:
    """Dependency: the caller's principal, if its key is valid and its role is one of ``roles``."""

    def __init__(self, *roles: str) -> None:
        unknown = set(roles) - set(ROLES)
        if unknown or not roles:
            raise ValueError(f"unknown or no roles: {sorted(unknown)}")
        self.roles = roles

    async def __call__(self, request: Request) -> Principal:
        # async: a cached key is checked on the event loop (a hash and a dict look-up); only a
        # cache miss, which reads the database, goes to the thread pool.
        key = presented_key(request)
        challenge = {"WWW-Authenticate": 'Bearer realm="borderrisk"'}
        if key is None:
            raise HTTPException(401, "missing API key: send 'Authorization: Bearer <key>'", headers=challenge)
        keys = getattr(request.app.state, "keys", None)
        if keys is None:
            raise HTTPException(503, "the key store is not available yet")
        try:
            known, principal = keys.authenticate_cached(key)
            if not known:
                principal = await run_in_threadpool(keys.authenticate, key)
        except StoreUnavailable as exc:
            raise HTTPException(503, f"the key store is unavailable: {exc}") from None
        if principal is None:
            raise HTTPException(401, "invalid or revoked API key", headers=challenge)
        if principal.role not in self.roles:
            raise HTTPException(
                403, f"role '{principal.role}' may not use this endpoint (needs: {', '.join(self.roles)})"
            )
        request.state.principal = principal
        return principal


Officer = Annotated[Principal, Depends(Auth("officer"))]
Analyst = Annotated[Principal, Depends(Auth("analyst"))]
Auditor = Annotated[Principal, Depends(Auth("auditor"))]
Admin = Annotated[Principal, Depends(Auth("admin"))]
ModelReader = Annotated[Principal, Depends(Auth("analyst", "auditor", "admin"))]


def route_roles(route: APIRoute) -> tuple[str, ...]:
    """The roles a route admits, read from its dependency tree; ``("public",)`` when it has none."""
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, Auth):
            return dep.call.roles
        stack.extend(dep.dependencies)
    return (PUBLIC,)


def annotate_roles(router: APIRouter) -> APIRouter:
    """Write each route's roles into its OpenAPI operation (``x-roles``) and description.

    Called on each router before it is included, since an app's included routers are resolved lazily.
    """
    for route in router.routes:
        if isinstance(route, APIRoute):
            roles = route_roles(route)
            route.openapi_extra = {**(route.openapi_extra or {}), "x-roles": list(roles)}
            who = "no key needed" if roles == (PUBLIC,) else "roles: " + ", ".join(roles)
            route.description = f"{route.description}\n\n**Access:** {who}".strip()
    return router
