"""The command line: keys, the decision log, and the history export, as an operator runs them."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from borderrisk.cli import app

runner = CliRunner()


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("BORDERRISK_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("BORDERRISK_DATABASE_URL", raising=False)
    return tmp_path


def test_keys_create_prints_once_and_revoke_stops_it(env):
    r = runner.invoke(app, ["keys", "create", "--role", "officer", "--name", "anna"])
    assert r.exit_code == 0, r.output
    key = r.stdout.strip().splitlines()[-1]
    assert key.startswith("br_")
    from service.store import KeyStore, make_engine

    store = KeyStore(make_engine(f"sqlite:///{env / 'audit.db'}"), cache_ttl=0)
    assert store.authenticate(key).role == "officer"
    listed = json.loads(runner.invoke(app, ["keys", "list"]).stdout)
    assert [k["name"] for k in listed] == ["anna"] and key not in json.dumps(listed)
    assert runner.invoke(app, ["keys", "revoke", "anna"]).exit_code == 0
    assert store.authenticate(key) is None
    r = runner.invoke(app, ["keys", "create", "--role", "boss", "--name", "x"])
    assert r.exit_code == 2 and "--role 'boss'" in r.output
    r = runner.invoke(app, ["keys", "revoke", "nobody"])
    assert r.exit_code == 2 and "no active key named 'nobody'" in r.output


def test_demo_keys_are_made_once(env):
    first = runner.invoke(app, ["keys", "demo"])
    second = runner.invoke(app, ["keys", "demo"])
    assert first.exit_code == second.exit_code == 0
    assert first.stdout == second.stdout and first.stdout.count("br_") == 4


def test_audit_verify_names_the_first_broken_record(env):
    from service.store import AuditStore, make_engine, migrate
    from tests.service.store.conftest import decision_kwargs

    engine = make_engine(f"sqlite:///{env / 'audit.db'}")
    migrate(engine)
    store = AuditStore(engine)
    for i in range(6):
        store.append_decision(**decision_kwargs(i))
    r = runner.invoke(app, ["audit", "verify"])
    assert r.exit_code == 0 and "chain OK: 6 records" in r.output
    with engine.begin() as conn:
        conn.execute(text("UPDATE decisions SET score = 0.99"))  # the index is not the record: still OK
        conn.execute(text("UPDATE ledger SET record_id = 'x' WHERE seq = 4"))
    r = runner.invoke(app, ["audit", "verify"])
    assert r.exit_code == 1 and "BROKEN at record 4" in r.output
    out = env / "export.jsonl"
    r = runner.invoke(app, ["audit", "export", "--out", str(out)])
    assert r.exit_code == 0 and out.exists() and "chain head" in r.output


def test_export_history_writes_a_trainable_file(client, cargo_trained, tmp_path, monkeypatch):
    """The session service's log (SQLite in its data folder) exported through the CLI."""
    settings = client.app.state.settings
    monkeypatch.setenv("BORDERRISK_DATA_DIR", str(settings.data_dir))
    from tests.conftest import record_of

    body = client.post(
        "/v1/cargo/score", json=record_of(cargo_trained.later.iloc[7]), headers=client.officer
    ).json()
    client.post(
        f"/v1/decisions/{body['decision_id']}/outcome", json={"finding": True}, headers=client.officer
    )
    out = tmp_path / "history.parquet"
    r = runner.invoke(app, ["export-history", "cargo", "--out", str(out)])
    assert r.exit_code == 0, r.output
    frame = pd.read_parquet(out)
    row = frame[frame["decision_id"] == body["decision_id"]].iloc[0]
    assert bool(row["inspected"]) and row["fraud"] == 1 and row["selection"] == "targeted"
    from features.frames import history_schema, validate

    validate(frame, history_schema("cargo"))
