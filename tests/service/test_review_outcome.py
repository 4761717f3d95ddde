"""Human review and outcomes are their own records, and they flow back into training."""

from __future__ import annotations

import uuid

import numpy as np

from tests.conftest import record_of
from training.history_export import history_frame
from training.pipeline import TrainConfig, train


def _score(c, domain, payload):
    return c.post(f"/v1/{domain}/score", json=payload, headers=c.officer).json()


def test_review_never_modifies_the_decision(backend_client, cargo_trained):
    c = backend_client
    body = _score(c, "cargo", record_of(cargo_trained.later.iloc[100]))
    did = body["decision_id"]
    r = c.post(
        f"/v1/decisions/{did}/review", json={"action": "override", "channel": "red"}, headers=c.officer
    )
    assert r.status_code == 422 and "reason" in r.text
    r = c.post(
        f"/v1/decisions/{did}/review",
        json={"action": "override", "channel": "red", "reason": "tip-off"},
        headers=c.officer,
    )
    assert r.status_code == 200 and r.json()["previous_channel"] == body["channel"]
    r = c.post(f"/v1/decisions/{did}/review", json={"action": "confirm"}, headers=c.officer)
    assert r.status_code == 200 and r.json()["channel"] == "red"
    r = c.post(
        f"/v1/decisions/{did}/review", json={"action": "confirm", "channel": "green"}, headers=c.officer
    )
    assert r.status_code == 422
    r = c.post(
        f"/v1/decisions/{did}/outcome",
        json={"finding": True, "revenue_recovered": 120.5, "note": "x"},
        headers=c.officer,
    )
    assert r.status_code == 200
    logged = c.app.state.audit.get_decision(did)
    assert (
        logged["channel"] == body["channel"] and logged["score"] == body["score"]
    )  # the original, untouched
    assert [rv["action"] for rv in logged["reviews"]] == ["override", "confirm"]
    assert logged["effective_channel"] == "red"
    assert logged["outcomes"][0]["finding"] is True and logged["outcomes"][0]["revenue_recovered"] == 120.5


def test_unknown_and_malformed_decision_ids(backend_client):
    c = backend_client
    r = c.post(f"/v1/decisions/{uuid.uuid4()}/outcome", json={"finding": False}, headers=c.officer)
    assert r.status_code == 404
    r = c.post("/v1/decisions/not-a-uuid/review", json={"action": "confirm"}, headers=c.officer)
    assert r.status_code == 422 and "decision_id" in r.text
    r = c.post(f"/v1/decisions/{uuid.uuid4()}/outcome", json={"finding": "maybe"}, headers=c.officer)
    assert r.status_code == 422 and "finding" in r.text


def test_outcomes_flow_back_into_training(client, cargo_trained):
    """Score a later period through the API, record inspection results, export, retrain."""
    rows = cargo_trained.later.iloc[:4000]
    truth = dict(zip(rows["declaration_id"], cargo_trained.later["oracle_p"].iloc[:4000], strict=True))
    rng = np.random.default_rng(0)
    store = client.app.state.audit
    ids = []
    for start in range(0, len(rows), 1000):
        chunk = [record_of(rows.iloc[i]) for i in range(start, start + 1000)]
        r = client.post("/v1/cargo/score/batch", json={"declarations": chunk}, headers=client.officer)
        assert r.status_code == 200
        ids += [
            (d["decision_id"], rec["declaration_id"], d["channel"])
            for d, rec in zip(r.json()["decisions"], chunk, strict=True)
        ]
    inspected = 0
    for did, decl, channel in ids:
        if channel == "red" or rng.random() < 0.05:
            finding = bool(rng.random() < truth[decl])
            store.append_outcome(did, "test-officer", finding, 100.0 if finding else 0.0, None)
            inspected += 1
    exported = history_frame("cargo", store.iter_history("cargo")).frame
    mine = exported[exported["decision_id"].isin([d for d, _, _ in ids])]
    assert len(mine) == len(ids)
    assert int(mine["inspected"].sum()) == inspected
    assert set(mine.loc[~mine["inspected"], "selection"]) == {"none"}
    result = train(
        mine.drop(columns=["decision_id", "model_version", "score", "decided_at"]),
        TrainConfig(domain="cargo", max_rounds=50),
    )
    assert result.metrics["valid_rows"] > 0
