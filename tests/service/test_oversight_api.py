"""The decisions API for auditors: what was decided and why, every read recorded, nobody else in."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from service.store import StoreUnavailable, verify_chain
from service.store.tables import ledger
from tests.conftest import auth, record_of


def _reads(client) -> list[dict]:
    with client.app.state.engine.connect() as conn:
        rows = conn.execute(
            select(ledger.c.public).where(ledger.c.record_type == "read").order_by(ledger.c.seq)
        )
        return [r.public for r in rows]


def _score(client, domain, trained, i):
    r = client.post(f"/v1/{domain}/score", json=record_of(trained.later.iloc[i]), headers=client.officer)
    assert r.status_code == 200
    return r.json()


def test_auditor_reads_a_decision_with_reasons_and_the_read_is_logged(client, passenger_trained):
    body = _score(client, "passenger", passenger_trained, 300)
    did = body["decision_id"]
    client.post(f"/v1/decisions/{did}/review", json={"action": "confirm"}, headers=client.officer)
    before = len(_reads(client))
    r = client.get(f"/v1/decisions/{did}", headers=auth(client.keys["auditor"]))
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["decision_id"] == did and d["score"] == body["score"] and d["channel"] == body["channel"]
    assert d["explanation"] == body["explanation"]
    assert d["input"]["nationality"] == passenger_trained.later.iloc[300]["nationality"]
    assert d["personal_masked"] is False
    assert d["model_card"] == f"/oversight/models/passenger/{body['model']['version']}"
    assert d["reviews"][0]["action"] == "confirm"
    plain = d["plain_language"]
    assert "confirmed" in plain["review"] and plain["reasons"]
    assert plain["reasons"][0].endswith("the risk score.")
    reads = _reads(client)
    assert len(reads) == before + 1
    assert reads[-1] == {"auditor": "test-auditor", "decision_id": did, "what": "api: decision detail"}
    assert verify_chain(client.app.state.engine).ok


def test_decision_list_filters_and_pages(client, cargo_trained):
    ids = [_score(client, "cargo", cargo_trained, 400 + i)["decision_id"] for i in range(6)]
    client.post(f"/v1/decisions/{ids[0]}/review", json={"action": "confirm"}, headers=client.officer)
    a = auth(client.keys["auditor"])
    r = client.get("/v1/decisions", params={"domain": "cargo", "reviewed": "true", "limit": 500}, headers=a)
    assert r.status_code == 200
    page = r.json()
    assert ids[0] in {i["decision_id"] for i in page["items"]}
    assert all(i["reviewed"] and i["domain"] == "cargo" for i in page["items"])
    r = client.get("/v1/decisions", params={"domain": "cargo", "reviewed": "false", "limit": 2}, headers=a)
    first = r.json()
    assert len(first["items"]) == 2 and first["total"] >= 5
    assert not {i["decision_id"] for i in first["items"]} & {ids[0]}
    second = client.get(
        "/v1/decisions", params={"domain": "cargo", "reviewed": "false", "limit": 2, "offset": 2}, headers=a
    ).json()
    assert not {i["decision_id"] for i in first["items"]} & {i["decision_id"] for i in second["items"]}
    version = first["items"][0]["model_version"]
    for params in ({"selection": "none"}, {"channel": "green"}, {"model_version": version}):
        items = client.get("/v1/decisions", params={**params, "limit": 500}, headers=a).json()["items"]
        key = next(iter(params))
        assert all(str(i[key]) == params[key] for i in items)
    assert client.get("/v1/decisions", params={"since": "2025-01-01T00:00:00"}, headers=a).status_code == 422
    last = _reads(client)[-1]
    assert last["decision_id"] is None and last["what"].startswith("api: list decisions (")


@pytest.mark.parametrize("role", ["officer", "analyst", "admin"])
def test_other_roles_cannot_read_the_log(client, cargo_trained, role):
    did = _score(client, "cargo", cargo_trained, 450)["decision_id"]
    before = len(_reads(client))
    for url in ("/v1/decisions", f"/v1/decisions/{did}", f"/v1/decisions/{did}/explanation"):
        r = client.get(url, headers=auth(client.keys[role]))
        assert r.status_code == 403, (url, r.text)
        assert client.get(url).status_code == 401
    assert len(_reads(client)) == before


def test_explanation_for_the_person_concerned_is_self_contained(client, passenger_trained):
    body = _score(client, "passenger", passenger_trained, 310)
    did = body["decision_id"]
    client.post(
        f"/v1/decisions/{did}/review",
        json={"action": "override", "channel": "red", "reason": "document inconsistencies"},
        headers=client.officer,
    )
    r = client.get(f"/v1/decisions/{did}/explanation", headers=auth(client.keys["auditor"]))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "What was decided" in html and "The main reasons" in html and "Your rights" in html
    assert "changed the channel to red: document inconsistencies" in html
    top = body["explanation"]["contributions"][0]["reason"].removesuffix(" (raises risk)")
    top = top.removesuffix(" (lowers risk)")
    assert top[1:] in html  # the first letter is capitalised in the sentence
    assert not re.search(r"""(src|href)=["']?https?:""", html), "an export must not load anything"
    assert "<script" not in html
    assert _reads(client)[-1]["what"] == "api: explanation for the person concerned (html)"


def test_a_read_that_cannot_be_logged_shows_nothing(client, cargo_trained, monkeypatch):
    did = _score(client, "cargo", cargo_trained, 460)["decision_id"]

    def fail(*args, **kwargs):
        raise StoreUnavailable("disk full")

    monkeypatch.setattr(client.app.state.audit, "append_read", fail)
    r = client.get(f"/v1/decisions/{did}", headers=auth(client.keys["auditor"]))
    assert r.status_code == 503 and did not in r.text and "score" not in r.text
    r = client.get(f"/oversight/decisions/{did}", headers=auth(client.keys["auditor"]))
    assert r.status_code == 503 and "could not be recorded" in r.text


def test_unknown_decision_is_404(client):
    a = auth(client.keys["auditor"])
    assert client.get("/v1/decisions/00000000-0000-4000-8000-000000000000", headers=a).status_code == 404
    assert client.get("/v1/decisions/not-a-uuid", headers=a).status_code == 422
