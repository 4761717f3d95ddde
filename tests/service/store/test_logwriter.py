"""The decision-log writer: workers' stores commit their decisions through one writer, which chains
them exactly as a store writing for itself would, group-commits concurrent callers, and reports
duplicates and outages to the caller they belong to."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from service.store import AuditStore, DuplicateDecision, StoreUnavailable, make_engine, migrate, verify_chain
from service.store.logwriter import RemoteDecisionLog, _Writer, decode_call, encode_call, listen
from service.store.tables import decisions, ledger


class Running:
    """A writer serving on ``path`` in a thread of the test process (the loop is the same)."""

    def __init__(self, engine, path: str) -> None:
        self.path = path
        self.writer = _Writer(AuditStore(engine), listen(path))
        self.thread = threading.Thread(target=self.writer.serve, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.writer.stop.set()
        self.thread.join(timeout=10)
        for key in list(self.writer.selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self.writer.selector.close()


@pytest.fixture
def socket_path() -> Iterator[str]:
    # AF_UNIX paths are short (108 bytes): not under pytest's long tmp_path
    import tempfile

    folder = tempfile.mkdtemp(prefix="br-lw-")
    yield os.path.join(folder, "writer.sock")
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def writer(engine, socket_path) -> Iterator[Running]:
    running = Running(engine, socket_path)
    yield running
    running.stop()


def _rows(engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {
            "ledger": [tuple(r) for r in conn.execute(select(ledger).order_by(ledger.c.seq))],
            "decisions": [tuple(r) for r in conn.execute(select(decisions).order_by(decisions.c.ledger_seq))],
        }


def test_a_call_survives_the_wire_unchanged(store, make_decision) -> None:
    """What the writer decodes is what the worker prepared: the canonical bytes, the personal part
    (present for a passenger, absent for cargo), the timestamp and every index field."""
    items = [make_decision(i) for i in range(4)]
    call = [store._prepare_decision(**item) for item in items]
    frame = encode_call(call)
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    assert decode_call(frame[4:]) == call


def test_decisions_logged_through_the_writer_are_the_rows_a_store_writes_itself(
    tmp_path, socket_path, make_decision
) -> None:
    """The same calls, in the same order, give the same ledger and index rows — bytes, seq,
    hashes — whether a store commits them itself or hands them to the writer."""
    engines = {name: make_engine(f"sqlite:///{tmp_path / name}.db") for name in ("remote", "local")}
    for engine in engines.values():
        migrate(engine)
    calls = [[make_decision(3 * i + k) for k in range(1 + i % 3)] for i in range(6)]
    running = Running(engines["remote"], socket_path)
    try:
        remote = AuditStore(engines["remote"], log_writer=socket_path)
        hashes = [remote.append_decisions(call) for call in calls]
    finally:
        running.stop()
    local = AuditStore(engines["local"])
    assert [local.append_decisions(call) for call in calls] == hashes
    assert _rows(engines["remote"]) == _rows(engines["local"])
    assert verify_chain(engines["remote"]).records == sum(map(len, calls))
    for engine in engines.values():
        engine.dispose()


def test_concurrent_callers_of_several_stores_make_one_unbroken_chain(engine, writer, make_decision) -> None:
    """Two "workers" (two stores), four threads each, all through one writer: every call gets its
    own records' hashes, consecutive in the chain, and the chain verifies."""
    workers = [AuditStore(engine, log_writer=writer.path) for _ in range(2)]
    calls = [[make_decision(100 * t + 10 * i + k) for k in range(2)] for t in range(8) for i in range(10)]
    results: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def run(t: int) -> None:
        try:
            for i in range(10):
                n = 10 * t + i
                results[n] = workers[t % 2].append_decisions(calls[n])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert verify_chain(engine).records == 160
    with engine.connect() as conn:
        seq_of = dict(conn.execute(select(decisions.c.decision_id, decisions.c.ledger_seq)).all())
        hash_of = dict(conn.execute(select(ledger.c.seq, ledger.c.hash)).all())
    for n, call in enumerate(calls):
        seqs = [seq_of[d["decision_id"]] for d in call]
        assert seqs == [seqs[0], seqs[0] + 1]
        assert [hash_of[s] for s in seqs] == results[n]


def test_a_duplicate_fails_its_own_call_only(engine, writer, make_decision) -> None:
    remote = AuditStore(engine, log_writer=writer.path)
    logged = make_decision(0)
    remote.append_decision(**logged)
    with pytest.raises(DuplicateDecision, match=logged["decision_id"]):
        remote.append_decisions([make_decision(1), make_decision(2, decision_id=logged["decision_id"])])
    remote.append_decision(**make_decision(3))
    assert verify_chain(engine).records == 2


def test_no_writer_is_an_outage_and_a_restarted_writer_is_found_again(
    engine, socket_path, make_decision
) -> None:
    remote = AuditStore(engine, log_writer=socket_path)
    with pytest.raises(StoreUnavailable, match="decision-log writer"):
        remote.append_decision(**make_decision(0))
    assert remote.log_writer is not None and remote.log_writer.ping() is False

    first = Running(engine, socket_path)
    remote.append_decision(**make_decision(1))  # this thread now holds a connection to it
    first.stop()
    second = Running(engine, socket_path)  # a writer restarted by the supervisor, same socket path
    try:
        remote.append_decision(**make_decision(2))  # the closed connection is noticed, not used
        assert remote.log_writer.ping() is True
    finally:
        second.stop()
    assert verify_chain(engine).records == 2


def test_an_outage_of_the_database_reaches_the_caller(tmp_path, socket_path, make_decision) -> None:
    gone = make_engine(f"sqlite:///{tmp_path / 'missing' / 'audit.db'}")
    running = Running(gone, socket_path)
    try:
        remote = RemoteDecisionLog(socket_path)
        store = AuditStore(gone, log_writer=socket_path)
        with pytest.raises(StoreUnavailable, match="append_decisions"):
            store.append_decision(**make_decision(0))
        assert remote.ping() is True  # the writer itself still answers
    finally:
        running.stop()
        gone.dispose()
    assert not Path(tmp_path / "missing").exists()
