"""The scoring API end to end: trained, registered models answering with explanations."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from features.schemas import SCHEMAS
from models.scoring import Scorer
from tests.conftest import auth, record_of


def test_ready_once_models_are_loaded(client):
    r = client.get("/readyz")
    assert r.status_code == 200
    assert set(r.json()["models"]) == {"cargo", "passenger"}
    assert client.get("/healthz").json() == {"status": "ok", "models": {}}


def test_not_ready_without_models(tmp_data):
    from service.app import create_app

    with TestClient(create_app(tmp_data)) as c:
        r = c.get("/readyz")
        assert r.status_code == 503
        assert "no version" in r.json()["models"]["cargo"]
        officer = c.app.state.keys.create("officer-1", "officer")
        payload = SCHEMAS["cargo"].model_config["json_schema_extra"]["examples"][0]
        r = c.post("/v1/cargo/score", json=payload, headers=auth(officer))
        assert r.status_code == 503 and "no cargo model" in r.json()["detail"]


@pytest.mark.parametrize("domain", ["cargo", "passenger"])
def test_score_returns_a_complete_decision(client, domain, request):
    trained = request.getfixturevalue(f"{domain}_trained")
    payload = record_of(trained.later.iloc[0])
    r = client.post(f"/v1/{domain}/score", json=payload, headers=client.officer)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["domain"] == domain
    assert body["model"]["name"] == f"{domain}-risk" and body["model"]["version"] == "1"
    assert len(body["model"]["sha256"]) == 64
    assert 0 <= body["score"] <= 1
    assert body["channel"] in {"green", "yellow", "red"}
    assert body["selection"] == ("risk" if body["channel"] == "red" else "none")  # random share 0 here
    assert body["inspect"] is (body["selection"] != "none")
    contributions = body["explanation"]["contributions"]
    assert contributions and all(c["reason"] for c in contributions)
    margin = body["explanation"]["base_value"] + sum(c["contribution"] for c in contributions)
    assert trained.result.bundle.calibrator.apply(margin) == pytest.approx(body["score"], abs=1e-12)


@pytest.mark.parametrize("domain", ["cargo", "passenger"])
def test_api_and_batch_path_give_the_same_score(client, domain, request):
    trained = request.getfixturevalue(f"{domain}_trained")
    rows = trained.later.iloc[:40]
    scorer = Scorer(trained.result.bundle, red_share=0.05, yellow_share=0.10)
    batch = scorer.score_columns({c: rows[c] for c in rows.columns})
    for i in range(len(rows)):
        body = client.post(f"/v1/{domain}/score", json=record_of(rows.iloc[i]), headers=client.officer).json()
        assert body["score"] == pytest.approx(float(batch.score[i]), abs=1e-12)
        assert body["channel"] == batch.channel[i]


def test_unknown_category_is_scored_as_unseen(client, cargo_trained):
    payload = record_of(cargo_trained.later.iloc[1]) | {"office_id": "NEW-OFFICE", "tax_type": "ZZ9"}
    r = client.post("/v1/cargo/score", json=payload, headers=client.officer)
    assert r.status_code == 200
    office = next(c for c in r.json()["explanation"]["contributions"] if c["feature"] == "office_id")
    assert office["value"] == "NEW-OFFICE" and "unseen" in office["reason"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"net_mass_kg": -1}, "net_mass_kg"),
        ({"country_of_origin": "XX"}, "country_of_origin"),
        ({"hs_code": "12"}, "hs_code"),
        ({"declared_value": "cheap"}, "declared_value"),
        ({"model_version": "99"}, "model_version"),
    ],
)
def test_bad_payloads_get_422_naming_the_field(client, cargo_trained, change, field):
    r = client.post(
        "/v1/cargo/score", json=record_of(cargo_trained.later.iloc[2]) | change, headers=client.officer
    )
    assert r.status_code == 422
    assert any(field in [str(p) for p in e["loc"]] for e in r.json()["detail"]), r.json()


def test_non_json_body_is_a_4xx_not_a_5xx(client):
    r = client.post(
        "/v1/cargo/score",
        content=b"{not json",
        headers={"content-type": "application/json", **client.officer},
    )
    assert r.status_code == 422
    r = client.post(
        "/v1/passenger/score", content=b"NaN", headers={"content-type": "application/json", **client.officer}
    )
    assert 400 <= r.status_code < 500


def test_models_endpoint_describes_what_is_served(client):
    models = {m["domain"]: m for m in client.get("/v1/models", headers=auth(client.keys["analyst"])).json()}
    assert set(models) == {"cargo", "passenger"}
    cargo = models["cargo"]
    assert cargo["name"] == "cargo-risk" and cargo["version"] == "1"
    assert cargo["training_period"]["start"] < cargo["validation_period"]["start"]
    assert 0.5 < cargo["metrics"]["valid_roc_auc"] <= 1
    assert np.isclose(cargo["thresholds"]["red_share"], 0.05)
