"""The audit store: an append-only, hash-chained log of decisions and what followed them.

Every write goes through one serialised "append" transaction:

* PostgreSQL: ``pg_advisory_xact_lock(LEDGER_LOCK_KEY)`` is the first statement,
  then the head is read (``SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1``);
  READ COMMITTED guarantees that read sees the previous lock holder's commit.
* SQLite: writers queue on the file's writer lock, then ``BEGIN IMMEDIATE``
  takes the single database write lock before the head is read (see
  :func:`service.store.db.write_transaction`).

The ledger row(s) and their index rows (``decisions``/``reviews``/``outcomes``)
commit in that one transaction.  When an ``append_*`` method returns, the
commit has returned, i.e. the record is durable (SQLite ``synchronous=FULL``
fsyncs the WAL; PostgreSQL runs the transaction with ``synchronous_commit=on``).
Any database failure raises :class:`StoreUnavailable`.

Decisions, the one write on the request path, are group-committed: concurrent
``append_decisions`` calls share a transaction (:mod:`service.store.group_commit`).
Each record is validated and canonicalised (``canonical_json``) by its caller before
any lock; under the lock only the chain fields (seq, previous hash) are added to
those bytes, hashed, and the canonical bytes themselves are what the ``public``
column stores.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from numbers import Real
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import orjson
from sqlalchemy import Engine, and_, delete, func, insert, null, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from service.store import tables
from service.store.chain import (
    GENESIS,
    CanonicalJSON,
    VerifyResult,
    canonical_json,
    format_ts,
    hash_of_envelope,
    sha256_hex,
    verify_chain,
)
from service.store.db import (
    StoreError,
    StoreUnavailable,
    db_errors,
    driver_insert,
    driver_write_transaction,
    insert_rows,
    is_sqlite,
    json_text,
    read_transaction,
    write_transaction,
)
from service.store.group_commit import GroupCommit
from service.store.ids import new_record_id
from service.store.logwriter import RemoteDecisionLog

__all__ = [
    "LEDGER_LOCK_KEY",
    "Appended",
    "AuditStore",
    "DecisionNotFound",
    "DuplicateDecision",
    "StoreUnavailable",
]

#: PostgreSQL advisory lock key serialising all ledger appends (any process, any worker).
LEDGER_LOCK_KEY = 0x62725F6C6564  # "br_led"
MAX_PAGE = 1000
_HEAD_SQL = "SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1"
_ANCHOR_SQL = "SELECT seq, hash FROM ledger_anchor WHERE id = 1"
#: Most decisions one group-commit transaction carries (a batch call larger than this goes alone).
GROUP_MAX_DECISIONS = 2000

_lg = tables.ledger
_anchor = tables.ledger_anchor
_dec = tables.decisions
_rev = tables.reviews
_out = tables.outcomes


class DecisionCommitter(Protocol):
    """Commits one ``append_decisions`` call's prepared decisions, grouped with concurrent calls:
    :class:`GroupCommit` in this process, or :class:`RemoteDecisionLog` through the writer process."""

    def submit(self, work: list[tuple[_Pending, dict[str, Any]]], size: int = 1) -> list[str]: ...


class DecisionNotFound(StoreError, LookupError):
    """No decision with that id (unknown, malformed, or removed by retention)."""


class DuplicateDecision(StoreError, ValueError):
    """A decision with that id is already in the ledger."""


class Appended(NamedTuple):
    """Where a record landed in the chain."""

    record_id: str
    seq: int
    hash: str


@dataclass(frozen=True)
class _Head:
    seq: int
    hash: str


@dataclass(frozen=True)
class _Pending:
    """A record ready to be chained: checked and canonicalised outside the lock."""

    record_type: str
    record_id: str
    created_at: datetime
    public_json: bytes  # canonical_json(public): what the hash covers, and what the row stores
    personal_json: bytes | None  # canonical_json(personal); None: SQL NULL (no personal fields)
    personal_digest: str

    @property
    def public(self) -> CanonicalJSON:
        return CanonicalJSON(self.public_json.decode())

    @property
    def personal(self) -> CanonicalJSON | None:
        return None if self.personal_json is None else CanonicalJSON(self.personal_json.decode())


# ----------------------------------------------------------------------------- validation helpers


def _now() -> datetime:
    return datetime.now(UTC)


def _uuid(value: Any, field: str) -> str:
    try:
        return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
    except (ValueError, TypeError, AttributeError) as err:
        raise ValueError(f"{field} must be a UUID, got {value!r}") from err


def _lookup_id(value: Any) -> str:
    try:
        return _uuid(value, "decision_id")
    except ValueError as err:
        raise DecisionNotFound(f"decision {value!r} not found (not a valid id)") from err


def _aware(value: Any, field: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{field} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{field} must be timezone-aware")
    return value.astimezone(UTC)


def _opt_aware(value: Any, field: str) -> datetime | None:
    return None if value is None else _aware(value, field)


def _choice(value: Any, allowed: tuple[str, ...], field: str) -> str:
    if value not in allowed:
        raise ValueError(f"{field} must be one of {', '.join(allowed)}; got {value!r}")
    return str(value)


def _text(value: Any, field: str, *, max_len: int | None = None, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{field} must be a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise ValueError(f"{field} must not be empty")
    if max_len is not None and len(value) > max_len:
        raise ValueError(f"{field} is longer than {max_len} characters")
    if "\x00" in value:
        raise ValueError(f"{field} contains a NUL character")
    return value


def _mapping(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"{field} must be a mapping, got {type(value).__name__}")
    return dict(value)


def _finite(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{field} must be a number, got {type(value).__name__}")
    f = float(value)
    if not math.isfinite(f):
        raise ValueError(f"{field} must be finite, got {f!r}")
    return f


# ----------------------------------------------------------------------------- the store


class AuditStore:
    """Append-only decision log over a SQLAlchemy engine (see the module docstring)."""

    def __init__(self, engine: Engine, *, log_writer: str | None = None) -> None:
        """``log_writer``: the socket of a decision-log writer process (:mod:`service.store.logwriter`,
        started by ``borderrisk serve --workers N``); decisions are then committed by that process,
        together with every other worker's. Without it, by this process (group-committed among its
        threads). Every other write, and every read, is this process's own either way."""
        if getattr(engine.dialect, "_json_serializer", None) is not json_text:
            raise ValueError(
                "AuditStore needs an engine made by service.store.make_engine "
                "(its JSON columns store canonical JSON as is)"
            )
        self.engine = engine
        #: Decision appends at the driver level (SQLite), see :meth:`_write_decisions`.
        self._driver_appends = is_sqlite(engine)
        self.log_writer = None if log_writer is None else RemoteDecisionLog(log_writer)
        self._decision_groups: DecisionCommitter = self.log_writer or GroupCommit(
            self._commit_decision_groups, max_items=GROUP_MAX_DECISIONS
        )

    # ------------------------------------------------------------------ chain internals

    @staticmethod
    def _head(conn: Connection | Any) -> _Head:
        """The chain head, read under the append lock on every append, from a SQLAlchemy
        connection or (on SQLite's driver path) an sqlite3 one: constant statements, sent as they
        are (the same SQL on both backends), cost a fifth of what building a select each time does."""

        def first(sql: str) -> Any:
            if isinstance(conn, Connection):
                return conn.exec_driver_sql(sql).first()
            return conn.execute(sql).fetchone()

        row = first(_HEAD_SQL)
        if row is not None:
            return _Head(int(row[0]), row[1])
        anchor = first(_ANCHOR_SQL)
        if anchor is not None:
            return _Head(int(anchor[0]), anchor[1])
        return _Head(0, GENESIS)

    @staticmethod
    def _ledger_row(head: _Head, rec: _Pending, created_at_text: str | None = None) -> dict[str, Any]:
        """The ledger row of ``rec`` chained after ``head``; ``created_at_text``, when given, is
        ``format_ts(rec.created_at)`` already written (shared by the records of a batch)."""
        seq = head.seq + 1
        h = hash_of_envelope(
            seq=seq,
            record_type=rec.record_type,
            record_id=rec.record_id,
            created_at=rec.created_at if created_at_text is None else created_at_text,
            public_json=rec.public_json,
            personal_digest=rec.personal_digest,
            prev_hash=head.hash,
        )
        return {
            "seq": seq,
            "record_type": rec.record_type,
            "record_id": rec.record_id,
            "created_at": rec.created_at,
            "public": rec.public,
            "personal": rec.personal,
            "personal_digest": rec.personal_digest,
            "prev_hash": head.hash,
            "hash": h,
            "masked_at": None,
        }

    def _append_one(self, conn: Connection, rec: _Pending) -> _Head:
        row = self._ledger_row(self._head(conn), rec)
        conn.execute(insert(_lg), [row])
        return _Head(row["seq"], row["hash"])

    @staticmethod
    def _pending(
        record_type: str,
        record_id: str,
        created_at: datetime,
        public: Mapping[str, Any],
        personal: Mapping[str, Any] | None,
    ) -> _Pending:
        """Canonicalise once, before any lock: what cannot be hashed is refused here, and under the
        lock only the small chain fields are added to the canonical bytes."""
        public_json = canonical_json(public)
        personal_json = None if personal is None else canonical_json(personal)
        digest = sha256_hex(b"null" if personal_json is None else personal_json)
        return _Pending(record_type, record_id, created_at, public_json, personal_json, digest)

    # ------------------------------------------------------------------ decisions

    def _prepare_decision(
        self,
        *,
        decision_id: Any,
        created_at: datetime,
        domain: str,
        officer: str,
        model: Mapping[str, Any],
        input_public: Mapping[str, Any],
        input_personal: Mapping[str, Any] | None,
        score: float,
        channel: str,
        selection: str,
        thresholds: Mapping[str, Any],
        explanation: Mapping[str, Any],
    ) -> tuple[_Pending, dict[str, Any]]:
        did = _uuid(decision_id, "decision_id")
        ts = _aware(created_at, "created_at")
        _choice(domain, tables.DOMAINS, "domain")
        _choice(channel, tables.CHANNELS, "channel")
        _choice(selection, tables.SELECTIONS, "selection")
        _text(officer, "officer", max_len=200)
        model_d = _mapping(model, "model")
        for key, limit in (("name", 200), ("version", 100), ("sha256", 64)):
            if key not in model_d:
                raise ValueError(f"model must have a {key!r} entry")
            _text(model_d[key], f"model.{key}", max_len=limit)
        score_f = _finite(score, "score")
        public = {
            "decision_id": did,
            "domain": domain,
            "officer": officer,
            "model": model_d,
            "input": _mapping(input_public, "input_public"),
            "score": score_f,
            "channel": channel,
            "selection": selection,
            "thresholds": _mapping(thresholds, "thresholds"),
            "explanation": _mapping(explanation, "explanation"),
        }
        personal = None if input_personal is None else _mapping(input_personal, "input_personal")
        pending = self._pending("decision", did, ts, public, personal)
        index = {
            "decision_id": did,
            "created_at": ts,
            "domain": domain,
            "officer": officer,
            "model_name": model_d["name"],
            "model_version": model_d["version"],
            "model_sha256": model_d["sha256"],
            "score": score_f,
            "channel": channel,
            "selection": selection,
        }
        return pending, index

    def append_decision(
        self,
        *,
        decision_id: str | uuid.UUID,
        created_at: datetime,
        domain: str,
        officer: str,
        model: Mapping[str, Any],
        input_public: Mapping[str, Any],
        input_personal: Mapping[str, Any] | None,
        score: float,
        channel: str,
        selection: str,
        thresholds: Mapping[str, Any],
        explanation: Mapping[str, Any],
    ) -> str:
        """Log one decision durably; return its chain hash.

        Raises :class:`ValueError`/:class:`TypeError` for invalid input (nothing
        written), :class:`DuplicateDecision` if the id exists, and
        :class:`StoreUnavailable` if the database fails — in that case the
        score must not be returned to the caller.
        """
        return self.append_decisions(
            [
                {
                    "decision_id": decision_id,
                    "created_at": created_at,
                    "domain": domain,
                    "officer": officer,
                    "model": model,
                    "input_public": input_public,
                    "input_personal": input_personal,
                    "score": score,
                    "channel": channel,
                    "selection": selection,
                    "thresholds": thresholds,
                    "explanation": explanation,
                }
            ]
        )[0]

    def append_decisions(self, items: Sequence[Mapping[str, Any]]) -> list[str]:
        """Log a batch of decisions in one transaction (one lock, consecutive chain records).

        Each item holds the keyword arguments of :meth:`append_decision`.  All or
        nothing: if any item is invalid or a duplicate, nothing is written.
        Returns the hashes in input order.

        Concurrent calls (a worker's log and request threads) are group-committed: the records of
        several calls share one transaction, each call's records consecutive in the chain, and
        every call returns only once that transaction has committed (see
        :mod:`service.store.group_commit`).
        """
        if not items:
            return []
        prepared = [self._prepare_decision(**dict(item)) for item in items]
        ids = [p.record_id for p, _ in prepared]
        if len(set(ids)) != len(ids):
            raise DuplicateDecision("the batch contains the same decision_id more than once")
        return self._decision_groups.submit(prepared, len(prepared))

    def _commit_decision_groups(
        self, calls: Sequence[list[tuple[_Pending, dict[str, Any]]]]
    ) -> list[list[str] | BaseException]:
        """Write the calls of one group in one transaction; if that fails on a duplicate id, write
        them one by one, so that only the call with the duplicate fails."""
        try:
            return list(self._write_decisions(calls))
        except StoreUnavailable as exc:
            return [exc] * len(calls)
        except DuplicateDecision as exc:
            if len(calls) == 1:
                return [exc]
        outcomes: list[list[str] | BaseException] = []
        for call in calls:
            try:
                outcomes.extend(self._write_decisions([call]))
            except (StoreUnavailable, DuplicateDecision) as exc:
                outcomes.append(exc)
        return outcomes

    def _write_decisions(self, calls: Sequence[list[tuple[_Pending, dict[str, Any]]]]) -> list[list[str]]:
        """One transaction for ``calls``. A duplicate decision id is caught by the primary key (no
        look-up before every insert); the failed transaction is then told apart from an outage by
        looking the ids up.

        On SQLite the transaction runs at the driver level (:func:`driver_write_transaction`: the
        same lock, statements and stored bytes, without SQLAlchemy's per-transaction machinery);
        on PostgreSQL through SQLAlchemy, whose overhead a network round trip dwarfs."""
        ids = [p.record_id for call in calls for p, _ in call]
        if len(set(ids)) != len(ids):
            raise DuplicateDecision("two calls of one group log the same decision_id")
        try:
            with db_errors("append_decisions"):
                if self._driver_appends:
                    with driver_write_transaction(self.engine) as dbapi:
                        ledger_rows, index_rows, hashes = self._chained(self._head(dbapi), calls)
                        driver_insert(dbapi, self.engine.dialect, _lg, ledger_rows)
                        driver_insert(dbapi, self.engine.dialect, _dec, index_rows)
                else:
                    with write_transaction(self.engine, lock_key=LEDGER_LOCK_KEY) as conn:
                        ledger_rows, index_rows, hashes = self._chained(self._head(conn), calls)
                        insert_rows(conn, _lg, ledger_rows)
                        insert_rows(conn, _dec, index_rows)
        except StoreUnavailable as exc:
            if isinstance(exc.__cause__, IntegrityError):
                existing = self._existing_decision(ids)
                if existing is not None:
                    raise DuplicateDecision(f"decision {existing} is already logged") from None
            raise
        return hashes

    def _chained(
        self, head: _Head, calls: Sequence[list[tuple[_Pending, dict[str, Any]]]]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[list[str]]]:
        """The ledger and index rows of ``calls`` chained after ``head``, and each call's hashes."""
        ledger_rows: list[dict[str, Any]] = []
        index_rows: list[dict[str, Any]] = []
        hashes: list[list[str]] = []
        times: dict[datetime, str] = {}  # a batch's decisions share their time: written once
        for call in calls:
            call_hashes = []
            for pending, index in call:
                ts = pending.created_at
                text = times.get(ts) or times.setdefault(ts, format_ts(ts))
                row = self._ledger_row(head, pending, text)
                head = _Head(row["seq"], row["hash"])
                ledger_rows.append(row)
                index_rows.append({**index, "ledger_seq": row["seq"]})
                call_hashes.append(row["hash"])
            hashes.append(call_hashes)
        return ledger_rows, index_rows, hashes

    def _existing_decision(self, ids: list[str]) -> str | None:
        with db_errors("append_decisions"), self.engine.connect() as conn:
            return conn.execute(select(_dec.c.decision_id).where(_dec.c.decision_id.in_(ids))).scalar()

    # ------------------------------------------------------------------ reviews, outcomes, reads

    @staticmethod
    def _decision_for_update(conn: Connection, did: str) -> Any:
        row = conn.execute(select(_dec.c.domain, _dec.c.channel).where(_dec.c.decision_id == did)).first()
        if row is None:
            raise DecisionNotFound(f"decision {did} not found")
        return row

    @staticmethod
    def _effective_channel(conn: Connection, did: str, original: str) -> str:
        latest = conn.execute(
            select(_rev.c.channel)
            .where(_rev.c.decision_id == did)
            .order_by(_rev.c.ledger_seq.desc())
            .limit(1)
        ).scalar()
        return latest if latest is not None else original

    def append_review(
        self,
        decision_id: str | uuid.UUID,
        officer: str,
        action: str,
        channel: str,
        reason: str,
        *,
        review_id: str | uuid.UUID | None = None,
        created_at: datetime | None = None,
    ) -> Appended:
        """Log an officer's review of a decision (the decision itself is never modified).

        ``confirm`` must name the decision's current channel (the latest review's
        channel, else the model's); ``override`` needs a non-empty ``reason``.
        """
        did = _lookup_id(decision_id)
        _text(officer, "officer", max_len=200)
        _choice(action, tables.REVIEW_ACTIONS, "action")
        _choice(channel, tables.CHANNELS, "channel")
        _text(reason, "reason", max_len=10_000, allow_empty=action == "confirm")
        rid = _uuid(review_id, "review_id") if review_id is not None else new_record_id()
        ts = _aware(created_at, "created_at") if created_at is not None else _now()
        with db_errors("append_review"), write_transaction(self.engine, lock_key=LEDGER_LOCK_KEY) as conn:
            dec = self._decision_for_update(conn, did)
            current = self._effective_channel(conn, did, dec.channel)
            if action == "confirm" and channel != current:
                raise ValueError(f"confirm must name the current channel {current!r}, got {channel!r}")
            public = {
                "review_id": rid,
                "decision_id": did,
                "officer": officer,
                "action": action,
                "channel": channel,
                "previous_channel": current,
                "reason": reason,
            }
            head = self._append_one(conn, self._pending("review", rid, ts, public, None))
            conn.execute(
                insert(_rev),
                [
                    {
                        "review_id": rid,
                        "decision_id": did,
                        "created_at": ts,
                        "officer": officer,
                        "action": action,
                        "channel": channel,
                        "reason": reason,
                        "ledger_seq": head.seq,
                    }
                ],
            )
        return Appended(rid, head.seq, head.hash)

    def append_outcome(
        self,
        decision_id: str | uuid.UUID,
        officer: str,
        finding: bool,
        revenue_recovered: float | None = None,
        note: str | None = None,
        *,
        outcome_id: str | uuid.UUID | None = None,
        created_at: datetime | None = None,
    ) -> Appended:
        """Log the result of an inspection.  For passenger decisions the free-text
        ``note`` is treated as personal data (masked with the decision's personal fields)."""
        did = _lookup_id(decision_id)
        _text(officer, "officer", max_len=200)
        if not isinstance(finding, bool):
            raise TypeError("finding must be a bool")
        revenue = None if revenue_recovered is None else _finite(revenue_recovered, "revenue_recovered")
        if revenue is not None and revenue < 0:
            raise ValueError("revenue_recovered must not be negative")
        if note is not None:
            _text(note, "note", max_len=10_000, allow_empty=True)
        oid = _uuid(outcome_id, "outcome_id") if outcome_id is not None else new_record_id()
        ts = _aware(created_at, "created_at") if created_at is not None else _now()
        with db_errors("append_outcome"), write_transaction(self.engine, lock_key=LEDGER_LOCK_KEY) as conn:
            dec = self._decision_for_update(conn, did)
            public: dict[str, Any] = {
                "outcome_id": oid,
                "decision_id": did,
                "officer": officer,
                "finding": finding,
                "revenue_recovered": revenue,
            }
            personal: dict[str, Any] | None = None
            if dec.domain == "passenger":
                personal = None if note is None else {"note": note}
            else:
                public["note"] = note
            head = self._append_one(conn, self._pending("outcome", oid, ts, public, personal))
            conn.execute(
                insert(_out),
                [
                    {
                        "outcome_id": oid,
                        "decision_id": did,
                        "created_at": ts,
                        "officer": officer,
                        "finding": finding,
                        "revenue_recovered": revenue,
                        "note": note,
                        "ledger_seq": head.seq,
                    }
                ],
            )
        return Appended(oid, head.seq, head.hash)

    def append_read(
        self,
        auditor: str,
        decision_id: str | uuid.UUID | None,
        what: str,
        *,
        created_at: datetime | None = None,
    ) -> Appended:
        """Log that an auditor read something (one decision, a listing, an export, …)."""
        _text(auditor, "auditor", max_len=200)
        _text(what, "what", max_len=2000)
        target: str | None = None
        if decision_id is not None:
            try:
                target = _uuid(decision_id, "decision_id")
            except ValueError:
                target = _text(str(decision_id), "decision_id", max_len=100)
        rid = new_record_id()
        ts = _aware(created_at, "created_at") if created_at is not None else _now()
        public = {"auditor": auditor, "decision_id": target, "what": what}
        pending = self._pending("read", rid, ts, public, None)
        with db_errors("append_read"), write_transaction(self.engine, lock_key=LEDGER_LOCK_KEY) as conn:
            head = self._append_one(conn, pending)
        return Appended(rid, head.seq, head.hash)

    # ------------------------------------------------------------------ reads

    def head(self) -> dict[str, Any]:
        """The chain head: ``{"seq": int, "hash": str}`` (``seq`` 0 and GENESIS when empty)."""
        with db_errors("head"), self.engine.connect() as conn:
            h = self._head(conn)
        return {"seq": h.seq, "hash": h.hash}

    def verify(self, *, expect_hash: str | None = None) -> VerifyResult:
        return verify_chain(self.engine, expect_hash=expect_hash)

    def get_decision(self, decision_id: str | uuid.UUID) -> dict[str, Any] | None:
        """The full record of one decision, with its reviews and outcomes in chain order.

        ``input_personal`` is ``None`` and ``personal_masked`` is ``True`` once the
        personal fields were masked by retention.
        """
        try:
            did = _uuid(decision_id, "decision_id")
        except ValueError:
            return None
        with db_errors("get_decision"), read_transaction(self.engine) as conn:
            row = conn.execute(
                select(_dec, _lg.c.public, _lg.c.personal, _lg.c.masked_at, _lg.c.hash)
                .join(_lg, _lg.c.seq == _dec.c.ledger_seq)
                .where(_dec.c.decision_id == did)
            ).first()
            if row is None:
                return None
            review_rows = conn.execute(
                select(_rev).where(_rev.c.decision_id == did).order_by(_rev.c.ledger_seq)
            ).all()
            outcome_rows = conn.execute(
                select(_out, _lg.c.masked_at)
                .join(_lg, _lg.c.seq == _out.c.ledger_seq)
                .where(_out.c.decision_id == did)
                .order_by(_out.c.ledger_seq)
            ).all()
        public = row.public
        reviews = [
            {
                "review_id": r.review_id,
                "created_at": r.created_at,
                "officer": r.officer,
                "action": r.action,
                "channel": r.channel,
                "reason": r.reason,
                "ledger_seq": r.ledger_seq,
            }
            for r in review_rows
        ]
        outcomes = [
            {
                "outcome_id": o.outcome_id,
                "created_at": o.created_at,
                "officer": o.officer,
                "finding": bool(o.finding),
                "revenue_recovered": o.revenue_recovered,
                "note": o.note,
                "note_masked": o.masked_at is not None,
                "ledger_seq": o.ledger_seq,
            }
            for o in outcome_rows
        ]
        return {
            "decision_id": row.decision_id,
            "created_at": row.created_at,
            "domain": row.domain,
            "officer": row.officer,
            "model": public["model"],
            "input_public": public["input"],
            "input_personal": row.personal,
            "personal_masked": row.masked_at is not None,
            "masked_at": row.masked_at,
            "score": public["score"],
            "channel": row.channel,
            "effective_channel": reviews[-1]["channel"] if reviews else row.channel,
            "selection": row.selection,
            "thresholds": public["thresholds"],
            "explanation": public["explanation"],
            "ledger_seq": row.ledger_seq,
            "hash": row.hash,
            "reviews": reviews,
            "outcomes": outcomes,
        }

    def list_decisions(
        self,
        domain: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        channel: str | None = None,
        selection: str | None = None,
        reviewed: bool | None = None,
        model_version: str | None = None,
        officer: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """Decision summaries, newest first, and the total matching the filters.

        ``since`` is inclusive, ``until`` exclusive; ``limit`` is 1..1000.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be an integer between 1 and {MAX_PAGE}")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValueError("offset must be a non-negative integer")
        has_review = select(_rev.c.review_id).where(_rev.c.decision_id == _dec.c.decision_id).exists()
        conds: list[Any] = []
        if domain is not None:
            conds.append(_dec.c.domain == _choice(domain, tables.DOMAINS, "domain"))
        if since is not None:
            conds.append(_dec.c.created_at >= _aware(since, "since"))
        if until is not None:
            conds.append(_dec.c.created_at < _aware(until, "until"))
        if channel is not None:
            conds.append(_dec.c.channel == _choice(channel, tables.CHANNELS, "channel"))
        if selection is not None:
            conds.append(_dec.c.selection == _choice(selection, tables.SELECTIONS, "selection"))
        if reviewed is True:
            conds.append(has_review)
        elif reviewed is False:
            conds.append(~has_review)
        if model_version is not None:
            conds.append(_dec.c.model_version == model_version)
        if officer is not None:
            conds.append(_dec.c.officer == officer)
        where = and_(True, *conds)
        with db_errors("list_decisions"), read_transaction(self.engine) as conn:
            total = conn.execute(select(func.count()).select_from(_dec).where(where)).scalar_one()
            rows = conn.execute(
                select(_dec, has_review.label("reviewed"))
                .where(where)
                .order_by(_dec.c.created_at.desc(), _dec.c.decision_id.desc())
                .limit(limit)
                .offset(offset)
            ).all()
        items = [
            {
                "decision_id": r.decision_id,
                "created_at": r.created_at,
                "domain": r.domain,
                "officer": r.officer,
                "model_name": r.model_name,
                "model_version": r.model_version,
                "model_sha256": r.model_sha256,
                "score": r.score,
                "channel": r.channel,
                "selection": r.selection,
                "reviewed": bool(r.reviewed),
                "ledger_seq": r.ledger_seq,
            }
            for r in rows
        ]
        return items, int(total)

    def iter_history(
        self,
        domain: str | None,
        since: datetime | None = None,
        *,
        include_personal: bool = False,
        batch_size: int = 1000,
    ) -> Iterator[dict[str, Any]]:
        """Stream decisions (oldest first) with their latest outcome, for training.

        Each item carries the public model input (``features``), the selection
        reason (``random`` rows are the unbiased sample), the final channel after
        reviews and the latest outcome (``has_outcome`` False: label unknown).
        Personal input is included only with ``include_personal=True`` (and is
        ``None`` once masked).  The generator holds a connection until exhausted
        or closed.
        """
        if domain is not None:
            _choice(domain, tables.DOMAINS, "domain")
        since_ts = _opt_aware(since, "since")
        latest_out = (
            select(_out.c.decision_id, func.max(_out.c.ledger_seq).label("seq"))
            .group_by(_out.c.decision_id)
            .subquery("latest_out")
        )
        latest_rev = (
            select(_rev.c.decision_id, func.max(_rev.c.ledger_seq).label("seq"))
            .group_by(_rev.c.decision_id)
            .subquery("latest_rev")
        )
        o = _out.alias("o")
        r = _rev.alias("r")
        stmt = (
            select(
                _dec,
                _lg.c.public,
                _lg.c.personal,
                o.c.finding,
                o.c.revenue_recovered,
                o.c.created_at.label("outcome_at"),
                o.c.outcome_id,
                r.c.channel.label("review_channel"),
            )
            .join(_lg, _lg.c.seq == _dec.c.ledger_seq)
            .outerjoin(latest_out, latest_out.c.decision_id == _dec.c.decision_id)
            .outerjoin(o, o.c.ledger_seq == latest_out.c.seq)
            .outerjoin(latest_rev, latest_rev.c.decision_id == _dec.c.decision_id)
            .outerjoin(r, r.c.ledger_seq == latest_rev.c.seq)
            .order_by(_dec.c.created_at, _dec.c.decision_id)
        )
        if domain is not None:
            stmt = stmt.where(_dec.c.domain == domain)
        if since_ts is not None:
            stmt = stmt.where(_dec.c.created_at >= since_ts)
        with db_errors("iter_history"), read_transaction(self.engine) as conn:
            result = conn.execution_options(yield_per=batch_size).execute(stmt)
            try:
                for row in result:
                    item = {
                        "decision_id": row.decision_id,
                        "created_at": row.created_at,
                        "domain": row.domain,
                        "officer": row.officer,
                        "model_name": row.model_name,
                        "model_version": row.model_version,
                        "model_sha256": row.model_sha256,
                        "score": row.score,
                        "channel": row.channel,
                        "final_channel": row.review_channel or row.channel,
                        "selection": row.selection,
                        "features": row.public["input"],
                        "has_outcome": row.outcome_id is not None,
                        "finding": None if row.finding is None else bool(row.finding),
                        "revenue_recovered": row.revenue_recovered,
                        "outcome_at": row.outcome_at,
                    }
                    if include_personal:
                        item["personal"] = row.personal
                    yield item
            finally:
                result.close()

    # ------------------------------------------------------------------ retention

    def mask_personal(self, before: datetime) -> int:
        """Remove the personal fields of every record created before ``before``.

        ``personal`` becomes NULL and ``masked_at`` is set; the records' hashes do
        not cover the personal fields (only their digest), so the chain still
        verifies.  Passenger outcome notes in the ``outcomes`` index are cleared
        too.  A ``retention`` record documenting the masking is appended.
        Returns the number of records masked.
        """
        cutoff = _aware(before, "before")
        now = _now()
        target = and_(_lg.c.personal.is_not(None), _lg.c.created_at < cutoff)
        with db_errors("mask_personal"), write_transaction(self.engine, lock_key=LEDGER_LOCK_KEY) as conn:
            conn.execute(
                update(_out).where(_out.c.ledger_seq.in_(select(_lg.c.seq).where(target))).values(note=None)
            )
            count = conn.execute(update(_lg).where(target).values(personal=null(), masked_at=now)).rowcount
            if count:
                public = {"action": "mask", "before": format_ts(cutoff), "masked_records": count}
                self._append_one(conn, self._pending("retention", new_record_id(), now, public, None))
        return int(count)

    def delete_before(self, before: datetime) -> int:
        """Retention deletion of the oldest part of the ledger; returns the records deleted.

        Only a *prefix* of the chain can go (records 1..S where S+1 is the first
        record created at/after ``before``), so what remains is contiguous.  The
        (seq, hash) of record S is kept in ``ledger_anchor`` and verification
        starts from it instead of GENESIS; a ``retention`` record carrying the same
        (seq, hash) is appended, so a tampered anchor is detected.  Index rows of
        deleted decisions go too, with all their reviews/outcomes (later ledger
        records about such a decision stay in the chain).
        """
        cutoff = _aware(before, "before")
        now = _now()
        with db_errors("delete_before"), write_transaction(self.engine, lock_key=LEDGER_LOCK_KEY) as conn:
            head = self._head(conn)
            first = conn.execute(select(func.min(_lg.c.seq))).scalar()
            if first is None:
                return 0
            first_kept = conn.execute(select(func.min(_lg.c.seq)).where(_lg.c.created_at >= cutoff)).scalar()
            last_deleted = int(first_kept) - 1 if first_kept is not None else head.seq
            if last_deleted < int(first):
                return 0
            anchor_hash = conn.execute(select(_lg.c.hash).where(_lg.c.seq == last_deleted)).scalar_one()
            doomed = select(_dec.c.decision_id).where(_dec.c.ledger_seq <= last_deleted)
            conn.execute(
                delete(_rev).where(or_(_rev.c.ledger_seq <= last_deleted, _rev.c.decision_id.in_(doomed)))
            )
            conn.execute(
                delete(_out).where(or_(_out.c.ledger_seq <= last_deleted, _out.c.decision_id.in_(doomed)))
            )
            n_decisions = conn.execute(delete(_dec).where(_dec.c.ledger_seq <= last_deleted)).rowcount
            n_records = conn.execute(delete(_lg).where(_lg.c.seq <= last_deleted)).rowcount
            previous = conn.execute(select(_anchor.c.deleted_records).where(_anchor.c.id == 1)).scalar()
            values = {
                "seq": last_deleted,
                "hash": anchor_hash,
                "deleted_records": int(previous or 0) + n_records,
                "updated_at": now,
            }
            if previous is None:
                conn.execute(insert(_anchor), [{"id": 1, **values}])
            else:
                conn.execute(update(_anchor).where(_anchor.c.id == 1).values(**values))
            public = {
                "action": "delete",
                "before": format_ts(cutoff),
                "deleted_records": n_records,
                "deleted_decisions": n_decisions,
                "anchor_seq": last_deleted,
                "anchor_hash": anchor_hash,
            }
            row = self._ledger_row(head, self._pending("retention", new_record_id(), now, public, None))
            conn.execute(insert(_lg), [row])
        return int(n_records)

    # ------------------------------------------------------------------ export

    _CSV_FIELDS = (
        "seq",
        "hash",
        "prev_hash",
        "decision_id",
        "created_at",
        "domain",
        "officer",
        "model_name",
        "model_version",
        "model_sha256",
        "score",
        "channel",
        "selection",
        "personal_digest",
        "personal_masked",
    )

    def export(self, path: str | os.PathLike[str], fmt: str = "jsonl") -> dict[str, Any]:
        """Write every decision (no personal fields) with the chain head, from one snapshot.

        ``jsonl``: first line ``{"type": "chain_head", "head_seq", "head_hash", …}``,
        then one ``{"type": "decision", …}`` line per decision carrying everything
        needed to recompute that record's hash (``seq``, ``record_id``,
        ``created_at``, ``public``, ``personal_digest``, ``prev_hash``, ``hash``),
        then ``{"type": "end", "decisions": n, "head_hash": …}``.
        ``csv``: a ``# chain_head …`` comment line, a header row, one row per
        decision, and a ``# end …`` line (read with ``comment="#"``).
        A body holding ``head_hash`` later checks nothing was removed with
        ``verify_chain(engine, expect_hash=head_hash)``.
        The file is written to a temporary name and renamed into place.
        """
        if fmt not in ("jsonl", "csv"):
            raise ValueError("fmt must be 'jsonl' or 'csv'")
        target = Path(path)
        exported_at = format_ts(_now())
        fd, tmp_name = tempfile.mkstemp(prefix=".export-", dir=target.parent)
        count = 0
        try:
            with (
                os.fdopen(fd, "w", encoding="utf-8", newline="") as fh,
                db_errors("export"),
                read_transaction(self.engine) as conn,
            ):
                head = self._head(conn)
                n_records = conn.execute(select(func.count()).select_from(_lg)).scalar_one()
                anchor = conn.execute(select(_anchor.c.seq, _anchor.c.hash).where(_anchor.c.id == 1)).first()
                head_info = {
                    "type": "chain_head",
                    "format": "borderrisk-decisions-v1",
                    "head_seq": head.seq,
                    "head_hash": head.hash,
                    "ledger_records": int(n_records),
                    "anchor_seq": None if anchor is None else int(anchor.seq),
                    "anchor_hash": None if anchor is None else anchor.hash,
                    "exported_at": exported_at,
                }
                stmt = (
                    select(
                        _dec,
                        _lg.c.record_id,
                        _lg.c.public,
                        _lg.c.personal_digest,
                        _lg.c.prev_hash,
                        _lg.c.hash,
                        _lg.c.masked_at,
                    )
                    .join(_lg, _lg.c.seq == _dec.c.ledger_seq)
                    .order_by(_dec.c.ledger_seq)
                )
                result = conn.execution_options(yield_per=1000).execute(stmt)
                if fmt == "jsonl":
                    fh.write(orjson.dumps(head_info).decode() + "\n")
                    for r in result:
                        line = {
                            "type": "decision",
                            "seq": r.ledger_seq,
                            "record_type": "decision",
                            "record_id": r.record_id,
                            "created_at": format_ts(r.created_at),
                            "public": r.public,
                            "personal_digest": r.personal_digest,
                            "personal_masked": r.masked_at is not None,
                            "prev_hash": r.prev_hash,
                            "hash": r.hash,
                        }
                        fh.write(orjson.dumps(line).decode() + "\n")
                        count += 1
                    fh.write(
                        orjson.dumps({"type": "end", "decisions": count, "head_hash": head.hash}).decode()
                    )
                    fh.write("\n")
                else:
                    fh.write(
                        "# chain_head "
                        + " ".join(f"{k}={v}" for k, v in head_info.items() if k != "type")
                        + "\n"
                    )
                    writer = csv.writer(fh, lineterminator="\n")
                    writer.writerow(self._CSV_FIELDS)
                    for r in result:
                        writer.writerow(
                            [
                                r.ledger_seq,
                                r.hash,
                                r.prev_hash,
                                r.decision_id,
                                format_ts(r.created_at),
                                r.domain,
                                r.officer,
                                r.model_name,
                                r.model_version,
                                r.model_sha256,
                                repr(float(r.score)),
                                r.channel,
                                r.selection,
                                r.personal_digest,
                                r.masked_at is not None,
                            ]
                        )
                        count += 1
                    fh.write(f"# end decisions={count} head_hash={head.hash}\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp_name, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise
        return {"decisions": count, "head_seq": head.seq, "head_hash": head.hash, "path": str(target)}
