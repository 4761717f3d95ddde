"""Canonical JSON, record hashes, and tamper detection by verify_chain (SQLite + PostgreSQL)."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.store import GENESIS, AuditStore, canonical_json, record_hash, verify_chain
from service.store.chain import envelope_json, format_ts, personal_digest
from service.store.tables import ledger

# --------------------------------------------------------------------------- pure functions


def test_canonical_json_is_sorted_compact_utf8() -> None:
    value = {"b": [1, 2.5, None, True], "a": {"z": "é€", "y": -0.0}, "c": 10**30}
    out = canonical_json(value)
    assert (
        out == '{"a":{"y":-0.0,"z":"é€"},"b":[1,2.5,null,true],"c":1000000000000000000000000000000}'.encode()
    )
    assert canonical_json({"a": 1, "b": 2}) == canonical_json({"b": 2, "a": 1})


@pytest.mark.parametrize("f", [0.1, 1e-7, 1e300, 2.0**-1074, 123456789.123456789, -1.5e-10])
def test_canonical_floats_round_trip(f: float) -> None:
    text = canonical_json({"x": f}).decode()
    assert json.loads(text)["x"] == f
    assert text == '{"x":' + repr(f) + "}"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_canonical_refuses_nan_and_infinity(bad: float) -> None:
    with pytest.raises(ValueError, match="non-finite"):
        canonical_json({"x": [1, {"y": bad}]})


def test_canonical_refuses_non_json() -> None:
    with pytest.raises(TypeError):
        canonical_json({1: "int key"})
    with pytest.raises(TypeError):
        canonical_json({"x": {1, 2}})
    with pytest.raises(TypeError):
        canonical_json({"x": object()})
    with pytest.raises(ValueError):
        canonical_json({"x": "\ud800"})  # lone surrogate


def test_canonical_normalises_tuples_and_numeric_subclasses() -> None:
    class MyFloat(float):
        def __repr__(self) -> str:
            return "MyFloat!"

    assert canonical_json({"t": (1, 2), "f": MyFloat(0.5)}) == b'{"f":0.5,"t":[1,2]}'


def test_record_hash_covers_every_field_and_not_personal_values() -> None:
    base = {
        "seq": 3,
        "record_type": "decision",
        "record_id": "0b1c4f4e-2d3a-4c4b-9a44-2f2c6a1d8e01",
        "created_at": datetime(2025, 1, 1, tzinfo=UTC),
        "public": {"score": 0.5},
        "personal_digest": personal_digest({"name": "A"}),
        "prev_hash": GENESIS,
    }
    h = record_hash(**base)
    assert len(h) == 64 and int(h, 16) >= 0
    # same instant expressed in another zone → same hash
    other_zone = datetime(2025, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    assert record_hash(**{**base, "created_at": other_zone}) == h
    assert record_hash(**{**base, "created_at": format_ts(base["created_at"])}) == h
    changes = {
        "seq": 4,
        "record_type": "review",
        "record_id": "0b1c4f4e-2d3a-4c4b-9a44-2f2c6a1d8e02",
        "created_at": datetime(2025, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        "public": {"score": 0.5000000000000001},
        "personal_digest": personal_digest({"name": "B"}),
        "prev_hash": "1" * 64,
    }
    for key, value in changes.items():
        assert record_hash(**{**base, key: value}) != h, key
    assert personal_digest(None) == hashlib.sha256(b"null").hexdigest()
    with pytest.raises(ValueError):
        format_ts(datetime(2025, 1, 1))  # naive


def test_record_hash_matches_documented_definition() -> None:
    """An outside body can recompute the hash from the documented envelope."""
    env = {
        "v": 1,
        "seq": 1,
        "record_type": "read",
        "record_id": "r",
        "created_at": "2025-01-01T00:00:00.000000+00:00",
        "public": {"what": "x"},
        "personal_digest": hashlib.sha256(b"null").hexdigest(),
        "prev_hash": GENESIS,
    }
    expected = hashlib.sha256(
        json.dumps(env, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()
    got = record_hash(
        seq=1,
        record_type="read",
        record_id="r",
        created_at=datetime(2025, 1, 1, tzinfo=UTC),
        public={"what": "x"},
        personal_digest=env["personal_digest"],
        prev_hash=GENESIS,
    )
    assert got == expected


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


_tiny_floats = st.floats(min_value=-1e-4, max_value=1e-4, allow_nan=False) | st.floats(
    min_value=-1e-3, max_value=1e-3, allow_nan=False
)
_any_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _tiny_floats
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5)
        | st.tuples(children, children)
        | st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=1000, deadline=None)
@given(value=_any_json)
def test_the_fast_canonical_encoder_writes_the_reference_bytes(value) -> None:
    """``canonical_json`` writes with orjson; the definition is ``json.dumps`` with sorted keys.
    Both must give the same bytes for every value, or both refuse it."""
    from service.store.chain import _reference_canonical

    try:
        want = _reference_canonical(value)
    except ValueError:
        with pytest.raises(ValueError):
            canonical_json(value)
        return
    assert canonical_json(value) == want


@pytest.mark.parametrize(
    "value",
    [
        1e-05,
        -9.999999999999999e-05,
        5e-324,
        1e-07,
        0.0001,
        [1.5e-5, {"a": -2.5e-9}],
        [-0.0, 0.0, 1e308, -1e-4, 1e16, True, None, "1e-05"],
        {"a": {"b": [{"c": 3e-5, "d": 1e-4}]}, "e": [[2**70]]},
        {"big": 2**64, "x": 0.1},
        (1, 2.0),
        {"np": __import__("numpy").float64(3.3e-5)},
        {"sub": type("S", (str,), {})("x")},
    ],
)
def test_fast_canonical_edge_cases(value) -> None:
    from service.store.chain import _reference_canonical

    assert canonical_json(value) == _reference_canonical(value)


@settings(max_examples=300, deadline=None)
@given(
    seq=st.integers(min_value=1, max_value=2**62),
    record_type=st.sampled_from(["decision", "review", "outcome", "read", "retention"]),
    record_id=st.text(),
    created_at=st.datetimes(timezones=st.just(UTC)),
    public=st.dictionaries(st.text(), _json_values, max_size=6),
    prev_hash=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
)
def test_the_envelope_built_from_canonical_public_bytes_is_the_canonical_envelope(
    seq, record_type, record_id, created_at, public, prev_hash
) -> None:
    """The store canonicalises a record's public part once, outside the lock, and adds the chain
    fields to those bytes; that must be exactly ``canonical_json`` of the whole envelope."""
    digest = personal_digest(None)
    envelope = {
        "v": 1,
        "seq": seq,
        "record_type": record_type,
        "record_id": record_id,
        "created_at": format_ts(created_at),
        "public": public,
        "personal_digest": digest,
        "prev_hash": prev_hash,
    }

    def built() -> bytes:
        return envelope_json(
            seq=seq,
            record_type=record_type,
            record_id=record_id,
            created_at=created_at,
            public_json=canonical_json(public),
            personal_digest=digest,
            prev_hash=prev_hash,
        )

    try:
        want = canonical_json(envelope)
    except ValueError:  # lone surrogates: refused both ways
        with pytest.raises(ValueError):
            built()
        return
    assert built() == want


# --------------------------------------------------------------------------- chain on a database


def _fill(store: AuditStore, make_decision, n: int = 12) -> list[str]:
    hashes = [store.append_decision(**make_decision(i)) for i in range(n)]
    return hashes


def test_empty_chain_verifies(engine) -> None:
    res = verify_chain(engine)
    assert res.ok and res.records == 0 and res.head_hash == GENESIS and res.first_broken_seq is None


def test_chain_of_appended_records_verifies(engine, store, make_decision) -> None:
    hashes = _fill(store, make_decision, 20)
    some = make_decision(1)["decision_id"]
    store.append_review(
        store.list_decisions(limit=1)[0][0]["decision_id"], "sup-1", "override", "red", "manual intel"
    )
    store.append_read("auditor-1", some, "get_decision")
    res = verify_chain(engine)
    assert res.ok, res.reason
    assert res.records == 22
    assert res.head_hash == store.head()["hash"]
    assert res.head_hash != hashes[-1]
    # consecutive links
    with engine.connect() as conn:
        rows = conn.execute(
            select(ledger.c.seq, ledger.c.prev_hash, ledger.c.hash).order_by(ledger.c.seq)
        ).all()
    assert [r.seq for r in rows] == list(range(1, 23))
    assert rows[0].prev_hash == GENESIS
    assert all(rows[i].prev_hash == rows[i - 1].hash for i in range(1, len(rows)))
    assert [r.hash for r in rows[:20]] == hashes


def test_verify_streams_in_small_batches_and_accepts_session_and_connection(
    engine, store, make_decision
) -> None:
    _fill(store, make_decision, 15)
    assert verify_chain(engine, batch_size=2).records == 15
    with Session(engine) as session:
        assert verify_chain(session, batch_size=4).ok
    with engine.connect() as conn:
        assert verify_chain(conn).ok


def test_edited_public_field_is_named(engine, store, make_decision, raw_sql) -> None:
    _fill(store, make_decision, 10)
    with engine.connect() as conn:
        public = conn.execute(select(ledger.c.public).where(ledger.c.seq == 7)).scalar_one()
    public["score"] = 0.0  # make a red decision look harmless
    raw_sql("UPDATE ledger SET public = :p WHERE seq = 7", json_params=("p",), p=public)
    res = verify_chain(engine)
    assert not res.ok
    assert res.first_broken_seq == 7
    assert "hash mismatch" in res.reason and "edited" in res.reason
    assert res.records == 6


def test_edit_with_recomputed_hash_breaks_the_next_link(engine, store, make_decision, raw_sql) -> None:
    _fill(store, make_decision, 8)
    with engine.connect() as conn:
        row = conn.execute(select(ledger).where(ledger.c.seq == 4)).one()
    public = dict(row.public, channel="red" if row.public["channel"] != "red" else "green")
    forged = record_hash(
        seq=4,
        record_type=row.record_type,
        record_id=row.record_id,
        created_at=row.created_at,
        public=public,
        personal_digest=row.personal_digest,
        prev_hash=row.prev_hash,
    )
    raw_sql("UPDATE ledger SET public = :p, hash = :h WHERE seq = 4", json_params=("p",), p=public, h=forged)
    res = verify_chain(engine)
    assert not res.ok and res.first_broken_seq == 5 and "prev_hash mismatch" in res.reason


def test_edited_timestamp_or_type_is_detected(engine, store, make_decision, raw_sql) -> None:
    _fill(store, make_decision, 5)
    store.append_read("aud", None, "list")
    raw_sql("UPDATE ledger SET record_type = 'retention' WHERE seq = 6")
    res = verify_chain(engine)
    assert not res.ok and res.first_broken_seq == 6


def test_deleted_middle_record_is_detected(engine, store, make_decision, raw_sql) -> None:
    _fill(store, make_decision, 4)
    store.append_read("aud", None, "list")  # seq 5 — no index row refers to it
    _fill(store, make_decision, 3)
    assert raw_sql("DELETE FROM ledger WHERE seq = 5") == 1
    res = verify_chain(engine)
    assert not res.ok
    assert res.first_broken_seq == 6
    assert "seq gap" in res.reason and "5" in res.reason


def test_deleted_decision_with_its_index_row_is_detected(engine, store, make_decision, raw_sql) -> None:
    _fill(store, make_decision, 6)
    raw_sql("DELETE FROM decisions WHERE ledger_seq = 3")
    raw_sql("DELETE FROM ledger WHERE seq = 3")
    res = verify_chain(engine)
    assert not res.ok and res.first_broken_seq == 4


def test_renumbered_deletion_is_detected_by_prev_hash(engine, store, make_decision, raw_sql) -> None:
    """Deleting record 3 and shifting the later seqs down closes the gap but not the hash link."""
    for i in range(5):
        store.append_read("aud", None, f"read {i}")
    raw_sql("DELETE FROM ledger WHERE seq = 3")
    raw_sql("UPDATE ledger SET seq = seq - 1 WHERE seq > 3 AND seq = 4")
    raw_sql("UPDATE ledger SET seq = seq - 1 WHERE seq = 5")
    res = verify_chain(engine)
    assert not res.ok and res.first_broken_seq == 3 and "prev_hash" in res.reason


def test_reordered_records_are_detected(engine, store, make_decision, raw_sql) -> None:
    for i in range(6):
        store.append_read("aud", None, f"read {i}")
    raw_sql("UPDATE ledger SET seq = 1000 WHERE seq = 3")
    raw_sql("UPDATE ledger SET seq = 3 WHERE seq = 4")
    raw_sql("UPDATE ledger SET seq = 4 WHERE seq = 1000")
    res = verify_chain(engine)
    assert not res.ok and res.first_broken_seq == 3


def test_tampered_unmasked_personal_field_is_detected(engine, store, make_decision, raw_sql) -> None:
    _fill(store, make_decision, 6)  # seq 2, 4, 6 are passenger decisions with personal data
    with engine.connect() as conn:
        personal = conn.execute(select(ledger.c.personal).where(ledger.c.seq == 4)).scalar_one()
    assert personal["name"] == "Person 3"
    personal["passport"] = "X0000000"
    raw_sql("UPDATE ledger SET personal = :p WHERE seq = 4", json_params=("p",), p=personal)
    res = verify_chain(engine)
    assert not res.ok and res.first_broken_seq == 4 and "personal" in res.reason


def test_personal_removed_without_masking_flag_is_detected(engine, store, make_decision, raw_sql) -> None:
    _fill(store, make_decision, 4)
    raw_sql("UPDATE ledger SET personal = NULL WHERE seq = 2")
    res = verify_chain(engine)
    assert not res.ok and res.first_broken_seq == 2 and "masked" in res.reason


def test_removed_tail_is_caught_by_expected_hash(engine, store, make_decision, raw_sql) -> None:
    _fill(store, make_decision, 5)
    published = store.head()["hash"]
    assert verify_chain(engine, expect_hash=published).ok
    _fill(store, make_decision, 2)  # legitimate later appends keep the published hash inside the chain
    assert verify_chain(engine, expect_hash=published).ok
    raw_sql("DELETE FROM decisions WHERE ledger_seq >= 5")
    raw_sql("DELETE FROM ledger WHERE seq >= 5")
    assert verify_chain(engine).ok  # a cut tail is invisible from inside …
    res = verify_chain(engine, expect_hash=published)
    assert not res.ok and "not found" in res.reason  # … but not to someone holding a published head


def test_awkward_json_values_survive_the_database(engine, store, make_decision) -> None:
    awkward = {
        "tiny": 5e-324,
        "huge": 1e300,
        "sum": 0.1 + 0.2,
        "neg_zero": -0.0,
        "big_int": 2**70,
        "text": 'quote " backslash \\ tab \t nul \x00 emoji 🛃 rtl עברית',
        "empty": {"list": [], "dict": {}, "str": ""},
        "tuple": (1, 2),
        "keys": {"B": 1, "a": 2, "é": 3, "": 4},
    }
    kw = make_decision(1, input_public=awkward, explanation={"contributions": {"x": 1e-17}})
    store.append_decision(**kw)
    res = verify_chain(engine)
    assert res.ok, res.reason
    got = store.get_decision(kw["decision_id"])["input_public"]
    assert got == {**awkward, "tuple": [1, 2]}
    assert canonical_json(got) == canonical_json(awkward)
