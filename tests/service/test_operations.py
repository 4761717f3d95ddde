"""Operations: request limits, metrics, request ids, OpenAPI examples."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import auth, make_keys, record_of


@pytest.fixture(scope="module")
def small_limits(registered, tmp_path_factory):
    from service.app import create_app

    settings = registered.model_copy(
        update={
            "batch_max": 5,
            "max_body_bytes": 20_000,
            "database_url": f"sqlite:///{tmp_path_factory.mktemp('ops') / 'a.db'}",
        }
    )
    with TestClient(create_app(settings)) as c:
        c.officer = auth(make_keys(c.app)["officer"])  # type: ignore[attr-defined]
        yield c


def test_batch_over_the_limit_is_422_naming_the_field(small_limits, cargo_trained):
    rows = [record_of(cargo_trained.later.iloc[i]) for i in range(6)]
    r = small_limits.post("/v1/cargo/score/batch", json={"declarations": rows}, headers=small_limits.officer)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "declarations"] and "at most 5" in r.text
    r = small_limits.post("/v1/cargo/score/batch", json={"declarations": []}, headers=small_limits.officer)
    assert r.status_code == 422
    r = small_limits.post(
        "/v1/cargo/score/batch", json={"declarations": rows[:5]}, headers=small_limits.officer
    )
    assert r.status_code == 200 and len(r.json()["decisions"]) == 5


def test_oversized_body_is_413(small_limits, cargo_trained):
    rows = [record_of(cargo_trained.later.iloc[i]) for i in range(60)]
    r = small_limits.post("/v1/cargo/score/batch", json={"declarations": rows}, headers=small_limits.officer)
    assert r.status_code == 413 and "20000 bytes" in r.json()["detail"]


def test_streamed_body_without_length_is_cut_at_the_limit(small_limits):
    sent = []

    def chunks():
        for _ in range(100):
            sent.append(1)
            yield b"x" * 1000

    r = small_limits.post(
        "/v1/cargo/score",
        content=chunks(),
        headers={"content-type": "application/json", **small_limits.officer},
    )
    assert r.status_code == 413


def test_request_id_is_echoed_or_made(client):
    r = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    assert len(client.get("/healthz").headers["x-request-id"]) == 32


def test_metrics_count_requests_decisions_and_model_versions(client, cargo_trained):
    client.post("/v1/cargo/score", json=record_of(cargo_trained.later.iloc[0]), headers=client.officer)
    text = client.get("/metrics").text
    assert 'borderrisk_requests_total{method="POST",route="/v1/cargo/score",status="200"}' in text
    assert "borderrisk_request_seconds_bucket" in text
    assert "borderrisk_decisions_total{channel=" in text
    assert 'borderrisk_model_info{domain="cargo",name="cargo-risk"' in text
    assert "borderrisk_audit_store_errors_total" in text


def test_openapi_has_a_worked_example_for_every_request_body(client):
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            body = op.get("requestBody")
            if not body:
                continue
            ref = body["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
            schema = schemas[ref]
            has_example = "examples" in schema or all(
                "examples" in schemas[p["items"]["$ref"].split("/")[-1]]
                for p in schema["properties"].values()
                if "items" in p
            )
            assert has_example, f"{method} {path}: no example"


def test_a_batch_counts_each_decision_by_channel_and_selection(client, cargo_trained):
    from prometheus_client.parser import text_string_to_metric_families

    def counts() -> tuple[dict[tuple[str, str], float], float]:
        by_label: dict[tuple[str, str], float] = {}
        scored = 0.0
        for family in text_string_to_metric_families(client.get("/metrics").text):
            for s in family.samples:
                if s.name == "borderrisk_decisions_total" and s.labels["domain"] == "cargo":
                    by_label[(s.labels["channel"], s.labels["selection"])] = s.value
                if s.name == "borderrisk_score_count" and s.labels.get("domain") == "cargo":
                    scored = s.value
        return by_label, scored

    before, scored_before = counts()
    rows = [record_of(cargo_trained.later.iloc[i]) for i in range(200, 260)]
    decisions = client.post(
        "/v1/cargo/score/batch", json={"declarations": rows}, headers=client.officer
    ).json()["decisions"]
    after, scored_after = counts()
    made: dict[tuple[str, str], int] = {}
    for d in decisions:
        made[(d["channel"], d["selection"])] = made.get((d["channel"], d["selection"]), 0) + 1
    assert {k: after[k] - before.get(k, 0.0) for k in after if after[k] != before.get(k, 0.0)} == made
    assert scored_after - scored_before == len(rows)
