"""Masking of personal fields and retention deletion with a chain anchor (SQLite + PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from service.store import GENESIS, verify_chain
from service.store.tables import decisions, ledger, ledger_anchor, outcomes, reviews

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
OLD = T0 - timedelta(days=400)


def _rows(engine, *cols, where=None):
    stmt = select(*cols).order_by(ledger.c.seq)
    if where is not None:
        stmt = stmt.where(where)
    with engine.connect() as conn:
        return conn.execute(stmt).all()


def test_masking_keeps_chain_valid_and_removes_personal_fields(store, make_decision, engine) -> None:
    old = [make_decision(i, created_at=OLD + timedelta(minutes=i)) for i in range(6)]
    new = [make_decision(i) for i in range(6, 10)]
    store.append_decisions(old + new)
    old_passenger = old[1]["decision_id"]
    store.append_outcome(old_passenger, "insp", True, None, "found J. Doe's forged visa", created_at=OLD)
    store.append_outcome(old[0]["decision_id"], "insp", False, None, "cargo note stays", created_at=OLD)
    head_before = verify_chain(engine).head_hash

    masked = store.mask_personal(T0 - timedelta(days=365))
    assert masked == 3 + 1  # three old passenger decisions + one passenger outcome note
    res = verify_chain(engine, expect_hash=head_before)
    assert res.ok, res.reason

    got = store.get_decision(old_passenger)
    assert got["input_personal"] is None and got["personal_masked"] is True and got["masked_at"] is not None
    assert got["input_public"] == old[1]["input_public"]  # public content untouched
    assert got["outcomes"][0]["note"] is None and got["outcomes"][0]["note_masked"] is True
    cargo = store.get_decision(old[0]["decision_id"])
    assert cargo["outcomes"][0]["note"] == "cargo note stays"
    recent = store.get_decision(new[1]["decision_id"])
    assert recent["input_personal"] == new[1]["input_personal"] and recent["personal_masked"] is False

    rows = _rows(engine, ledger.c.seq, ledger.c.personal, ledger.c.masked_at, ledger.c.created_at)
    for r in rows:
        if r.created_at < T0 - timedelta(days=365):
            assert r.personal is None
    assert sum(r.masked_at is not None for r in rows) == 4
    with engine.connect() as conn:
        blob = str(conn.execute(select(ledger.c.personal, ledger.c.public)).all())
        notes = conn.execute(select(outcomes.c.note)).scalars().all()
    assert "Person 1" not in blob and "Person 3" not in blob and "Person 7" in blob
    assert "found J. Doe's forged visa" not in str(notes)

    # the masking itself is documented in the chain
    last = _rows(engine, ledger.c.record_type, ledger.c.public)[-1]
    assert last.record_type == "retention" and last.public["action"] == "mask"
    assert last.public["masked_records"] == 4
    # idempotent: nothing left to mask, no extra record
    assert store.mask_personal(T0 - timedelta(days=365)) == 0
    assert len(_rows(engine, ledger.c.seq)) == len(rows)
    assert verify_chain(engine).ok


def test_tampering_after_masking_is_still_detected(store, make_decision, engine, raw_sql) -> None:
    store.append_decisions([make_decision(i, created_at=OLD) for i in range(4)])
    store.mask_personal(T0)
    row = _rows(engine, ledger.c.seq, ledger.c.public, where=ledger.c.seq == 2)[0]
    raw_sql("UPDATE ledger SET public = :p WHERE seq = 2", json_params=("p",), p=dict(row.public, score=0.99))
    res = verify_chain(engine)
    assert not res.ok and res.first_broken_seq == 2


def test_retention_deletion_with_anchor_keeps_chain_verifiable(store, make_decision, engine) -> None:
    old = [make_decision(i, created_at=OLD + timedelta(minutes=i)) for i in range(10)]
    new = [make_decision(i) for i in range(10, 16)]
    store.append_decisions(old)
    store.append_review(old[2]["decision_id"], "sup", "override", "red", "intel", created_at=OLD)
    store.append_outcome(old[3]["decision_id"], "insp", True, 10.0, None, created_at=OLD)
    store.append_decisions(new)
    # a late review of an old decision: its ledger record stays (inside the kept part of the chain)
    store.append_review(old[4]["decision_id"], "sup", "override", "yellow", "late look")
    first_kept_hash = store.get_decision(new[0]["decision_id"])["hash"]
    assert verify_chain(engine).ok

    deleted = store.delete_before(T0 - timedelta(days=1))
    assert deleted == 12  # 10 old decisions + 1 review + 1 outcome
    res = verify_chain(engine)
    assert res.ok, res.reason
    assert res.anchor_seq == 12
    assert res.records == 6 + 1 + 1  # new decisions, late review, retention record

    with engine.connect() as conn:
        anchor = conn.execute(select(ledger_anchor)).one()
        first = conn.execute(select(ledger).order_by(ledger.c.seq).limit(1)).one()
        n_dec = conn.execute(select(func.count()).select_from(decisions)).scalar_one()
        n_rev = conn.execute(select(func.count()).select_from(reviews)).scalar_one()
    assert anchor.seq == 12 and anchor.deleted_records == 12
    assert first.seq == 13 and first.prev_hash == anchor.hash and first.hash == first_kept_hash
    assert n_dec == 6 and n_rev == 0  # the late review's index row went with its decision
    assert store.get_decision(old[0]["decision_id"]) is None
    last = _rows(engine, ledger.c.record_type, ledger.c.public)[-1]
    assert last.record_type == "retention" and last.public["action"] == "delete"
    assert (last.public["anchor_seq"], last.public["anchor_hash"]) == (anchor.seq, anchor.hash)

    # appends continue the chain; a second deletion moves the anchor forward
    store.append_decision(**make_decision(99))
    assert store.delete_before(T0 - timedelta(days=1)) == 0
    assert store.delete_before(T0 + timedelta(minutes=13)) == 3  # decisions 10, 11, 12
    res = verify_chain(engine)
    assert res.ok, res.reason
    assert res.anchor_seq == 15
    with engine.connect() as conn:
        assert conn.execute(select(ledger_anchor.c.deleted_records)).scalar_one() == 15


def test_deleting_everything_leaves_a_verifiable_retention_record(store, make_decision, engine) -> None:
    store.append_decisions([make_decision(i, created_at=OLD) for i in range(3)])
    assert store.delete_before(T0) == 3
    res = verify_chain(engine)
    assert res.ok and res.records == 1 and res.anchor_seq == 3
    assert store.list_decisions() == ([], 0)
    assert store.head()["seq"] == 4


def test_tampered_anchor_or_further_deletion_is_detected(store, make_decision, engine, raw_sql) -> None:
    store.append_decisions([make_decision(i, created_at=OLD + timedelta(minutes=i)) for i in range(5)])
    store.append_decisions([make_decision(i) for i in range(5, 9)])
    store.delete_before(T0 - timedelta(days=1))
    assert verify_chain(engine).ok

    # someone deletes more of the prefix without going through the store
    raw_sql("DELETE FROM decisions WHERE ledger_seq = 6")
    raw_sql("DELETE FROM ledger WHERE seq = 6")
    res = verify_chain(engine)
    assert not res.ok and res.first_broken_seq == 7 and "seq gap" in res.reason

    # … and moves the anchor to hide it: the retention record in the chain disagrees
    with engine.connect() as conn:
        h6 = conn.execute(select(ledger.c.prev_hash).where(ledger.c.seq == 7)).scalar_one()
    raw_sql("UPDATE ledger_anchor SET seq = 6, hash = :h", h=h6)
    res = verify_chain(engine)
    assert not res.ok and "anchor" in res.reason

    # removing the anchor row altogether makes the chain start in mid-air
    raw_sql("DELETE FROM ledger_anchor")
    res = verify_chain(engine)
    assert not res.ok and res.first_broken_seq == 7 and res.anchor_seq is None
    assert res.head_hash == GENESIS
