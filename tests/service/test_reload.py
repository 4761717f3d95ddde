"""Model reload swaps atomically under load: no request fails, and every response's model version is
the one its logged decision records."""

from __future__ import annotations

import threading

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tests.conftest import TEST_SECRET, auth, make_keys, record_of


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory, cargo_trained, passenger_trained):
    from borderrisk.settings import Settings
    from training.registry import client as mlflow_client
    from training.registry import log_and_register

    settings = Settings(data_dir=tmp_path_factory.mktemp("reload"), env="test", session_secret=TEST_SECRET)
    for trained in (cargo_trained, passenger_trained, cargo_trained):
        bundle = trained.result.bundle
        builder = bundle.builder()
        head = trained.history.head(3)
        example = pd.DataFrame(
            builder.transform({c: head[c] for c in head.columns}), columns=builder.feature_names
        )
        log_and_register(settings, bundle, example, {}, {})
    return settings, mlflow_client(settings)


def test_reload_under_concurrent_requests(two_versions, cargo_trained):
    settings, registry = two_versions
    with TestClient(create_app_for(settings)) as c:
        keys = make_keys(c.app)
        officer, admin = auth(keys["officer"]), auth(keys["admin"])
        assert c.get("/readyz").json()["models"]["cargo"] == "1"
        payloads = [record_of(cargo_trained.later.iloc[i]) for i in range(40)]
        results: list[tuple[int, dict]] = []
        stop = threading.Event()

        def load() -> None:
            i = 0
            while not stop.is_set() and i < 400:
                r = c.post("/v1/cargo/score", json=payloads[i % len(payloads)], headers=officer)
                results.append((r.status_code, r.json()))
                i += 1

        workers = [threading.Thread(target=load) for _ in range(4)]
        for w in workers:
            w.start()
        versions = []
        for n in range(10):
            target = "2" if n % 2 == 0 else "1"
            registry.set_registered_model_alias("cargo-risk", "champion", target)
            r = c.post("/v1/models/cargo/reload", headers=admin)
            assert r.status_code == 200, r.text
            versions.append(r.json()["version"])
        stop.set()
        for w in workers:
            w.join()
        assert versions == ["2", "1"] * 5
        assert results and all(status == 200 for status, _ in results)
        served = {body["model"]["version"] for _, body in results}
        assert served <= {"1", "2"}
        store = c.app.state.audit
        for _, body in results:
            assert store.get_decision(body["decision_id"])["model"]["version"] == body["model"]["version"]


def test_failed_reload_keeps_the_old_model(two_versions, cargo_trained):
    settings, registry = two_versions
    with TestClient(create_app_for(settings)) as c:
        keys = make_keys(c.app, prefix="failed-reload")
        registry.set_registered_model_alias("cargo-risk", "champion", "2")
        registry.set_model_version_tag("cargo-risk", "2", "bundle_sha256", "0" * 64)
        try:
            r = c.post("/v1/models/cargo/reload", headers=auth(keys["admin"]))
            assert r.status_code == 409
            assert "does not match the registered" in r.json()["detail"]
            assert "still serving version" in r.json()["detail"]
            body = c.post(
                "/v1/cargo/score", json=record_of(cargo_trained.later.iloc[0]), headers=auth(keys["officer"])
            ).json()
            assert body["model"]["version"] in {"1", "2"}
        finally:
            sha = registry.get_model_version("cargo-risk", "1").tags["bundle_sha256"]
            registry.set_model_version_tag("cargo-risk", "2", "bundle_sha256", sha)


def create_app_for(settings):
    from service.app import create_app

    return create_app(settings)


def test_a_reload_announced_by_one_worker_is_followed_by_the_others(two_versions):
    """Two ``ServingModels`` stand for two workers of one service (one data folder): the worker that
    reloads announces the version, the other follows it once — the exact version, even after the
    alias has moved on — and a worker that starts later does not act on an old announcement."""
    from service.models_state import ServingModels

    settings, registry = two_versions
    registry.set_registered_model_alias("cargo-risk", "champion", "1")
    first, second = ServingModels(), ServingModels()
    for worker in (first, second):
        worker.load_all(settings)
        assert worker.get("cargo").version == "1"

    registry.set_registered_model_alias("cargo-risk", "champion", "2")
    first.announce(settings, "cargo", first.load(settings, "cargo"))
    registry.set_registered_model_alias("cargo-risk", "champion", "1")  # moved on since
    assert first.follow(settings) == []  # its own announcement
    assert second.follow(settings) == ["cargo"]
    assert second.get("cargo").version == "2"
    assert second.get("passenger").version == "1"
    assert second.follow(settings) == []  # once

    later = ServingModels()
    later.load_all(settings)
    assert later.follow(settings) == [] and later.get("cargo").version == "1"


def test_an_announced_version_that_cannot_load_leaves_the_old_model(two_versions):
    from service.models_state import ServingModels

    settings, registry = two_versions
    registry.set_registered_model_alias("cargo-risk", "champion", "1")
    worker = ServingModels()
    worker.load_all(settings)
    (settings.serving_cache / "cargo.announced.json").write_text('{"domain": "cargo", "version": "99"}')
    assert worker.follow(settings) == []
    assert worker.get("cargo").version == "1"
    (settings.serving_cache / "cargo.announced.json").write_text("not json")
    assert worker.follow(settings) == []
    assert worker.get("cargo").version == "1"


def test_the_reload_endpoint_announces_what_it_swapped_in(two_versions):
    import json

    settings, registry = two_versions
    registry.set_registered_model_alias("cargo-risk", "champion", "2")
    try:
        with TestClient(create_app_for(settings)) as c:
            keys = make_keys(c.app, prefix="announce")
            r = c.post("/v1/models/cargo/reload", headers=auth(keys["admin"]))
            assert r.status_code == 200, r.text
        announced = json.loads((settings.serving_cache / "cargo.announced.json").read_text())
        assert (announced["domain"], announced["version"]) == ("cargo", "2")
        assert announced["sha256"] == r.json()["sha256"]
    finally:
        registry.set_registered_model_alias("cargo-risk", "champion", "1")
