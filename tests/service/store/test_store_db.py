"""Engine settings, migrations, ping, and StoreUnavailable on a dead or broken database."""

from __future__ import annotations

import shutil
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from service.store import AuditStore, KeyStore, StoreUnavailable, make_engine, migrate, ping, verify_chain
from service.store.db import alembic_config, write_transaction
from service.store.tables import Base


def test_sqlite_engine_pragmas(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    finally:
        engine.dispose()


def test_postgres_engine_pre_pings() -> None:
    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none")
    assert engine.pool._pre_ping is True
    engine.dispose()
    with pytest.raises(ValueError, match="unsupported"):
        make_engine("mysql://u@h/db")


def test_migrate_is_idempotent_and_matches_the_models(db_target) -> None:
    engine = db_target.engine()
    migrate(engine)
    migrate(engine)
    tables = set(inspect(engine).get_table_names())
    assert {
        "ledger",
        "ledger_anchor",
        "decisions",
        "reviews",
        "outcomes",
        "api_keys",
        "alembic_version",
    } <= tables
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_migration_downgrades_and_upgrades_again(db_target) -> None:
    engine = db_target.engine()
    migrate(engine)
    with engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert "ledger" not in inspect(engine).get_table_names()
    migrate(engine)
    assert "ledger" in inspect(engine).get_table_names()


def test_migrate_accepts_a_url(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'u.db'}"
    migrate(url)
    engine = make_engine(url)
    try:
        assert ping(engine)
        assert verify_chain(engine).ok
    finally:
        engine.dispose()


def test_ping(engine) -> None:
    assert ping(engine) is True
    dead = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 2})
    assert ping(dead) is False
    dead.dispose()


def _assert_unavailable(engine, make_decision) -> None:
    store = AuditStore(engine)
    with pytest.raises(StoreUnavailable, match="audit store unavailable during append_decisions"):
        store.append_decision(**make_decision(1))
    with pytest.raises(StoreUnavailable):
        store.list_decisions()
    with pytest.raises(StoreUnavailable):
        store.get_decision(str(uuid.uuid4()))
    with pytest.raises(StoreUnavailable):
        list(store.iter_history("cargo", None))
    with pytest.raises(StoreUnavailable):
        verify_chain(engine)
    with pytest.raises(StoreUnavailable):
        KeyStore(engine).authenticate("br_0123456789ab_" + "A" * 43)
    with pytest.raises(StoreUnavailable):
        store.mask_personal(datetime.now().astimezone())
    with pytest.raises(StoreUnavailable, match="migration"):
        migrate(engine)


def test_unreachable_postgres_raises_store_unavailable(make_decision) -> None:
    engine = make_engine(
        "postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 2}
    )
    try:
        _assert_unavailable(engine, make_decision)
    finally:
        engine.dispose()


def test_sqlite_in_missing_directory_raises_store_unavailable(tmp_path, make_decision) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'gone' / 'audit.db'}")
    try:
        _assert_unavailable(engine, make_decision)
    finally:
        engine.dispose()


def test_database_removed_under_a_running_store(tmp_path, make_decision) -> None:
    folder = tmp_path / "db"
    folder.mkdir()
    engine = make_engine(f"sqlite:///{folder / 'audit.db'}")
    migrate(engine)
    store = AuditStore(engine)
    store.append_decision(**make_decision(0))
    engine.dispose()  # close pooled connections, then the volume disappears
    shutil.rmtree(folder)
    with pytest.raises(StoreUnavailable):
        store.append_decision(**make_decision(1))
    engine.dispose()


def test_read_only_sqlite_raises_store_unavailable(tmp_path, make_decision) -> None:
    path = tmp_path / "ro.db"
    migrate(f"sqlite:///{path}")
    engine = make_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        store = AuditStore(engine)
        with pytest.raises(StoreUnavailable, match=r"readonly|read-only|read only"):
            store.append_decision(**make_decision(0))
        assert store.list_decisions() == ([], 0)  # reads still work
    finally:
        engine.dispose()


def test_unmigrated_database_raises_store_unavailable(db_target, make_decision) -> None:
    engine = db_target.engine()
    with pytest.raises(StoreUnavailable):
        AuditStore(engine).append_decision(**make_decision(0))


@pytest.mark.postgres
@pytest.mark.parametrize("db_target", ["postgres"], indirect=True)
def test_postgres_connection_killed_is_replaced_by_pre_ping(db_target, engine, make_decision) -> None:
    store = AuditStore(engine)
    store.append_decision(**make_decision(0))
    with engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    killer = db_target.engine()
    with killer.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar_one() is True
    store.append_decision(**make_decision(1))  # the dead pooled connection is detected and replaced
    assert verify_chain(engine).records == 2


def test_sqlite_rows_go_to_the_driver_exactly_as_a_core_insert_sends_them(
    tmp_path, make_decision, monkeypatch
):
    """SQLite decision appends run at the driver level (their own transaction and INSERTs): the
    stored bytes must be what SQLAlchemy's transaction and ``conn.execute(insert(table), rows)``
    store — timestamps, canonical JSON, NULLs, floats."""
    import sqlite3

    from sqlalchemy import insert

    import service.store.decisions as store_decisions

    def core_insert(conn, table, rows):
        conn.execute(insert(table), list(rows))

    decisions = [make_decision(i) for i in range(6)]  # cargo and passenger: personal JSON and NULL
    # a batch's decisions share one time (each insert processes a repeated timestamp once)
    at = datetime(2025, 3, 1, 9, 30, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    batch = [make_decision(i, created_at=at) for i in range(6, 10)]
    stored = {}
    for name in ("driver", "core"):
        engine = make_engine(f"sqlite:///{tmp_path / name}.db")
        migrate(engine)
        with monkeypatch.context() as patch:
            if name == "core":
                patch.setattr(store_decisions, "insert_rows", core_insert)
            store = AuditStore(engine)
            assert store._driver_appends
            if name == "core":
                store._driver_appends = False
            store.append_decisions(decisions[:2])
            for d in decisions[2:]:
                store.append_decision(**d)
            store.append_decisions(batch)
        assert verify_chain(engine).ok
        engine.dispose()
        with sqlite3.connect(tmp_path / f"{name}.db") as raw:
            stored[name] = {
                table: raw.execute(
                    f"SELECT * FROM {table} ORDER BY ledger_seq"
                    if table == "decisions"
                    else f"SELECT * FROM {table} ORDER BY seq"
                ).fetchall()
                for table in ("ledger", "decisions")
            }
    assert len(stored["driver"]["ledger"]) == len(stored["driver"]["decisions"]) == 10
    assert len({row[3] for row in stored["driver"]["ledger"][6:]}) == 1  # created_at, as UTC text
    assert stored["driver"] == stored["core"]


def test_a_driver_error_on_sqlite_is_the_error_sqlalchemy_raises(engine, make_decision) -> None:
    """A duplicate key reaches the store as SQLAlchemy's ``IntegrityError`` (what tells a duplicate
    decision from an outage), on the driver path as on the other."""
    from sqlalchemy import exc

    from service.store.db import insert_rows
    from service.store.tables import decisions

    store = AuditStore(engine)
    d = make_decision(0)
    store.append_decision(**d)
    row = {
        "decision_id": d["decision_id"],
        "created_at": d["created_at"],
        "domain": "cargo",
        "officer": "x",
        "model_name": "m",
        "model_version": "1",
        "model_sha256": "0" * 64,
        "score": 0.5,
        "channel": "green",
        "selection": "none",
        "ledger_seq": 1,
    }
    with pytest.raises(exc.IntegrityError), engine.begin() as conn:
        insert_rows(conn, decisions, [row])


def _ledger_rows(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT * FROM ledger ORDER BY seq"))]


def _hash_is_unique(engine) -> bool:
    found = inspect(engine)
    uniques = [u["column_names"] for u in found.get_unique_constraints("ledger")]
    indexes = [i["column_names"] for i in found.get_indexes("ledger") if i["unique"]]
    return ["hash"] in uniques + indexes


def test_0002_drops_the_unique_hash_and_keeps_every_record_byte_for_byte(db_target, make_decision) -> None:
    """A log written at revision 0001 (decisions, a review, an outcome, a read) comes through the
    upgrade with the same rows, a verifying chain and working foreign keys, takes new records after
    it, and goes back down to 0001 with its data."""
    engine = db_target.engine()
    migrate(engine, "0001")
    assert _hash_is_unique(engine)
    store = AuditStore(engine)
    decisions = [make_decision(i) for i in range(6)]
    store.append_decisions(decisions)
    first = decisions[0]["decision_id"]
    store.append_review(first, "officer-0", "override", "red", "seen on the manifest")
    store.append_outcome(first, "officer-0", True, revenue_recovered=120.0)
    store.append_read("auditor-1", first, "decision")
    before = _ledger_rows(engine)

    migrate(engine)

    assert not _hash_is_unique(engine)
    assert _ledger_rows(engine) == before
    assert verify_chain(engine).ok
    if db_target.backend == "sqlite":
        with engine.connect() as conn:  # the migration's connection, keys off, was not pooled
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
    with engine.connect() as conn:  # the decisions' keys point at the rebuilt ledger
        joined = conn.execute(
            text("SELECT count(*) FROM decisions d JOIN ledger l ON l.seq = d.ledger_seq")
        ).scalar()
    assert joined == 6
    store = AuditStore(engine)
    store.append_decisions([make_decision(i) for i in range(6, 9)])
    assert store.get_decision(first)["ledger_seq"] == 1
    assert verify_chain(engine).ok
    after = _ledger_rows(engine)

    with write_transaction(engine, sqlite_foreign_keys=False) as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    assert _hash_is_unique(engine)
    assert _ledger_rows(engine) == after
    assert verify_chain(engine).ok
