"""Canonical JSON, record hashes and chain verification.

Hash definition (version 1) — enough for an outside body to re-implement it
----------------------------------------------------------------------------
``canonical(x)``: JSON with keys sorted (by code point), no whitespace
(``,`` and ``:`` separators), non-ASCII characters written as UTF-8 (not
``\\u`` escapes), floats written as Python's shortest round-trip ``repr``
(``0.1``, ``1e-07``, ``1e+300``), NaN and ±Infinity refused, then encoded as
UTF-8.  Only objects with string keys, arrays, strings, integers, floats,
booleans and null are allowed.

``personal_digest = sha256_hex(canonical(personal))`` (``canonical(None)`` is
``null``, so a record without personal data has ``sha256_hex(b"null")``).

``hash = sha256_hex(canonical({"v": 1, "seq": seq, "record_type": t,
"record_id": id, "created_at": iso, "public": public,
"personal_digest": personal_digest, "prev_hash": prev_hash}))`` where ``iso``
is the UTC timestamp as ``YYYY-MM-DDTHH:MM:SS.ffffff+00:00``.  The first
record has ``prev_hash = GENESIS`` (64 zeros) and ``seq = 1``; after retention
deletion, the first kept record's ``prev_hash`` is the anchor's hash.

The personal fields themselves are not hashed, only their digest: masking
(``personal := NULL``) leaves every hash valid, while an unmasked personal
field that was altered no longer matches its digest.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from numbers import Integral, Real
from typing import Any

import orjson
from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from service.store import tables
from service.store.db import CanonicalJSON, db_errors, is_postgres

__all__ = [
    "GENESIS",
    "HASH_VERSION",
    "CanonicalJSON",
    "VerifyResult",
    "canonical_json",
    "envelope_json",
    "format_ts",
    "hash_of_envelope",
    "normalize_json",
    "personal_digest",
    "record_hash",
    "sha256_hex",
    "verify_chain",
]

GENESIS = "0" * 64
HASH_VERSION = 1
NULL_DIGEST = hashlib.sha256(b"null").hexdigest()


def normalize_json(value: Any, _path: str = "$") -> Any:
    """A plain-JSON copy of ``value`` (dict/list/str/int/float/bool/None); refuses anything else.

    Tuples become lists, numeric subclasses (e.g. numpy scalars) become ``int``/
    ``float``.  NaN and infinities raise :class:`ValueError` naming where they are.
    The definition of canonical JSON starts here (:func:`_reference_canonical`); the request path
    takes :func:`canonical_json`'s orjson path, which writes the same bytes.
    """
    return _normalize(value, _path)


def _normalize(value: Any, _path: str) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value if type(value) is str else str.__str__(value)
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        f = float(value)
        if not math.isfinite(f):
            raise ValueError(f"non-finite number at {_path}: {f!r} (NaN/Infinity are not valid JSON)")
        return f
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"non-string key {key!r} at {_path}")
            out[key] = _normalize(item, f"{_path}.{key}")
        return out
    if isinstance(value, (list, tuple)):
        return [_normalize(item, f"{_path}[{i}]") for i, item in enumerate(value)]
    if type(value).__name__ == "bool_":  # numpy.bool_ without importing numpy
        return bool(value)
    raise TypeError(f"value of type {type(value).__name__} at {_path} is not JSON-serialisable")


#: Below this magnitude Python's ``repr`` writes a float in exponent form (``1e-05``) where orjson
#: writes it otherwise (``0.00001``, ``1e-7``); at and above it they write the same text (tested).
_REPR_EXPONENT_BELOW = 1e-4


def canonical_json(value: Any) -> bytes:
    """Canonical UTF-8 JSON bytes of ``value`` (see module docstring).

    The definition is :func:`_reference_canonical` (``json.dumps`` with sorted keys); a decision's
    record is ~12 KB of JSON, which that encoder takes ~0.1 ms to write, so plain values are written
    by orjson instead, whose output is byte for byte the same except for floats below 1e-4 in
    magnitude, which are therefore handed to it already written by ``repr`` (a property test
    compares both encoders on arbitrary values). Anything else (subclasses, numpy scalars, integers
    beyond 64 bits, lone surrogates, errors to be named) takes the reference path.
    """
    try:
        return orjson.dumps(_orjson_ready(value), option=orjson.OPT_SORT_KEYS)
    except (TypeError, ValueError):  # orjson.JSONEncodeError is a TypeError
        return _reference_canonical(value)


def _orjson_ready(value: Any) -> Any:
    """A copy of a plain-JSON value that orjson writes canonically; raises on anything else.

    The items of a dict or list that orjson writes as they are (strings, ints, bools, None, floats it
    writes as ``repr`` does) are checked in the loop rather than by a call each: a decision's record
    holds some 300 of them, and the call per item was a third of the walk. The dict and the list
    loop test the same condition, spelled out in each: a shared helper, a set of types or a
    comprehension over ``zip`` each measured 15–25 % slower."""
    t = type(value)
    low, inf = _REPR_EXPONENT_BELOW, math.inf
    if t is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError
            ti = type(item)
            if (
                ti is str
                or ti is int
                or ti is bool
                or item is None
                or (ti is float and (low <= abs(item) < inf or item == 0.0))
            ):
                out[key] = item
            else:
                out[key] = _orjson_ready(item)
        return out
    if t is list:
        items = []
        for item in value:
            ti = type(item)
            if (
                ti is str
                or ti is int
                or ti is bool
                or item is None
                or (ti is float and (low <= abs(item) < inf or item == 0.0))
            ):
                items.append(item)
            else:
                items.append(_orjson_ready(item))
        return items
    if t is str or t is int or t is bool or value is None:
        return value
    if t is float:
        if value != value or value in (math.inf, -math.inf):
            raise ValueError
        if value and -_REPR_EXPONENT_BELOW < value < _REPR_EXPONENT_BELOW:
            return orjson.Fragment(repr(value))
        return value
    raise TypeError


def _reference_canonical(value: Any) -> bytes:
    """The definition of :func:`canonical_json`: normalise, then ``json.dumps`` with sorted keys."""
    text = json.dumps(
        normalize_json(value),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as err:  # lone surrogates
        raise ValueError(f"string is not valid Unicode: {err}") from err


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def personal_digest(personal: Any) -> str:
    return sha256_hex(canonical_json(personal))


def format_ts(ts: datetime) -> str:
    """The timestamp form covered by the hash: UTC, microseconds, ``+00:00``."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError("naive datetime refused: timestamps must be timezone-aware")
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


def record_hash(
    *,
    seq: int,
    record_type: str,
    record_id: str,
    created_at: datetime | str,
    public: Any,
    personal_digest: str,
    prev_hash: str,
) -> str:
    """The chain hash of one ledger record (version :data:`HASH_VERSION`)."""
    return hash_of_envelope(
        seq=seq,
        record_type=record_type,
        record_id=record_id,
        created_at=created_at,
        public_json=canonical_json(public),
        personal_digest=personal_digest,
        prev_hash=prev_hash,
    )


def envelope_json(
    *,
    seq: int,
    record_type: str,
    record_id: str,
    created_at: datetime | str,
    public_json: bytes,
    personal_digest: str,
    prev_hash: str,
) -> bytes:
    """``canonical_json`` of the hashed envelope, from the canonical bytes of ``public``.

    The envelope's keys are fixed, so its canonical form is the concatenation below (keys in code-point
    order: created_at, personal_digest, prev_hash, public, record_id, record_type, seq, v). Building it
    this way lets the store canonicalise a record's (large) public part once, before it takes the
    append lock, and only add the (small) chain fields under the lock. ``public_json`` must be
    ``canonical_json(public)``; a test checks the result against ``canonical_json`` of the whole dict.
    """
    ts = created_at if isinstance(created_at, str) else format_ts(created_at)
    return b"".join(
        (
            b'{"created_at":',
            canonical_json(ts),
            b',"personal_digest":',
            canonical_json(personal_digest),
            b',"prev_hash":',
            canonical_json(prev_hash),
            b',"public":',
            public_json,
            b',"record_id":',
            canonical_json(record_id),
            b',"record_type":',
            canonical_json(record_type),
            b',"seq":',
            str(int(seq)).encode(),
            b',"v":',
            str(HASH_VERSION).encode(),
            b"}",
        )
    )


def hash_of_envelope(**fields: Any) -> str:
    """The chain hash from the envelope fields (see :func:`envelope_json`)."""
    return sha256_hex(envelope_json(**fields))


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int
    head_hash: str
    first_broken_seq: int | None
    reason: str | None
    anchor_seq: int | None = None


def _select_ledger() -> Any:
    lg = tables.ledger
    return select(
        lg.c.seq,
        lg.c.record_type,
        lg.c.record_id,
        lg.c.created_at,
        lg.c.public,
        lg.c.personal,
        lg.c.personal_digest,
        lg.c.prev_hash,
        lg.c.hash,
        lg.c.masked_at,
    ).order_by(lg.c.seq)


def _rows(conn: Connection, batch_size: int) -> Iterator[Any]:
    result = conn.execution_options(yield_per=batch_size).execute(_select_ledger())
    try:
        yield from result
    finally:
        result.close()


def _verify_on(conn: Connection, expect_hash: str | None, batch_size: int) -> VerifyResult:
    anchor = conn.execute(
        select(tables.ledger_anchor.c.seq, tables.ledger_anchor.c.hash).where(tables.ledger_anchor.c.id == 1)
    ).first()
    anchor_seq = int(anchor.seq) if anchor is not None else None
    prev_hash = anchor.hash if anchor is not None else GENESIS
    expected_seq = (anchor_seq or 0) + 1
    records = 0
    expect_found = expect_hash is None or expect_hash == prev_hash
    last_delete: dict[str, Any] | None = None
    last_delete_seq: int | None = None

    def broken(seq: int | None, reason: str) -> VerifyResult:
        return VerifyResult(False, records, prev_hash, seq, reason, anchor_seq)

    for row in _rows(conn, batch_size):
        seq = int(row.seq)
        if seq != expected_seq:
            if seq > expected_seq:
                missing = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq}..{seq - 1}"
                return broken(seq, f"seq gap: record(s) {missing} missing before seq {seq} (deleted?)")
            return broken(seq, f"seq out of order: expected {expected_seq}, found {seq}")
        if row.prev_hash != prev_hash:
            return broken(
                seq,
                f"prev_hash mismatch at seq {seq}: the record before it was deleted, replaced or reordered",
            )
        if row.record_type not in tables.RECORD_TYPES:
            return broken(seq, f"unknown record_type {row.record_type!r} at seq {seq}")
        try:
            recomputed = record_hash(
                seq=seq,
                record_type=row.record_type,
                record_id=row.record_id,
                created_at=row.created_at,
                public=row.public,
                personal_digest=row.personal_digest,
                prev_hash=row.prev_hash,
            )
        except (TypeError, ValueError) as err:
            return broken(seq, f"record content at seq {seq} cannot be canonicalised: {err}")
        if recomputed != row.hash:
            return broken(seq, f"hash mismatch at seq {seq}: record content was edited")
        if row.personal is not None:
            if personal_digest(row.personal) != row.personal_digest:
                return broken(seq, f"personal data at seq {seq} does not match its digest (edited)")
        elif row.masked_at is None and row.personal_digest != NULL_DIGEST:
            return broken(seq, f"personal data at seq {seq} removed without being marked as masked")
        if (
            row.record_type == "retention"
            and isinstance(row.public, dict)
            and row.public.get("action") == "delete"
        ):
            last_delete, last_delete_seq = row.public, seq
        prev_hash = row.hash
        expected_seq = seq + 1
        records += 1
        if not expect_found and row.hash == expect_hash:
            expect_found = True

    if anchor is not None and (
        last_delete is None
        or last_delete.get("anchor_seq") != anchor_seq
        or last_delete.get("anchor_hash") != anchor.hash
    ):
        return VerifyResult(
            False,
            records,
            prev_hash,
            last_delete_seq if last_delete_seq is not None else (anchor_seq or 0) + 1,
            "ledger anchor does not match the latest retention-deletion record in the chain",
            anchor_seq,
        )
    if not expect_found:
        return VerifyResult(
            False,
            records,
            prev_hash,
            None,
            f"expected hash {expect_hash} not found in the chain (records removed from the end?)",
            anchor_seq,
        )
    return VerifyResult(True, records, prev_hash, None, None, anchor_seq)


def verify_chain(
    source: Engine | Connection | Session,
    *,
    expect_hash: str | None = None,
    batch_size: int = 2000,
) -> VerifyResult:
    """Walk the ledger in ``seq`` order and recompute every link.

    Detects an edited record (hash mismatch), an edited unmasked personal field
    (digest mismatch), a deleted record (seq gap or ``prev_hash`` mismatch), a
    reordered record (``seq`` is hashed, so swapping breaks both hashes) and a
    tampered retention anchor.  Rows are streamed (``yield_per``), so memory use
    is constant in the ledger size.

    Removing records from the *end* of the chain cannot be seen from inside;
    pass ``expect_hash`` (a head hash published earlier, e.g. from an export)
    and verification fails unless that hash is still in the chain.

    ``source`` may be an Engine (a consistent snapshot is opened), a Connection
    or a Session (their current transaction is used).
    """
    with db_errors("chain verification"):
        if isinstance(source, Session):
            return _verify_on(source.connection(), expect_hash, batch_size)
        if isinstance(source, Connection):
            if source.in_transaction():
                return _verify_on(source, expect_hash, batch_size)
            with source.begin():
                return _verify_on(source, expect_hash, batch_size)
        with source.connect() as conn:
            if is_postgres(conn):
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                return _verify_on(conn, expect_hash, batch_size)
