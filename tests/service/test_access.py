"""Who may call what: the full matrix, generated from the route table (the OpenAPI ``x-roles``),
so that a new endpoint cannot be forgotten."""

from __future__ import annotations

import pytest

from tests.conftest import ROLES, auth, record_of

KEY_KINDS = ("none", "malformed", "revoked", *ROLES)


def _operations(client) -> list[tuple[str, str, list[str]]]:
    spec = client.get("/openapi.json").json()
    return [
        (method.upper(), path, op["x-roles"])
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
    ]


def _request_for(client, method, path, cargo_trained, passenger_trained, decision_id):
    """A valid request for each operation (so an admitted role gets an exact success status)."""
    cargo = record_of(cargo_trained.later.iloc[0])
    passenger = record_of(passenger_trained.later.iloc[0])
    bodies = {
        "/v1/cargo/score": cargo,
        "/v1/passenger/score": passenger,
        "/v1/cargo/score/batch": {"declarations": [cargo]},
        "/v1/passenger/score/batch": {"records": [passenger]},
        "/v1/decisions/{decision_id}/review": {"action": "confirm"},
        "/v1/decisions/{decision_id}/outcome": {"finding": False},
    }
    url = path.replace("{decision_id}", decision_id).replace("{domain}", "cargo")
    queries = {  # the auditors' read endpoints: a filtered listing, the HTML export
        "/v1/decisions": "?domain=cargo&limit=5",
        "/v1/decisions/{decision_id}/explanation": "?format=html",
    }
    return url + queries.get(path, ""), bodies.get(path)


def _headers(client, kind):
    if kind == "none":
        return {}
    if kind == "malformed":
        return {"Authorization": "Bearer not-a-key"}
    return auth(client.keys[kind])


def test_every_operation_states_its_roles(client):
    ops = _operations(client)
    assert len(ops) >= 11
    for method, path, roles in ops:
        assert roles, f"{method} {path} states no roles"
        assert set(roles) <= {*ROLES, "public"}


def test_access_matrix(client, cargo_trained, passenger_trained):
    decision = client.post(
        "/v1/cargo/score", json=record_of(cargo_trained.later.iloc[5]), headers=client.officer
    )
    decision_id = decision.json()["decision_id"]
    checked = 0
    for method, path, roles in _operations(client):
        url, body = _request_for(client, method, path, cargo_trained, passenger_trained, decision_id)
        for kind in KEY_KINDS:
            r = client.request(method, url, json=body, headers=_headers(client, kind))
            if "public" in roles:
                expected = 200
            elif kind in ("none", "malformed", "revoked"):
                expected = 401
            else:
                expected = 200 if kind in roles else 403
            assert r.status_code == expected, (
                f"{method} {path} with {kind} key: {r.status_code} {r.text[:200]}"
            )
            if expected == 401:
                assert r.headers.get("www-authenticate", "").startswith("Bearer")
            checked += 1
    assert checked >= 11 * len(KEY_KINDS)


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer "}, {"X-API-Key": "br_0000_nope"}],
)
def test_odd_credentials_are_401(client, cargo_trained, headers):
    r = client.post("/v1/cargo/score", json=record_of(cargo_trained.later.iloc[0]), headers=headers)
    assert r.status_code == 401


def test_x_api_key_header_works_too(client, cargo_trained):
    r = client.post(
        "/v1/cargo/score",
        json=record_of(cargo_trained.later.iloc[0]),
        headers={"X-API-Key": client.keys["officer"]},
    )
    assert r.status_code == 200


# ----------------------------------------------------------------------------- object-level access
# Officers score and review decisions; only auditors read the decision log, through the auditors' API
# (``/v1/decisions``) or the oversight pages (``/oversight/``). Every way an officer could try is refused
# and no decision content comes back.

AUDIT_API = ("/v1/decisions", "/v1/decisions/{id}", "/v1/decisions/{id}/explanation")
PAGES = (
    "/oversight/decisions",
    "/oversight/decisions/{id}",
    "/oversight/decisions/{id}/explanation.html",
    "/oversight/models",
    "/oversight/proportionality",
)


def _logged_decision(client, cargo_trained) -> tuple[str, str]:
    body = client.post(
        "/v1/cargo/score", json=record_of(cargo_trained.later.iloc[7]), headers=client.officer
    ).json()
    return body["decision_id"], record_of(cargo_trained.later.iloc[7])["declaration_id"]


def _no_decision_in(r, decision_id: str, declaration_id: str) -> None:
    """Nothing of the decision in the answer (a sign-in link back to the asked-for URL aside)."""
    from urllib.parse import quote

    text = r.text.replace(quote(r.request.url.path, safe=""), "")
    assert decision_id not in text and declaration_id not in text, text[:300]


def test_officers_cannot_read_decisions_through_the_auditors_api(client, cargo_trained):
    paths = client.get("/openapi.json").json()["paths"]
    missing = [p for p in AUDIT_API if p.replace("{id}", "{decision_id}") not in paths]
    if missing:
        pytest.skip(f"the auditors' API is not there yet: {', '.join(missing)}")
    decision_id, declaration_id = _logged_decision(client, cargo_trained)
    for role in ("officer", "analyst", "admin"):
        for path in AUDIT_API:
            for query in ("", "?format=pdf", f"?model_version=1&offset=0&decision_id={decision_id}"):
                r = client.get(path.replace("{id}", decision_id) + query, headers=auth(client.keys[role]))
                assert r.status_code == 403, f"{role} GET {path}{query}: {r.status_code}"
                _no_decision_in(r, decision_id, declaration_id)
    r = client.get(f"/v1/decisions/{decision_id}", headers=auth(client.keys["auditor"]))
    assert r.status_code == 200 and decision_id in r.text  # the same request works for an auditor


def test_officers_cannot_read_decisions_through_the_oversight_pages(client, cargo_trained):
    if client.get("/oversight/login").status_code == 404:
        pytest.skip("the oversight pages (/oversight/) are not there yet")
    from itsdangerous import URLSafeTimedSerializer

    from service.oversight.session import COOKIE, SALT

    decision_id, declaration_id = _logged_decision(client, cargo_trained)
    officer = client.app.state.keys.authenticate(client.keys["officer"])
    secret = client.app.state.settings.session_secret.get_secret_value()
    minted = URLSafeTimedSerializer(secret, salt=SALT).dumps({"kid": officer.key_id, "name": officer.name})
    forged = URLSafeTimedSerializer("not-the-secret-" * 3, salt=SALT).dumps(
        {"kid": officer.key_id, "name": officer.name}
    )
    for path in PAGES:
        url = path.replace("{id}", decision_id)
        # the officer's API key as a bearer token: 403
        r = client.get(url, headers=auth(client.keys["officer"]), follow_redirects=False)
        assert r.status_code == 403, f"officer key on {url}: {r.status_code}"
        _no_decision_in(r, decision_id, declaration_id)
        # a correctly signed session cookie for the officer's key (as if minted before a role change): 403
        client.cookies.set(COOKIE, minted, path="/oversight")
        try:
            r = client.get(url, follow_redirects=False)
            assert r.status_code == 403, f"officer session on {url}: {r.status_code}"
            _no_decision_in(r, decision_id, declaration_id)
            # a cookie signed with another secret: off to sign in, nothing shown
            client.cookies.set(COOKIE, forged, path="/oversight")
            r = client.get(url, follow_redirects=False)
            assert r.status_code == 303 and "/oversight/login" in r.headers["location"], r.status_code
            _no_decision_in(r, decision_id, declaration_id)
        finally:
            client.cookies.clear()
    # signing in with an officer key is refused and sets no session
    r = client.post(
        "/oversight/login",
        data={"api_key": client.keys["officer"], "next": "/oversight/decisions"},
        follow_redirects=False,
    )
    assert r.status_code == 403 and COOKIE not in r.headers.get("set-cookie", "")
