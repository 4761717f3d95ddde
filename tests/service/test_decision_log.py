"""Every decision is logged, chained and verifiable before its response is sent — on SQLite and
PostgreSQL — and when the log cannot be written, no score leaves the service."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from service.store import AuditStore, make_engine, verify_chain
from tests.conftest import record_of


def test_each_response_is_in_the_log_with_its_explanation(backend_client, cargo_trained, passenger_trained):
    c = backend_client
    sent = []
    for domain, trained in (("cargo", cargo_trained), ("passenger", passenger_trained)):
        for i in range(5):
            payload = record_of(trained.later.iloc[20 + i])
            body = c.post(f"/v1/{domain}/score", json=payload, headers=c.officer).json()
            sent.append((domain, payload, body))
    store = c.app.state.audit
    for domain, payload, body in sent:
        logged = store.get_decision(body["decision_id"])
        assert logged is not None
        assert logged["officer"] == "test-officer"
        assert logged["model"] == body["model"]
        assert logged["score"] == body["score"] and logged["channel"] == body["channel"]
        assert logged["selection"] == body["selection"]
        assert logged["explanation"] == body["explanation"]
        assert logged["thresholds"]["red_score"] == body["thresholds"]["red"]
        stored_input = {**logged["input_public"], **(logged["input_personal"] or {})}
        assert stored_input.keys() == payload.keys()
        if domain == "passenger":
            assert set(logged["input_personal"]) >= {"nationality", "sex", "birth_year"}
            assert "nationality" not in logged["input_public"]
    assert verify_chain(c.app.state.engine).ok


def test_batch_is_logged_in_one_go(backend_client, cargo_trained):
    c = backend_client
    rows = [record_of(cargo_trained.later.iloc[i]) for i in range(30, 60)]
    r = c.post("/v1/cargo/score/batch", json={"declarations": rows}, headers=c.officer)
    assert r.status_code == 200
    decisions = r.json()["decisions"]
    assert len(decisions) == 30
    assert len({d["decision_id"] for d in decisions}) == 30
    # time-ordered ids (service/store/ids.py): the log's id indexes grow at one end
    assert {uuid.UUID(d["decision_id"]).version for d in decisions} == {7}
    for d in decisions:
        assert c.app.state.audit.get_decision(d["decision_id"])["score"] == d["score"]


def test_a_compact_batch_is_logged_as_returned_and_reads_back_as_the_full_one_would(
    backend_client, cargo_trained
):
    """``explanation=compact`` words only the largest contributions; the log keeps what was
    returned, and what oversight is shown of it (reasons, waterfall, margin) is what it would be
    shown of the full explanation of the same declaration."""
    from markupsafe import escape

    from service.decisions import COMPACT_WORDED
    from service.oversight.views import decision_view, margin_of
    from tests.conftest import auth

    c = backend_client
    rows = [record_of(cargo_trained.later.iloc[i]) for i in range(100, 125)]
    full = c.post("/v1/cargo/score/batch", json={"declarations": rows}, headers=c.officer)
    compact = c.post(
        "/v1/cargo/score/batch",
        params={"explanation": "compact"},
        json={"declarations": rows},
        headers=c.officer,
    )
    assert full.status_code == 200 and compact.status_code == 200, compact.text
    store, auditor = c.app.state.audit, auth(c.keys["auditor"])
    for f, k in zip(full.json()["decisions"], compact.json()["decisions"], strict=True):
        assert k["score"] == f["score"] and k["channel"] == f["channel"]
        fe, ke = f["explanation"], k["explanation"]
        assert "remaining" not in fe
        assert ke["contributions"] == fe["contributions"][:COMPACT_WORDED]
        rest = fe["contributions"][COMPACT_WORDED:]
        assert ke["remaining"] == {
            "features": [x["feature"] for x in rest],
            "contributions": [x["contribution"] for x in rest],
        }
        logged_full, logged_compact = (
            store.get_decision(f["decision_id"]),
            store.get_decision(k["decision_id"]),
        )
        assert logged_compact["explanation"] == ke and logged_full["explanation"] == fe
        assert margin_of(ke) == pytest.approx(margin_of(fe), abs=1e-12)
        shown_full, shown_compact = decision_view(logged_full), decision_view(logged_compact)
        assert shown_compact["reasons"] == shown_full["reasons"]
        assert shown_compact["waterfall"] == shown_full["waterfall"]
    detail = c.get(f"/v1/decisions/{k['decision_id']}", headers=auditor).json()
    assert detail["explanation"] == ke
    assert (
        "remaining" not in c.get(f"/v1/decisions/{f['decision_id']}", headers=auditor).json()["explanation"]
    )
    page = c.get(f"/v1/decisions/{k['decision_id']}/explanation", headers=auditor)
    assert page.status_code == 200
    assert str(escape(shown_compact["reasons"][0]["sentence"])) in page.text
    assert verify_chain(c.app.state.engine).ok


def test_an_unknown_explanation_form_is_refused_by_name(backend_client, cargo_trained):
    c = backend_client
    before = c.app.state.audit.head()
    r = c.post(
        "/v1/cargo/score/batch",
        params={"explanation": "short"},
        json={"declarations": [record_of(cargo_trained.later.iloc[0])]},
        headers=c.officer,
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", "explanation"]
    assert c.app.state.audit.head() == before


def test_a_tampered_record_is_detected(backend_client, cargo_trained):
    c = backend_client
    body = c.post("/v1/cargo/score", json=record_of(cargo_trained.later.iloc[70]), headers=c.officer).json()
    engine = c.app.state.engine
    seq = c.app.state.audit.get_decision(body["decision_id"])["ledger_seq"]
    assert verify_chain(engine).ok
    with engine.begin() as conn:
        original = conn.execute(text("SELECT public FROM ledger WHERE seq = :s"), {"s": seq}).scalar_one()
        raw = original if isinstance(original, str) else __import__("json").dumps(original)
        conn.execute(
            text("UPDATE ledger SET public = :p WHERE seq = :s"),
            {
                "p": raw.replace('"channel":"', '"channel":"x', 1).replace(
                    '"channel": "', '"channel": "x', 1
                ),
                "s": seq,
            },
        )
    try:
        result = verify_chain(engine)
        assert not result.ok
        assert result.first_broken_seq == seq
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE ledger SET public = :p WHERE seq = :s"), {"p": raw, "s": seq})
    assert verify_chain(engine).ok


def test_store_down_means_503_and_no_score(backend_client, cargo_trained):
    c = backend_client
    live = c.app.state.audit
    dead = make_engine(
        "postgresql+psycopg://postgres@127.0.0.1:1/nothing", connect_args={"connect_timeout": 1}
    )
    before = live.head()
    c.app.state.audit = AuditStore(dead)
    try:
        r = c.post("/v1/cargo/score", json=record_of(cargo_trained.later.iloc[80]), headers=c.officer)
        assert r.status_code == 503
        assert "score" not in r.json() and "decision log" in r.json()["detail"]
        rows = [record_of(cargo_trained.later.iloc[i]) for i in range(3)]
        r = c.post("/v1/cargo/score/batch", json={"declarations": rows}, headers=c.officer)
        assert r.status_code == 503 and "decisions" not in r.json()
    finally:
        c.app.state.audit = live
        dead.dispose()
    assert live.head() == before  # nothing was half-written
    r = c.post("/v1/cargo/score", json=record_of(cargo_trained.later.iloc[80]), headers=c.officer)
    assert r.status_code == 200  # and it recovers as soon as the store is back


def test_readyz_reports_an_unreachable_store(registered):
    from fastapi.testclient import TestClient

    from service.app import create_app

    settings = registered.model_copy(update={"database_url": "postgresql+psycopg://postgres@127.0.0.1:1/x"})
    with TestClient(create_app(settings, load_models=False)) as c:
        r = c.get("/readyz")
        assert r.status_code == 503
        assert "decision_log" in r.json()["models"]


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_random_selection_share_is_applied_and_logged(registered, cargo_trained, share, tmp_path):
    from fastapi.testclient import TestClient

    from service.app import create_app
    from tests.conftest import make_keys

    settings = registered.model_copy(
        update={"random_share": share, "database_url": f"sqlite:///{tmp_path}/a.db"}
    )
    with TestClient(create_app(settings)) as c:
        officer = {"Authorization": f"Bearer {make_keys(c.app)['officer']}"}
        rows = [record_of(cargo_trained.later.iloc[i]) for i in range(40)]
        decisions = c.post("/v1/cargo/score/batch", json={"declarations": rows}, headers=officer).json()[
            "decisions"
        ]
    selections = {d["selection"] for d in decisions}
    if share == 1.0:
        assert selections == {"random"} and all(d["inspect"] for d in decisions)
    else:
        assert "random" not in selections


@pytest.mark.parametrize(
    "path", ["/v1/cargo/score", "/v1/cargo/score/batch", "/v1/cargo/score/batch?explanation=compact"]
)
def test_an_infinite_derived_value_is_shown_and_logged_as_text(client, cargo_trained, path):
    """A declared value over a vanishingly small (but positive) mass makes the unit value infinite:
    JSON cannot carry that number, so the explanation shows it as the text ``inf``."""
    payload = {**record_of(cargo_trained.later.iloc[5]), "net_mass_kg": 5e-324, "declared_value": 1e13}
    body = {"declarations": [payload]} if "batch" in path else payload
    r = client.post(path, json=body, headers=client.officer)
    assert r.status_code == 200, r.text
    decision = r.json()["decisions"][0] if "batch" in path else r.json()
    shown = {c["feature"]: c["value"] for c in decision["explanation"]["contributions"]}
    assert shown["unit_value_ratio"] == "inf"
    assert (
        client.app.state.audit.get_decision(decision["decision_id"])["explanation"] == decision["explanation"]
    )
