"""Initial audit store: hash-chained ledger, its anchor, query indexes, API keys.

Revision ID: 0001
Revises:
Create Date: 2025-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the value lists at the time of this revision (do not import them).
_RECORD_TYPES = ("decision", "review", "outcome", "read", "retention")
_DOMAINS = ("cargo", "passenger")
_CHANNELS = ("green", "yellow", "red")
_SELECTIONS = ("random", "risk", "none")
_ACTIONS = ("confirm", "override")
_ROLES = ("officer", "analyst", "auditor", "admin")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "ledger",
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
        sa.UniqueConstraint("hash", name="uq_ledger_hash"),
        sa.CheckConstraint(_in("record_type", _RECORD_TYPES), name="ck_ledger_record_type"),
    )
    op.create_index("ix_ledger_created_at", "ledger", ["created_at"])
    op.create_index("ix_ledger_record_type_record_id", "ledger", ["record_type", "record_id"])

    op.create_table(
        "ledger_anchor",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("deleted_records", sa.BigInteger(), nullable=False),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_anchor"),
        sa.CheckConstraint("id = 1", name="ck_ledger_anchor_single_row"),
    )

    op.create_table(
        "decisions",
        sa.Column("decision_id", sa.String(36), nullable=False),
        _ts("created_at"),
        sa.Column("domain", sa.String(16), nullable=False),
        sa.Column("officer", sa.String(200), nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(100), nullable=False),
        sa.Column("model_sha256", sa.String(64), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("selection", sa.String(8), nullable=False),
        sa.Column("ledger_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("decision_id", name="pk_decisions"),
        sa.UniqueConstraint("ledger_seq", name="uq_decisions_ledger_seq"),
        sa.ForeignKeyConstraint(["ledger_seq"], ["ledger.seq"], name="fk_decisions_ledger_seq_ledger"),
        sa.CheckConstraint(_in("domain", _DOMAINS), name="ck_decisions_domain"),
        sa.CheckConstraint(_in("channel", _CHANNELS), name="ck_decisions_channel"),
        sa.CheckConstraint(_in("selection", _SELECTIONS), name="ck_decisions_selection"),
    )
    op.create_index("ix_decisions_domain_created_at", "decisions", ["domain", "created_at"])
    op.create_index("ix_decisions_channel", "decisions", ["channel"])
    op.create_index("ix_decisions_selection", "decisions", ["selection"])
    op.create_index("ix_decisions_model_version", "decisions", ["model_version"])
    op.create_index("ix_decisions_officer", "decisions", ["officer"])

    op.create_table(
        "reviews",
        sa.Column("review_id", sa.String(36), nullable=False),
        sa.Column("decision_id", sa.String(36), nullable=False),
        _ts("created_at"),
        sa.Column("officer", sa.String(200), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("ledger_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("review_id", name="pk_reviews"),
        sa.UniqueConstraint("ledger_seq", name="uq_reviews_ledger_seq"),
        sa.ForeignKeyConstraint(
            ["decision_id"], ["decisions.decision_id"], name="fk_reviews_decision_id_decisions"
        ),
        sa.ForeignKeyConstraint(["ledger_seq"], ["ledger.seq"], name="fk_reviews_ledger_seq_ledger"),
        sa.CheckConstraint(_in("action", _ACTIONS), name="ck_reviews_action"),
        sa.CheckConstraint(_in("channel", _CHANNELS), name="ck_reviews_channel"),
    )
    op.create_index("ix_reviews_decision_id", "reviews", ["decision_id"])

    op.create_table(
        "outcomes",
        sa.Column("outcome_id", sa.String(36), nullable=False),
        sa.Column("decision_id", sa.String(36), nullable=False),
        _ts("created_at"),
        sa.Column("officer", sa.String(200), nullable=False),
        sa.Column("finding", sa.Boolean(), nullable=False),
        sa.Column("revenue_recovered", sa.Float(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("ledger_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("outcome_id", name="pk_outcomes"),
        sa.UniqueConstraint("ledger_seq", name="uq_outcomes_ledger_seq"),
        sa.ForeignKeyConstraint(
            ["decision_id"], ["decisions.decision_id"], name="fk_outcomes_decision_id_decisions"
        ),
        sa.ForeignKeyConstraint(["ledger_seq"], ["ledger.seq"], name="fk_outcomes_ledger_seq_ledger"),
    )
    op.create_index("ix_outcomes_decision_id", "outcomes", ["decision_id"])

    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        _ts("created_at"),
        _ts("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("key_id", name="pk_api_keys"),
        sa.UniqueConstraint("name", name="uq_api_keys_name"),
        sa.CheckConstraint(_in("role", _ROLES), name="ck_api_keys_role"),
    )


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_index("ix_outcomes_decision_id", table_name="outcomes")
    op.drop_table("outcomes")
    op.drop_index("ix_reviews_decision_id", table_name="reviews")
    op.drop_table("reviews")
    for name in ("officer", "model_version", "selection", "channel", "domain_created_at"):
        op.drop_index(f"ix_decisions_{name}", table_name="decisions")
    op.drop_table("decisions")
    op.drop_table("ledger_anchor")
    op.drop_index("ix_ledger_record_type_record_id", table_name="ledger")
    op.drop_index("ix_ledger_created_at", table_name="ledger")
    op.drop_table("ledger")
