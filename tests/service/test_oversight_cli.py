"""Records over time through the command line: retention keeps the chain verifiable; the
proportionality report as a file, from the decision log and from a history file."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from borderrisk.cli import app
from models.scoring import Scorer
from service.store import AuditStore, make_engine, migrate
from tests.service.oversight_data import plant_history
from tests.service.store.conftest import decision_kwargs

runner = CliRunner()
NOW = "2025-07-01T00:00:00+00:00"


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("BORDERRISK_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("BORDERRISK_DATABASE_URL", raising=False)
    return tmp_path


def _store(path) -> AuditStore:
    engine = make_engine(f"sqlite:///{path / 'audit.db'}")
    migrate(engine)
    return AuditStore(engine)


def test_retention_masks_then_deletes_and_the_chain_still_verifies(env, monkeypatch):
    store = _store(env)
    when = {
        "six_years": datetime(2019, 5, 1, tzinfo=UTC),
        "eight_months": datetime(2024, 11, 1, tzinfo=UTC),
        "last_month": datetime(2025, 6, 1, tzinfo=UTC),
    }
    made = {k: decision_kwargs(1, created_at=t) for k, t in when.items()}  # passenger decisions
    store.append_decisions(list(made.values()))
    store.append_outcome(
        made["eight_months"]["decision_id"], "insp", True, None, "J. Doe", created_at=when["eight_months"]
    )

    r = runner.invoke(app, ["retention", "apply", "--now", NOW])
    assert r.exit_code == 0, r.output
    assert "deleted 1 records" in r.output and "chain OK" in r.output
    assert store.get_decision(made["six_years"]["decision_id"]) is None
    masked = store.get_decision(made["eight_months"]["decision_id"])
    assert masked["input_personal"] is None and masked["personal_masked"]
    assert masked["input_public"] == made["eight_months"]["input_public"]
    assert masked["outcomes"][0]["note"] is None
    kept = store.get_decision(made["last_month"]["decision_id"])
    assert kept["input_personal"] == made["last_month"]["input_personal"]

    r = runner.invoke(app, ["audit", "verify"])
    assert r.exit_code == 0 and "chain OK" in r.output, r.output
    head = r.output.split("head ")[-1].strip()
    out = env / "export.jsonl"
    assert runner.invoke(app, ["audit", "export", "--out", str(out)]).exit_code == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert lines[0]["type"] == "chain_head" and lines[0]["head_hash"] == head
    assert lines[0]["anchor_seq"] is not None  # verification starts after the deleted prefix
    assert lines[-1] == {"type": "end", "decisions": 2, "head_hash": head}

    # the periods are settings: a 10-day masking period masks last month's decision too
    monkeypatch.setenv("BORDERRISK_RETENTION_MASK_DAYS", "10")
    assert runner.invoke(app, ["retention", "apply", "--now", NOW]).exit_code == 0
    assert store.get_decision(made["last_month"]["decision_id"])["personal_masked"]
    assert runner.invoke(app, ["audit", "verify"]).exit_code == 0
    monkeypatch.setenv("BORDERRISK_RETENTION_DELETE_DAYS", "5")
    r = runner.invoke(app, ["retention", "apply", "--now", NOW])
    assert r.exit_code != 0  # deleting before masking makes no sense: refused by the settings


def test_report_from_a_history_file_flags_the_planted_bias(env):
    from training.synth import generate_passenger

    path = env / "biased.parquet"
    generate_passenger(8_000, seed=21, days=120, targeting_bias="TR").to_parquet(path)
    out = env / "report.html"
    r = runner.invoke(
        app, ["report", "proportionality", "--domain", "passenger", "--data", str(path), "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    assert "nationality TR" in r.output
    html = out.read_text()
    assert 'data-group="TR"' in html and 'data-chart="selection-nationality"' in html
    assert "from the history file biased.parquet" in html and "<script" not in html


def test_report_from_the_decision_log_is_recorded_and_has_drift(
    registered, passenger_trained, tmp_path, monkeypatch
):
    from training.registry import resolve
    from training.synth import generate_passenger

    db = tmp_path / "log.db"
    monkeypatch.setenv("BORDERRISK_DATA_DIR", str(registered.data_dir))
    monkeypatch.setenv("BORDERRISK_DATABASE_URL", f"sqlite:///{db}")
    engine = make_engine(f"sqlite:///{db}")
    migrate(engine)
    store = AuditStore(engine)
    version = resolve(registered, "passenger").version
    scorer = Scorer(passenger_trained.result.bundle, red_share=0.05, yellow_share=0.1, version=version)
    plant_history(store, scorer, generate_passenger(1_500, seed=8, days=30, targeting_bias="TR"))
    out = tmp_path / "report.html"
    r = runner.invoke(
        app,
        [
            "report",
            "proportionality",
            "--domain",
            "passenger",
            "--since",
            "2024-01-01",
            "--until",
            "2024-01-30",
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    html = out.read_text()
    assert "1,500 decisions" in html or "decisions, 2024-01-01 to 2024-01-30" in html
    assert 'data-chart="score-drift"' in html and "bag_weight_kg" in html
    assert "Random draws against risk selection" in html
    reads = [r for r in store.iter_history("passenger")][:1]
    assert reads  # the log is intact
    with engine.connect() as conn:
        from sqlalchemy import select

        from service.store.tables import ledger

        last = conn.execute(
            select(ledger.c.public).where(ledger.c.record_type == "read").order_by(ledger.c.seq.desc())
        ).first()
    assert (
        last.public["auditor"].startswith("cli:")
        and "proportionality report passenger" in last.public["what"]
    )
