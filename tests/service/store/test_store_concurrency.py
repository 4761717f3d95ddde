"""Concurrent appends (threads; processes) and concurrent migrations make one unbroken chain."""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from alembic.script import ScriptDirectory
from sqlalchemy import func, select, text

from service.store import AuditStore, make_engine, migrate, verify_chain
from service.store.db import alembic_config
from service.store.tables import decisions, ledger

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def _kw(tag: str, i: int) -> dict[str, Any]:
    return {
        "decision_id": str(uuid.uuid4()),
        "created_at": T0 + timedelta(seconds=i),
        "domain": "cargo",
        "officer": tag,
        "model": {"name": "cargo-lgbm", "version": "v1", "sha256": "ab" * 32},
        "input_public": {"tag": tag, "i": i},
        "input_personal": None,
        "score": 0.5,
        "channel": "yellow",
        "selection": "risk",
        "thresholds": {"yellow": 0.3, "red": 0.7},
        "explanation": {"i": float(i)},
    }


def _assert_one_unbroken_chain(engine, expected_records: int, expected_decisions: int) -> None:
    res = verify_chain(engine)
    assert res.ok, res.reason
    assert res.records == expected_records
    with engine.connect() as conn:
        seqs = conn.execute(select(ledger.c.seq).order_by(ledger.c.seq)).scalars().all()
        n_dec = conn.execute(select(func.count()).select_from(decisions)).scalar_one()
    assert seqs == list(range(1, expected_records + 1))
    assert n_dec == expected_decisions


def test_four_threads_append_into_one_chain(db_target, engine) -> None:
    other_engine = db_target.engine()  # two pools, as two workers would have
    stores = [AuditStore(engine), AuditStore(engine), AuditStore(other_engine), AuditStore(other_engine)]
    per_thread = 20
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []
    expected_ids: set[str] = set()
    lock = threading.Lock()

    def work(t: int) -> None:
        try:
            barrier.wait(timeout=30)
            for i in range(per_thread):
                kw = _kw(f"thread-{t}", i)
                with lock:
                    expected_ids.add(kw["decision_id"])
                stores[t].append_decision(**kw)
                if i % 5 == 0:
                    stores[t].append_read(f"auditor-{t}", kw["decision_id"], "get_decision")
            batch = [_kw(f"thread-{t}-batch", i) for i in range(3)]
            with lock:
                expected_ids.update(b["decision_id"] for b in batch)
            stores[t].append_decisions(batch)
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(len(stores))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not errors, errors
    n_dec = len(stores) * (per_thread + 3)
    _assert_one_unbroken_chain(engine, n_dec + len(stores) * (per_thread // 5), n_dec)
    with engine.connect() as conn:
        ids = set(conn.execute(select(decisions.c.decision_id)).scalars())
    assert ids == expected_ids  # no lost record


def _process_worker(url: str, connect_args: dict[str, Any], tag: str, n: int, barrier: Any) -> None:
    engine = make_engine(url, connect_args=connect_args)
    try:
        barrier.wait(timeout=60)
        migrate(engine)  # both processes migrate the fresh database at the same moment
        store = AuditStore(engine)
        for i in range(n):
            store.append_decision(**_kw(tag, i))
            if i % 4 == 0:
                store.append_decisions([_kw(f"{tag}-batch", 1000 + i), _kw(f"{tag}-batch", 2000 + i)])
    finally:
        engine.dispose()


def test_two_processes_migrate_and_append_into_one_chain(db_target) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    n = 16
    procs = [
        ctx.Process(
            target=_process_worker, args=(db_target.url, db_target.connect_args, f"proc-{p}", n, barrier)
        )
        for p in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    engine = db_target.engine()
    per_process = n + 2 * (n // 4)
    _assert_one_unbroken_chain(engine, 2 * per_process, 2 * per_process)
    with engine.connect() as conn:
        officers = conn.execute(
            select(decisions.c.officer, func.count())
            .group_by(decisions.c.officer)
            .order_by(decisions.c.officer)
        ).all()
    assert [tuple(r) for r in officers] == [
        ("proc-0", n),
        ("proc-0-batch", 8),
        ("proc-1", n),
        ("proc-1-batch", 8),
    ]


def test_concurrent_migrations_are_safe(db_target) -> None:
    engines = [db_target.engine() for _ in range(4)]
    barrier = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def run(e) -> None:
        try:
            barrier.wait(timeout=30)
            migrate(e)
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not errors, errors
    with engines[0].connect() as conn:
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    assert versions == [ScriptDirectory.from_config(alembic_config()).get_current_head()]
    migrate(engines[0])  # and once more, idempotent
    AuditStore(engines[0]).append_decision(**_kw("after", 0))
    assert verify_chain(engines[0]).ok
