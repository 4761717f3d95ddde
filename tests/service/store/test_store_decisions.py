"""AuditStore: appends, reviews/outcomes, queries, history and export (SQLite + PostgreSQL)."""

from __future__ import annotations

import csv
import json
import math
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from service.store import AuditStore, DecisionNotFound, DuplicateDecision, StoreUnavailable, verify_chain
from service.store.tables import decisions, ledger, reviews

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_append_and_get_decision_round_trip(store, make_decision) -> None:
    kw = make_decision(1, input_public={"x": 0.1, "nested": {"b": [1, 2.5e-8], "a": None}, "txt": "Ünïcødé"})
    h = store.append_decision(**kw)
    got = store.get_decision(kw["decision_id"])
    assert got is not None
    assert got["hash"] == h and got["ledger_seq"] == 1
    assert got["created_at"] == kw["created_at"] and got["created_at"].tzinfo is not None
    assert got["input_public"] == kw["input_public"]
    assert got["input_personal"] == kw["input_personal"] and got["personal_masked"] is False
    assert got["model"] == kw["model"] and got["score"] == kw["score"]
    assert got["thresholds"] == kw["thresholds"] and got["explanation"] == kw["explanation"]
    assert got["channel"] == got["effective_channel"] == kw["channel"]
    assert got["reviews"] == [] and got["outcomes"] == []
    assert store.get_decision(uuid.uuid4()) is None
    assert store.get_decision("not-a-uuid") is None
    # uuid objects and upper-case strings name the same decision
    assert store.get_decision(uuid.UUID(kw["decision_id"]))["hash"] == h
    assert store.get_decision(kw["decision_id"].upper())["hash"] == h


def test_duplicate_decision_is_refused(store, make_decision, engine) -> None:
    kw = make_decision(0)
    store.append_decision(**kw)
    with pytest.raises(DuplicateDecision):
        store.append_decision(**make_decision(2, decision_id=kw["decision_id"]))
    assert _count(engine, ledger) == 1


def test_batch_append_is_sequential_and_all_or_nothing(store, make_decision, engine) -> None:
    batch = [make_decision(i) for i in range(10)]
    hashes = store.append_decisions(batch)
    assert len(hashes) == 10 and len(set(hashes)) == 10
    assert [store.get_decision(b["decision_id"])["ledger_seq"] for b in batch] == list(range(1, 11))
    dup_batch = [make_decision(20), make_decision(21, decision_id=batch[3]["decision_id"])]
    with pytest.raises(DuplicateDecision):
        store.append_decisions(dup_batch)
    same_twice = make_decision(22)
    with pytest.raises(DuplicateDecision):
        store.append_decisions([same_twice, same_twice])
    with pytest.raises(ValueError):
        store.append_decisions([make_decision(23), make_decision(24, channel="purple")])
    assert _count(engine, ledger) == 10 and _count(engine, decisions) == 10
    assert store.append_decisions([]) == []
    assert verify_chain(engine).ok


@pytest.mark.parametrize(
    ("override", "error"),
    [
        ({"created_at": datetime(2025, 1, 1)}, ValueError),  # naive
        ({"score": math.nan}, ValueError),
        ({"score": "0.5"}, TypeError),
        ({"channel": "blue"}, ValueError),
        ({"domain": "mail"}, ValueError),
        ({"selection": "gut"}, ValueError),
        ({"decision_id": "123"}, ValueError),
        ({"officer": ""}, ValueError),
        ({"model": {"name": "m", "version": "1"}}, ValueError),
        ({"input_public": {"x": math.inf}}, ValueError),
        ({"explanation": {"x": object()}}, TypeError),
        ({"input_personal": ["not", "a", "dict"]}, TypeError),
    ],
)
def test_invalid_decisions_write_nothing(store, make_decision, engine, override, error) -> None:
    with pytest.raises(error):
        store.append_decision(**make_decision(1, **override))
    assert _count(engine, ledger) == 0


def test_ledger_and_index_rows_commit_together(store, make_decision, engine, monkeypatch) -> None:
    """If the index row cannot be written, the ledger row is rolled back too (one transaction)."""
    real = AuditStore._prepare_decision

    def broken_index(self, **kw):
        pending, index = real(self, **kw)
        return pending, {**index, "channel": "purple"}  # violates the CHECK constraint of `decisions`

    monkeypatch.setattr(AuditStore, "_prepare_decision", broken_index)
    with pytest.raises(StoreUnavailable, match="append_decisions"):
        store.append_decision(**make_decision(0))
    assert _count(engine, ledger) == 0 and _count(engine, decisions) == 0


def test_reviews_and_outcomes_round_trip(store, make_decision, engine) -> None:
    kw = make_decision(2)  # cargo, channel red
    assert kw["channel"] == "red" and kw["domain"] == "cargo"
    original_hash = store.append_decision(**kw)
    did = kw["decision_id"]
    r1 = store.append_review(did, "sup-1", "confirm", "red", "")
    r2 = store.append_review(did, "sup-2", "override", "green", "known trader, documents checked")
    o1 = store.append_outcome(did, "insp-1", False, None, "nothing found")
    o2 = store.append_outcome(did, "insp-2", True, 1250.5, "undeclared goods")
    assert (r1.seq, r2.seq, o1.seq, o2.seq) == (2, 3, 4, 5)
    got = store.get_decision(did)
    assert got["hash"] == original_hash and got["channel"] == "red"  # decision itself never modified
    assert got["effective_channel"] == "green"
    assert [(r["action"], r["channel"], r["officer"]) for r in got["reviews"]] == [
        ("confirm", "red", "sup-1"),
        ("override", "green", "sup-2"),
    ]
    assert got["reviews"][1]["reason"] == "known trader, documents checked"
    assert got["reviews"][0]["review_id"] == r1.record_id
    assert [(o["finding"], o["revenue_recovered"], o["note"]) for o in got["outcomes"]] == [
        (False, None, "nothing found"),
        (True, 1250.5, "undeclared goods"),
    ]
    assert got["outcomes"][1]["outcome_id"] == o2.record_id
    with engine.connect() as conn:
        types = conn.execute(select(ledger.c.record_type).order_by(ledger.c.seq)).scalars().all()
        review_public = conn.execute(select(ledger.c.public).where(ledger.c.seq == 3)).scalar_one()
    assert types == ["decision", "review", "review", "outcome", "outcome"]
    assert review_public["previous_channel"] == "red" and review_public["channel"] == "green"
    assert verify_chain(engine).ok


def test_review_rules_and_unknown_decisions(store, make_decision, engine) -> None:
    kw = make_decision(0)  # channel green
    store.append_decision(**kw)
    did = kw["decision_id"]
    with pytest.raises(ValueError, match="current channel"):
        store.append_review(did, "sup", "confirm", "red", "")
    with pytest.raises(ValueError, match="reason"):
        store.append_review(did, "sup", "override", "red", "  ")
    with pytest.raises(ValueError):
        store.append_review(did, "sup", "approve", "red", "x")
    with pytest.raises(ValueError):
        store.append_outcome(did, "insp", True, -5.0, None)
    with pytest.raises(TypeError):
        store.append_outcome(did, "insp", "yes", None, None)
    for unknown in (str(uuid.uuid4()), "garbage"):
        with pytest.raises(DecisionNotFound):
            store.append_review(unknown, "sup", "override", "red", "x")
        with pytest.raises(DecisionNotFound):
            store.append_outcome(unknown, "insp", True, None, None)
    assert _count(engine, ledger) == 1 and _count(engine, reviews) == 0
    assert issubclass(DecisionNotFound, LookupError)


def test_passenger_outcome_note_is_personal(store, make_decision, engine) -> None:
    kw = make_decision(1)  # passenger
    store.append_decision(**kw)
    app = store.append_outcome(kw["decision_id"], "insp", True, None, "carried 3 kg khat, named J. Doe")
    with engine.connect() as conn:
        row = conn.execute(select(ledger.c.public, ledger.c.personal).where(ledger.c.seq == app.seq)).one()
    assert "note" not in row.public and row.personal == {"note": "carried 3 kg khat, named J. Doe"}


def test_append_read_is_chained(store, make_decision, engine) -> None:
    kw = make_decision(0)
    store.append_decision(**kw)
    a = store.append_read("auditor-7", kw["decision_id"], "get_decision")
    b = store.append_read("auditor-7", None, "list_decisions domain=cargo")
    assert (a.seq, b.seq) == (2, 3)
    with engine.connect() as conn:
        rows = conn.execute(select(ledger.c.record_type, ledger.c.public).where(ledger.c.seq > 1)).all()
    assert [r.record_type for r in rows] == ["read", "read"]
    assert rows[0].public == {
        "auditor": "auditor-7",
        "decision_id": kw["decision_id"],
        "what": "get_decision",
    }
    assert verify_chain(engine).ok


def test_list_filters_and_pagination(store, make_decision) -> None:
    batch = [make_decision(i) for i in range(30)]
    store.append_decisions(batch)
    by_id = {b["decision_id"]: b for b in batch}
    store.append_review(batch[4]["decision_id"], "sup", "override", "red", "intel")
    store.append_review(batch[5]["decision_id"], "sup", "confirm", batch[5]["channel"], "")

    items, total = store.list_decisions(limit=7)
    assert total == 30 and len(items) == 7
    assert [i["decision_id"] for i in items] == [b["decision_id"] for b in reversed(batch)][
        :7
    ]  # newest first
    pages = [store.list_decisions(limit=7, offset=o)[0] for o in range(0, 35, 7)]
    seen = [i["decision_id"] for page in pages for i in page]
    assert len(seen) == 30 and set(seen) == set(by_id)

    def ids(**filters):
        items, total = store.list_decisions(limit=1000, **filters)
        assert total == len(items)
        return {i["decision_id"] for i in items}

    def expect(pred):
        return {b["decision_id"] for b in batch if pred(b)}

    assert ids(domain="passenger") == expect(lambda b: b["domain"] == "passenger")
    assert ids(channel="red") == expect(lambda b: b["channel"] == "red")
    assert ids(selection="random") == expect(lambda b: b["selection"] == "random")
    assert ids(model_version="v2") == expect(lambda b: b["model"]["version"] == "v2")
    assert ids(officer="officer-1") == expect(lambda b: b["officer"] == "officer-1")
    since, until = T0 + timedelta(minutes=10), T0 + timedelta(minutes=20)
    assert ids(since=since, until=until) == expect(lambda b: since <= b["created_at"] < until)
    assert ids(reviewed=True) == {batch[4]["decision_id"], batch[5]["decision_id"]}
    assert ids(reviewed=False) == set(by_id) - {batch[4]["decision_id"], batch[5]["decision_id"]}
    assert ids(domain="cargo", channel="green", reviewed=False, since=since) == expect(
        lambda b: b["domain"] == "cargo" and b["channel"] == "green" and b["created_at"] >= since
    )
    reviewed_items, _ = store.list_decisions(reviewed=True)
    assert all(i["reviewed"] for i in reviewed_items)
    assert store.list_decisions(domain="passenger", limit=2, offset=100) == ([], 15)
    for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"channel": "blue"}):
        with pytest.raises(ValueError):
            store.list_decisions(**bad)
    with pytest.raises(ValueError):
        store.list_decisions(since=datetime(2025, 1, 1))  # naive


def test_iter_history_joins_latest_outcome_and_selection(store, make_decision) -> None:
    batch = [make_decision(i) for i in range(8)]
    store.append_decisions(batch)
    d0, d2, d3 = batch[0]["decision_id"], batch[2]["decision_id"], batch[3]["decision_id"]
    store.append_outcome(d0, "insp", False, None, "first look")
    store.append_outcome(d0, "insp", True, 99.0, "lab result")  # latest wins
    store.append_outcome(d3, "insp", False, None, None)
    store.append_review(d2, "sup", "override", "yellow", "second opinion")

    history = list(store.iter_history("cargo", None, batch_size=2))
    assert [h["decision_id"] for h in history] == [b["decision_id"] for b in batch if b["domain"] == "cargo"]
    h0 = history[0]
    assert h0["has_outcome"] and h0["finding"] is True and h0["revenue_recovered"] == 99.0
    assert h0["features"] == batch[0]["input_public"] and h0["selection"] == batch[0]["selection"]
    assert h0["model_version"] == batch[0]["model"]["version"] and "personal" not in h0
    h2 = next(h for h in history if h["decision_id"] == d2)
    assert h2["has_outcome"] is False and h2["finding"] is None
    assert h2["channel"] == "red" and h2["final_channel"] == "yellow"

    passengers = list(store.iter_history("passenger", T0 + timedelta(minutes=3), include_personal=True))
    assert [p["decision_id"] for p in passengers] == [batch[i]["decision_id"] for i in (3, 5, 7)]
    assert passengers[0]["finding"] is False and passengers[0]["personal"]["name"] == "Person 3"
    assert len(list(store.iter_history(None, None))) == 8


def test_export_contains_the_head_hash(store, make_decision, engine, tmp_path) -> None:
    batch = [make_decision(i) for i in range(6)]
    store.append_decisions(batch)
    store.append_review(batch[0]["decision_id"], "sup", "override", "red", "intel")
    head = verify_chain(engine).head_hash

    info = store.export(tmp_path / "out.jsonl")
    assert info["decisions"] == 6 and info["head_hash"] == head
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert lines[0]["type"] == "chain_head" and lines[0]["head_hash"] == head and lines[0]["head_seq"] == 7
    assert lines[-1] == {"type": "end", "decisions": 6, "head_hash": head}
    body = lines[1:-1]
    assert [d["public"]["decision_id"] for d in body] == [b["decision_id"] for b in batch]
    passenger_line = body[1]
    assert "personal" not in passenger_line and "Person" not in json.dumps(body)
    # each exported line carries what an outside body needs to recompute its hash
    from service.store import record_hash

    for d in body:
        assert d["hash"] == record_hash(
            seq=d["seq"],
            record_type=d["record_type"],
            record_id=d["record_id"],
            created_at=d["created_at"],
            public=d["public"],
            personal_digest=d["personal_digest"],
            prev_hash=d["prev_hash"],
        )
    assert verify_chain(engine, expect_hash=lines[0]["head_hash"]).ok

    info = store.export(tmp_path / "out.csv", fmt="csv")
    text_lines = (tmp_path / "out.csv").read_text().splitlines()
    assert text_lines[0].startswith("# chain_head ") and f"head_hash={head}" in text_lines[0]
    assert text_lines[-1] == f"# end decisions=6 head_hash={head}"
    rows = list(csv.DictReader(text_lines[1:-1]))
    assert [r["decision_id"] for r in rows] == [b["decision_id"] for b in batch]
    assert float(rows[2]["score"]) == batch[2]["score"]
    with pytest.raises(ValueError):
        store.export(tmp_path / "out.xml", fmt="xml")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".export-")) == []
