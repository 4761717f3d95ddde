"""Table definitions of the audit store (SQLAlchemy 2 typed declarative).

``ledger`` is the append-only, hash-chained record of everything that happened
(decisions, reviews, outcomes, auditor reads, retention actions).  The other
audit tables (``decisions``, ``reviews``, ``outcomes``) are query indexes
derived from it, written in the same transaction as their ledger record.
``ledger_anchor`` holds the (seq, hash) of the last record removed by retention
deletion, the point verification starts from once the chain's prefix is gone.

The schema is created by the Alembic migrations in ``migrations/versions``; a
test checks that these classes and the migrated schema agree.
"""

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

RECORD_TYPES = ("decision", "review", "outcome", "read", "retention")
DOMAINS = ("cargo", "passenger")
CHANNELS = ("green", "yellow", "red")
SELECTIONS = ("random", "risk", "none")
REVIEW_ACTIONS = ("confirm", "override")
ROLES = ("officer", "analyst", "auditor", "admin")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend.

    Naive datetimes are refused.  PostgreSQL stores ``timestamptz``; SQLite has
    no time zones, so the value is stored as naive UTC (SQLAlchemy's fixed-width
    ISO text, which sorts chronologically) and UTC is re-attached on load.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime refused: timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# Plain JSON (PostgreSQL ``json``, not ``jsonb``): the text is kept as written, so
# floats and key order survive exactly; SQL NULL (not JSON null) for Python None.
JSONDoc = JSON(none_as_null=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class LedgerRecord(Base):
    """One hash-chained record.  ``seq`` is the chain order (1, 2, 3, … without gaps).

    ``seq`` is assigned by the store under the append lock (head + 1), not by a
    database sequence: sequences skip values on rollback and the hash must cover
    ``seq`` before the row is written.
    """

    __tablename__ = "ledger"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    record_type: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    public: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    personal: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc, nullable=True)
    personal_digest: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))  # unique by the chain, not by an index (0002)
    masked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        CheckConstraint(_in("record_type", RECORD_TYPES), name="record_type"),
        Index(None, "created_at"),
        Index(None, "record_type", "record_id"),
    )


class LedgerAnchor(Base):
    """Single row (id = 1): the last record deleted by retention, where verification resumes."""

    __tablename__ = "ledger_anchor"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    deleted_records: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)


class Decision(Base):
    __tablename__ = "decisions"

    decision_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    domain: Mapped[str] = mapped_column(String(16))
    officer: Mapped[str] = mapped_column(String(200))
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(100))
    model_sha256: Mapped[str] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float)
    channel: Mapped[str] = mapped_column(String(8))
    selection: Mapped[str] = mapped_column(String(8))
    ledger_seq: Mapped[int] = mapped_column(BigInteger, ForeignKey("ledger.seq"), unique=True)

    __table_args__ = (
        CheckConstraint(_in("domain", DOMAINS), name="domain"),
        CheckConstraint(_in("channel", CHANNELS), name="channel"),
        CheckConstraint(_in("selection", SELECTIONS), name="selection"),
        Index(None, "domain", "created_at"),
        Index(None, "channel"),
        Index(None, "selection"),
        Index(None, "model_version"),
        Index(None, "officer"),
    )


class Review(Base):
    __tablename__ = "reviews"

    review_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    decision_id: Mapped[str] = mapped_column(String(36), ForeignKey("decisions.decision_id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    officer: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(Text)
    ledger_seq: Mapped[int] = mapped_column(BigInteger, ForeignKey("ledger.seq"), unique=True)

    __table_args__ = (
        CheckConstraint(_in("action", REVIEW_ACTIONS), name="action"),
        CheckConstraint(_in("channel", CHANNELS), name="channel"),
        Index(None, "decision_id"),
    )


class Outcome(Base):
    __tablename__ = "outcomes"

    outcome_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    decision_id: Mapped[str] = mapped_column(String(36), ForeignKey("decisions.decision_id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    officer: Mapped[str] = mapped_column(String(200))
    finding: Mapped[bool] = mapped_column(Boolean)
    revenue_recovered: Mapped[float | None] = mapped_column(Float, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    ledger_seq: Mapped[int] = mapped_column(BigInteger, ForeignKey("ledger.seq"), unique=True)

    __table_args__ = (Index(None, "decision_id"),)


class ApiKey(Base):
    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)


# Core handles on the tables (the store writes with Core statements for explicit control).
ledger = cast(Table, LedgerRecord.__table__)
ledger_anchor = cast(Table, LedgerAnchor.__table__)
decisions = cast(Table, Decision.__table__)
reviews = cast(Table, Review.__table__)
outcomes = cast(Table, Outcome.__table__)
api_keys = cast(Table, ApiKey.__table__)
