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
    return url, bodies.get(path)


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
