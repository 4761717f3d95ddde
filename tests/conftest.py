"""Shared fixtures: small synthetic histories, trained and registered models, a test client.

Training is the expensive part, so each domain is generated, trained and registered once per test
session in a temporary data folder, and every test that needs a model or the service reuses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from borderrisk.settings import Settings
from training.pipeline import TrainConfig, TrainResult, train

ROWS = 150_000
TEST_SECRET = "test-session-secret-0123456789abcdef"
DAYS = 450  # the first 365 days train (and validate), the last 85 are the "later period"


@dataclass
class Trained:
    history: pd.DataFrame  # what the model was trained on
    later: pd.DataFrame  # a later period it never saw
    result: TrainResult


def _split(df: pd.DataFrame, time_field: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    cut = df[time_field].min() + np.timedelta64(365, "D")
    return df[df[time_field] < cut].reset_index(drop=True), df[df[time_field] >= cut].reset_index(drop=True)


@pytest.fixture(scope="session")
def cargo_trained() -> Trained:
    from training.synth import generate_cargo

    history, later = _split(generate_cargo(ROWS, seed=3, days=DAYS), "declared_at")
    return Trained(history, later, train(history, TrainConfig(domain="cargo")))


@pytest.fixture(scope="session")
def passenger_trained() -> Trained:
    from training.synth import generate_passenger

    history, later = _split(generate_passenger(ROWS, seed=5, days=DAYS), "departure_at")
    return Trained(history, later, train(history, TrainConfig(domain="passenger")))


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("data"), env="test", session_secret=TEST_SECRET)


@pytest.fixture(scope="session")
def registered(settings: Settings, cargo_trained: Trained, passenger_trained: Trained) -> Settings:
    """Both models registered (and so ``champion``) in the session's MLflow registry."""
    from training.registry import log_and_register

    for trained in (cargo_trained, passenger_trained):
        bundle = trained.result.bundle
        builder = bundle.builder()
        head = trained.history.head(5)
        example = pd.DataFrame(
            builder.transform({c: head[c] for c in head.columns}), columns=builder.feature_names
        )
        log_and_register(settings, bundle, example, trained.result.params, trained.result.metrics)
    return settings


ROLES = ("officer", "analyst", "auditor", "admin")


def make_keys(app, prefix: str = "test") -> dict[str, str]:
    """One key per role, plus a revoked officer key, in the app's key store."""
    store = app.state.keys
    keys = {role: store.create(f"{prefix}-{role}", role) for role in ROLES}
    keys["revoked"] = store.create(f"{prefix}-revoked", "officer")
    store.revoke(f"{prefix}-revoked")
    store.invalidate()
    return keys


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="session")
def client(registered: Settings):
    """The service on the session's registry and an SQLite decision log, with ``client.keys``."""
    from fastapi.testclient import TestClient

    from service.app import create_app

    with TestClient(create_app(registered.model_copy(update={"random_share": 0.0}))) as c:
        c.keys = make_keys(c.app)  # type: ignore[attr-defined]
        c.officer = auth(c.keys["officer"])  # type: ignore[attr-defined]
        yield c


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend_client(request: pytest.FixtureRequest, registered: Settings, tmp_path_factory):
    """The service with its decision log on SQLite and on PostgreSQL (a private schema)."""
    from contextlib import ExitStack

    from fastapi.testclient import TestClient

    from service.app import create_app
    from tests.postgres import private_schema_url

    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('audit') / 'audit.db'}"
        else:
            url = stack.enter_context(private_schema_url())
        settings = registered.model_copy(update={"database_url": url, "random_share": 0.0})
        c = stack.enter_context(TestClient(create_app(settings)))
        c.keys = make_keys(c.app)  # type: ignore[attr-defined]
        c.officer = auth(c.keys["officer"])  # type: ignore[attr-defined]
        c.backend = request.param  # type: ignore[attr-defined]
        yield c


def record_of(row: pd.Series) -> dict:
    """A JSON-ready API payload from a history row (outcome columns dropped)."""
    from features.schemas import SCHEMAS

    domain = "cargo" if "declaration_id" in row.index else "passenger"
    fields = SCHEMAS[domain].model_fields
    out = {}
    for name in fields:
        v = row[name]
        if isinstance(v, pd.Timestamp):
            v = v.date().isoformat() if name == "document_expiry" else v.isoformat()
        elif isinstance(v, np.ndarray):
            v = [str(x) for x in v]
        elif isinstance(v, np.generic):
            v = v.item()
        elif v is pd.NA or (isinstance(v, float) and np.isnan(v)):
            v = None
        out[name] = v
    return out


@pytest.fixture
def tmp_data(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, env="test", session_secret=TEST_SECRET)
