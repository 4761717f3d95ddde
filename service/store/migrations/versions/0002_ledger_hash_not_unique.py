"""The ledger's chain hash is no longer a unique index.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07

Why: a chain hash is random, so its unique index put every new record on a random leaf page, and a
transaction of many decisions dirtied as many scattered pages, all written at commit; the bigger
the log, the more it scattered. On a SQLite log already holding 200,000 decisions, the writer spent
105–127 µs per decision of a 1,000-decision transaction with it and 63–80 µs without (2-core AMD
EPYC, interleaved). Nothing looks a record up by its hash, and what the index enforced follows from
the chain itself: ``seq`` is the primary key, and each hash covers its ``seq`` and the hash before.

PostgreSQL drops the constraint in place. SQLite cannot drop a constraint of its CREATE TABLE, so
there the ledger is rebuilt inside the migration's transaction (all or nothing), its rows copied as
stored, byte for byte. The copy takes time and, until it commits, disk space in proportion to the
log.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of the value list at the time of this revision (do not import it).
_RECORD_TYPES = ("decision", "review", "outcome", "read", "retention")
_COLUMNS = (
    "seq, record_type, record_id, created_at, public, personal, personal_digest, prev_hash, hash, masked_at"
)


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _create_ledger(name: str, *, unique_hash: bool) -> None:
    """The ledger as revision 0001 made it, with or without the unique hash."""
    unique = [sa.UniqueConstraint("hash", name="uq_ledger_hash")] if unique_hash else []
    record_types = ", ".join(repr(v) for v in _RECORD_TYPES)
    op.create_table(
        name,
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("record_type", sa.String(16), nullable=False),
        sa.Column("record_id", sa.String(36), nullable=False),
        _ts("created_at"),
        sa.Column("public", sa.JSON(), nullable=False),
        sa.Column("personal", sa.JSON(), nullable=True),
        sa.Column("personal_digest", sa.String(64), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        _ts("masked_at", nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_ledger"),
        *unique,
        # the name 0001's naming convention gave it (made from the table's name, not this one's)
        sa.CheckConstraint(f"record_type IN ({record_types})", name=op.f("ck_ledger_ck_ledger_record_type")),
    )


def _rebuild_sqlite_ledger(*, unique_hash: bool) -> None:
    """SQLite's generalised ALTER TABLE: a new table, the rows copied as stored, the old one dropped,
    the new one renamed. :func:`service.store.db.migrate` runs migrations with foreign keys off, so
    the decisions', reviews' and outcomes' keys, which name ``ledger``, point at the new table once it
    has that name; they are checked before the transaction commits."""
    conn = op.get_bind()
    _create_ledger("_ledger_0002", unique_hash=unique_hash)
    conn.exec_driver_sql(f"INSERT INTO _ledger_0002 ({_COLUMNS}) SELECT {_COLUMNS} FROM ledger")
    conn.exec_driver_sql("DROP TABLE ledger")  # and its indexes, made again below
    conn.exec_driver_sql("ALTER TABLE _ledger_0002 RENAME TO ledger")
    op.create_index("ix_ledger_created_at", "ledger", ["created_at"])
    op.create_index("ix_ledger_record_type_record_id", "ledger", ["record_type", "record_id"])
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"ledger rebuild left foreign keys unmatched: {broken[:5]}")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite_ledger(unique_hash=False)
    else:
        op.drop_constraint("uq_ledger_hash", "ledger", type_="unique")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite_ledger(unique_hash=True)
    else:
        op.create_unique_constraint("uq_ledger_hash", "ledger", ["hash"])
