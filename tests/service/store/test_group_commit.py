"""Group commit: concurrent appends share transactions, each call keeps its own outcome, and the
chain stays one unbroken sequence with every call's records consecutive."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest
from sqlalchemy import select

from service.store import AuditStore, DuplicateDecision, StoreUnavailable, verify_chain
from service.store.db import write_transaction
from service.store.decisions import LEDGER_LOCK_KEY
from service.store.group_commit import GroupCommit
from service.store.tables import decisions, ledger


def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


def _run_threads(targets: list) -> list[BaseException]:
    errors: list[BaseException] = []

    def guarded(fn) -> None:
        try:
            fn()
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(fn,)) for fn in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a caller never returned"
    return errors


# ----------------------------------------------------------------------------- the mechanism alone


class _Recorder:
    """A commit function that records its groups; it can be held shut to let callers queue."""

    def __init__(self) -> None:
        self.groups: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __call__(self, works: Sequence[str]) -> list[str | BaseException]:
        self.entered.set()
        self.gate.wait(timeout=30)
        self.groups.append(list(works))
        return [ValueError(f"bad {w}") if w.startswith("bad") else f"ok {w}" for w in works]


def test_a_lone_caller_commits_at_once_in_its_own_group() -> None:
    rec = _Recorder()
    group: GroupCommit[str, str] = GroupCommit(rec, max_items=100)
    assert [group.submit(w) for w in ("a", "b", "c")] == ["ok a", "ok b", "ok c"]
    assert rec.groups == [["a"], ["b"], ["c"]]


def test_callers_that_wait_share_the_next_group_and_keep_their_own_outcome() -> None:
    rec = _Recorder()
    group: GroupCommit[str, str] = GroupCommit(rec, max_items=100)
    rec.gate.clear()
    results: dict[str, str] = {}
    first = threading.Thread(target=lambda: results.setdefault("first", group.submit("first")))
    first.start()
    assert rec.entered.wait(timeout=10)  # the leader is inside its commit, holding the lead

    raised: dict[str, BaseException] = {}

    def caller(name: str):
        def run() -> None:
            try:
                results[name] = group.submit(name)
            except ValueError as exc:
                raised[name] = exc

        return run

    names = [f"w{i}" for i in range(6)] + ["bad-one"]
    threads = [threading.Thread(target=caller(n)) for n in names]
    for t in threads:
        t.start()
    _wait_for(lambda: len(group._queue) == len(names))
    rec.gate.set()
    first.join(timeout=30)
    for t in threads:
        t.join(timeout=30)
    assert rec.groups[0] == ["first"]
    assert len(rec.groups) == 2 and sorted(rec.groups[1]) == sorted(names)  # one transaction for all
    assert results["first"] == "ok first"
    assert all(results[n] == f"ok {n}" for n in names if n != "bad-one")
    assert set(raised) == {"bad-one"} and str(raised["bad-one"]) == "bad bad-one"  # its own error only


def test_the_error_of_a_call_is_raised_in_that_callers_thread() -> None:
    group: GroupCommit[str, str] = GroupCommit(_Recorder(), max_items=100)
    with pytest.raises(ValueError, match="bad x"):
        group.submit("bad x")
    assert group.submit("y") == "ok y"  # the lead was released


def test_a_commit_that_crashes_fails_its_whole_group_and_releases_the_lead() -> None:
    calls = []

    def commit(works: Sequence[str]) -> list[str | BaseException]:
        calls.append(list(works))
        if len(calls) == 1:
            raise RuntimeError("disk on fire")
        return [f"ok {w}" for w in works]

    group: GroupCommit[str, str] = GroupCommit(commit, max_items=100)
    with pytest.raises(RuntimeError, match="disk on fire"):
        group.submit("a")
    assert group.submit("b") == "ok b"


def test_groups_respect_the_item_limit_but_never_split_a_call() -> None:
    rec = _Recorder()
    group: GroupCommit[str, str] = GroupCommit(rec, max_items=3)
    rec.gate.clear()
    leader = threading.Thread(target=group.submit, args=("lead",))
    leader.start()
    assert rec.entered.wait(timeout=10)
    sizes = {"two-a": 2, "two-b": 2, "five": 5, "one": 1}
    threads = []
    for name, size in sizes.items():  # queued in this order
        t = threading.Thread(target=group.submit, args=(name, size))
        t.start()
        threads.append(t)
        _wait_for(lambda n=len(threads): len(group._queue) == n)
    rec.gate.set()
    for t in [leader, *threads]:
        t.join(timeout=30)
    assert rec.groups == [["lead"], ["two-a"], ["two-b"], ["five"], ["one"]]


# ----------------------------------------------------------------------------- the audit store


def test_concurrent_appends_are_grouped_into_one_unbroken_chain(db_target, engine, make_decision) -> None:
    store = AuditStore(engine)
    blocker = db_target.engine()
    per_call = 3
    calls = [[make_decision(i * per_call + k) for k in range(per_call)] for i in range(8)]
    hashes: dict[int, list[str]] = {}
    first_in = threading.Event()

    def caller(i: int):
        def run() -> None:
            first_in.set()
            hashes[i] = store.append_decisions(calls[i])

        return run

    # Another writer holds the ledger's lock: the first caller leads and waits for it, the others queue.
    with write_transaction(blocker, lock_key=LEDGER_LOCK_KEY):
        threads = [threading.Thread(target=caller(i)) for i in range(len(calls))]
        for t in threads:
            t.start()
        _wait_for(lambda: len(store._decision_groups._queue) == len(calls) - 1)
    for t in threads:
        t.join(timeout=60)
    assert sorted(hashes) == list(range(len(calls)))
    assert store._decision_groups.groups == 2  # the leader's call, then all the others together
    assert verify_chain(engine).ok
    with engine.connect() as conn:
        seq_of = dict(conn.execute(select(decisions.c.decision_id, decisions.c.ledger_seq)).all())
        hash_of = dict(conn.execute(select(ledger.c.seq, ledger.c.hash)).all())
    for i, call in enumerate(calls):
        seqs = [seq_of[d["decision_id"]] for d in call]
        assert seqs == list(range(seqs[0], seqs[0] + per_call))  # consecutive, in call order
        assert [hash_of[s] for s in seqs] == hashes[i]  # each caller got its own records' hashes


def test_a_duplicate_in_a_group_fails_only_its_own_call(db_target, engine, make_decision) -> None:
    store = AuditStore(engine)
    logged = make_decision(0)
    store.append_decision(**logged)
    blocker = db_target.engine()
    good = [[make_decision(i)] for i in range(1, 5)]
    dup = [make_decision(9), make_decision(10, decision_id=logged["decision_id"])]
    outcomes: dict[str, object] = {}

    def call(name: str, items):
        def run() -> None:
            try:
                outcomes[name] = store.append_decisions(items)
            except DuplicateDecision as exc:
                outcomes[name] = exc

        return run

    with write_transaction(blocker, lock_key=LEDGER_LOCK_KEY):
        targets = [call(f"good-{i}", g) for i, g in enumerate(good)] + [call("dup", dup)]
        threads = [threading.Thread(target=fn) for fn in targets]
        for t in threads:
            t.start()
        _wait_for(lambda: len(store._decision_groups._queue) == len(targets) - 1)
    for t in threads:
        t.join(timeout=60)
    assert isinstance(outcomes["dup"], DuplicateDecision)
    assert all(isinstance(outcomes[f"good-{i}"], list) for i in range(len(good)))
    assert verify_chain(engine).ok
    with engine.connect() as conn:
        ids = set(conn.execute(select(decisions.c.decision_id)).scalars())
    assert {g[0]["decision_id"] for g in good} <= ids
    assert dup[0]["decision_id"] not in ids  # all or nothing for the failed call


def test_an_outage_fails_every_caller(tmp_path, make_decision) -> None:
    from service.store import make_engine

    store = AuditStore(make_engine(f"sqlite:///{tmp_path / 'gone' / 'audit.db'}"))  # cannot be written
    errors = _run_threads([lambda i=i: store.append_decision(**make_decision(i)) for i in range(4)])
    assert len(errors) == 4 and all(isinstance(e, StoreUnavailable) for e in errors)
    assert all("append_decisions" in str(e) for e in errors)
