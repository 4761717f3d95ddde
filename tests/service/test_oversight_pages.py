"""The oversight pages: auditor sessions, who is kept out, and what each page shows."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.store.tables import ledger
from tests.conftest import auth, record_of

PAGES = ("/oversight/decisions", "/oversight/proportionality?domain=passenger", "/oversight/models")


def _login(client, role="auditor") -> TestClient:
    """A fresh browser-like client on the same app, signed in with the role's key."""
    browser = TestClient(client.app)
    r = browser.post(
        "/oversight/login",
        data={"api_key": client.keys[role], "next": "/oversight/decisions"},
        follow_redirects=False,
    )
    browser.login_response = r  # type: ignore[attr-defined]
    return browser


def test_auditor_login_sets_a_signed_httponly_strict_cookie(client):
    browser = _login(client)
    r = browser.login_response  # type: ignore[attr-defined]
    assert r.status_code == 303 and r.headers["location"] == "/oversight/decisions"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("borderrisk_oversight=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/oversight" in cookie
    assert client.keys["auditor"] not in cookie  # the key never leaves in the cookie
    for page in PAGES:
        assert browser.get(page).status_code == 200, page
    # a forged or altered cookie is no session
    value = cookie.split(";")[0].split("=", 1)[1]
    forged = TestClient(client.app, cookies={"borderrisk_oversight": value[:-2] + "xx"})
    r = forged.get("/oversight/decisions", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/oversight/login")


@pytest.mark.parametrize("role", ["officer", "analyst", "admin"])
def test_other_roles_cannot_read_the_pages(client, role):
    browser = _login(client, role)
    r = browser.login_response  # type: ignore[attr-defined]
    assert r.status_code == 403 and "set-cookie" not in r.headers
    assert "may not read them" in r.text
    for page in PAGES:
        r = browser.get(page, headers=auth(client.keys[role]))
        assert r.status_code == 403, page
        assert "auditors" in r.text
    assert client.get("/oversight/decisions", headers=auth(client.keys["auditor"])).status_code == 200


def test_without_a_session_the_pages_send_you_to_sign_in(client):
    anonymous = TestClient(client.app)
    r = anonymous.get("/oversight/proportionality?domain=cargo", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/oversight/login?next=%2Foversight%2Fproportionality%3Fdomain%3Dcargo"
    r = anonymous.post("/oversight/login", data={"api_key": "br_nope"}, follow_redirects=False)
    assert r.status_code == 401 and "Invalid or revoked" in r.text
    assert _login(client).post("/oversight/logout", follow_redirects=False).status_code == 303


def test_revoking_the_key_ends_the_session(client):
    from tests.conftest import make_keys

    keys = make_keys(client.app, prefix="short")
    browser = TestClient(client.app)
    browser.post("/oversight/login", data={"api_key": keys["auditor"]})
    assert browser.get("/oversight/decisions", follow_redirects=False).status_code == 200
    client.app.state.keys.revoke("short-auditor")
    assert browser.get("/oversight/decisions", follow_redirects=False).status_code == 303


def test_decision_page_shows_waterfall_reasons_input_and_trail(client, cargo_trained):
    body = client.post(
        "/v1/cargo/score", json=record_of(cargo_trained.later.iloc[500]), headers=client.officer
    ).json()
    did = body["decision_id"]
    client.post(
        f"/v1/decisions/{did}/outcome", json={"finding": False, "note": "all fine"}, headers=client.officer
    )
    browser = _login(client)
    r = browser.get(f"/oversight/decisions/{did}")
    assert r.status_code == 200
    html = r.text
    assert 'data-chart="waterfall"' in html and "<svg" in html
    top = body["explanation"]["contributions"][0]
    assert top["label"] in html
    assert top["reason"].removesuffix(" (raises risk)").removesuffix(" (lowers risk)")[1:] in html
    assert "No officer has reviewed this decision yet." in html and "all fine" in html
    assert f"/oversight/models/cargo/{body['model']['version']}" in html
    assert "<script" not in html
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    with client.app.state.engine.connect() as conn:
        last = conn.execute(
            select(ledger.c.public).where(ledger.c.record_type == "read").order_by(ledger.c.seq.desc())
        ).first()
    assert last.public == {"auditor": "test-auditor", "decision_id": did, "what": "page: decision"}
    listing = browser.get("/oversight/decisions", params={"domain": "cargo", "reviewed": "no"}).text
    assert did[:8] in listing


def test_model_page_is_the_model_card(client):
    browser = _login(client)
    version = client.app.state.models.get("cargo").version
    html = browser.get(f"/oversight/models/cargo/{version}").text
    for part in (
        "Training period",
        "Data fingerprint",
        "Features used",
        "Inputs not used",
        "Proxy check",
        "Metrics per monitored group",
        "Known limitations",
        "Thresholds",
        "unit_value_ratio",
    ):
        assert part in html, part
    assert "Union Customs Code" in html  # the policy's justification of the derived use
    assert browser.get("/oversight/models/cargo/999").status_code == 404


def test_proportionality_flags_the_planted_targeting_bias():
    """On the history files themselves: the biased legacy rule over-selects TR, the fair one not."""
    from service.oversight.proportionality import frame_from_history, proportionality
    from training.synth import generate_passenger

    def flagged(bias):
        df = generate_passenger(8_000, seed=21, days=120, targeting_bias=bias)
        report = proportionality(frame_from_history(df, "passenger"), "passenger", bound=1.25, min_group=30)
        rows = {r.group: r for r in report["attributes"][0]["rows"]}
        return rows["TR"], report

    tr, report = flagged("TR")
    assert tr.ratios["selection_rate"] > 1.5
    assert any(f.startswith("selected") for f in tr.flags)
    assert ("nationality", "TR") in {(f["attribute"], f["group"]) for f in report["flagged"]}
    fair, _ = flagged(None)
    assert 0.8 < fair.ratios["selection_rate"] < 1.25 and not fair.flags
