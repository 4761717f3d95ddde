"""The decision queue: single-record requests decided and logged in batches, each answered as if alone.

A gate holds the decision thread in its first batch while the other requests queue up, so that they
form one batch of their own: what is checked is what a batch changes (and must not), not timing.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import orjson
import pytest
from fastapi import HTTPException
from sqlalchemy import text

from features.schemas import CargoDeclaration, PassengerRecord
from models.scoring import Scorer
from service import decisions
from service.decision_queue import DecisionQueue
from service.models_state import ServingModels
from service.store import AuditStore, StoreUnavailable, make_engine, migrate, verify_chain
from tests.conftest import record_of


@pytest.fixture(scope="module")
def scorers(registered) -> dict[str, Scorer]:
    models = ServingModels()
    models.load_all(registered)
    return {d: models.get(d) for d in ("cargo", "passenger")}  # type: ignore[misc]


@pytest.fixture
def store(tmp_path) -> Iterator[AuditStore]:
    engine = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    migrate(engine)
    yield AuditStore(engine)
    engine.dispose()


@pytest.fixture
def queue() -> Iterator[DecisionQueue]:
    q = DecisionQueue()
    yield q
    q.stop()


class Gate:
    """Holds the first call to ``make_decisions`` until opened; counts the records of each call."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_officer: str | None = None) -> None:
        self.opened = threading.Event()
        self.entered = threading.Event()
        self.calls: list[list[str]] = []
        real = decisions.make_decisions

        def make(scorer, domain, officer, records, random_share, explanation="full", **kw):  # type: ignore[no-untyped-def]
            self.calls.append(list(officer))
            if len(self.calls) == 1:
                self.entered.set()
                assert self.opened.wait(30)
            if fail_officer is not None and fail_officer in officer:
                raise ValueError(f"a fault in {fail_officer}'s record")
            return real(scorer, domain, officer, records, random_share, explanation, **kw)

        monkeypatch.setattr(decisions, "make_decisions", make)


def _logged(store: AuditStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(text("SELECT COUNT(*) FROM decisions")).scalar_one())


def _cargo(cargo_trained, i: int) -> CargoDeclaration:
    return CargoDeclaration.model_validate(record_of(cargo_trained.later.iloc[i]))


async def _submit_held(
    queue: DecisionQueue, gate: Gate, jobs: list[tuple], store: AuditStore
) -> list[bytes | BaseException]:
    """The first job alone (held at the gate), then the others queued behind it; all answers."""
    loop = asyncio.get_running_loop()
    first = asyncio.ensure_future(queue.decide(store, *jobs[0]))
    assert await loop.run_in_executor(None, gate.entered.wait, 30)
    rest = [asyncio.ensure_future(queue.decide(store, *job)) for job in jobs[1:]]
    await asyncio.sleep(0.05)  # every job is queued (decide puts it before its first await)
    gate.opened.set()
    return await asyncio.gather(first, *rest, return_exceptions=True)


def test_requests_queued_together_are_one_batch_each_answered_and_logged_as_alone(
    queue, store, scorers, cargo_trained, monkeypatch
):
    gate = Gate(monkeypatch)
    records = [_cargo(cargo_trained, i) for i in range(10)]
    jobs = [(scorers["cargo"], "cargo", f"officer-{i}", r, 0.0) for i, r in enumerate(records)]
    answers = asyncio.run(_submit_held(queue, gate, jobs, store))

    assert [len(c) for c in gate.calls] == [1, 9]  # the nine queued behind the first: one batch
    assert queue.batches == 2
    scorer = scorers["cargo"]
    for i, (answer, record) in enumerate(zip(answers, records, strict=True)):
        assert isinstance(answer, bytes)
        body = orjson.loads(answer)
        alone = decisions.make_decisions(scorer, "cargo", "x", [record.model_dump()], 0.0).decisions[0]
        assert body["score"] == alone["score"] and body["channel"] == alone["channel"]
        assert body["explanation"] == orjson.loads(orjson.dumps(alone["explanation"]))
        logged = store.get_decision(body["decision_id"])
        assert logged is not None
        assert logged["officer"] == f"officer-{i}"  # each request's own officer, not the batch's first
        assert logged["explanation"] == body["explanation"] and logged["score"] == body["score"]
    assert verify_chain(store.engine).ok


def test_a_record_that_fails_fails_alone(queue, store, scorers, cargo_trained, monkeypatch):
    gate = Gate(monkeypatch, fail_officer="officer-faulty")
    names = ["officer-0", "officer-1", "officer-faulty", "officer-3", "officer-4"]
    jobs = [(scorers["cargo"], "cargo", n, _cargo(cargo_trained, i), 0.0) for i, n in enumerate(names)]
    answers = asyncio.run(_submit_held(queue, gate, jobs, store))

    assert isinstance(answers[2], ValueError) and "officer-faulty" in str(answers[2])
    for name, answer in zip(names, answers, strict=True):
        if name != "officer-faulty":
            assert isinstance(answer, bytes)
            assert store.get_decision(orjson.loads(answer)["decision_id"])["officer"] == name


def test_an_entry_the_log_refuses_fails_alone_and_the_others_are_logged_once(
    queue, store, scorers, cargo_trained, monkeypatch
):
    gate = Gate(monkeypatch)
    real = store.append_decisions

    def refusing(items):  # type: ignore[no-untyped-def]
        if any(item["officer"] == "officer-refused" for item in items):
            raise ValueError("officer-refused: refused by the log")
        return real(items)

    monkeypatch.setattr(store, "append_decisions", refusing)
    names = ["officer-0", "officer-refused", "officer-2", "officer-3"]
    jobs = [(scorers["cargo"], "cargo", n, _cargo(cargo_trained, i), 0.0) for i, n in enumerate(names)]
    answers = asyncio.run(_submit_held(queue, gate, jobs, store))

    assert isinstance(answers[1], ValueError)
    ids = [orjson.loads(a)["decision_id"] for a in answers if isinstance(a, bytes)]
    assert len(ids) == 3
    assert all(store.get_decision(i) is not None for i in ids)
    assert _logged(store) == 3  # logged once each, the refused one not at all
    assert verify_chain(store.engine).ok


def test_a_log_that_cannot_be_written_answers_503_to_every_request_and_returns_no_score(
    queue, store, scorers, cargo_trained, monkeypatch
):
    gate = Gate(monkeypatch)

    def down(items):  # type: ignore[no-untyped-def]
        raise StoreUnavailable("disk full")

    monkeypatch.setattr(store, "append_decisions", down)
    jobs = [(scorers["cargo"], "cargo", f"o{i}", _cargo(cargo_trained, i), 0.0) for i in range(4)]
    answers = asyncio.run(_submit_held(queue, gate, jobs, store))

    assert all(isinstance(a, HTTPException) and a.status_code == 503 for a in answers)
    assert len({id(a) for a in answers}) == 4  # each request raises its own exception object


def test_records_of_different_models_are_decided_apart(
    queue, store, scorers, cargo_trained, passenger_trained, monkeypatch
):
    gate = Gate(monkeypatch)
    passenger = PassengerRecord.model_validate(record_of(passenger_trained.later.iloc[0]))
    jobs = [
        (scorers["cargo"], "cargo", "o0", _cargo(cargo_trained, 0), 0.0),
        (scorers["cargo"], "cargo", "o1", _cargo(cargo_trained, 1), 0.0),
        (scorers["passenger"], "passenger", "o2", passenger, 0.0),
        (scorers["cargo"], "cargo", "o3", _cargo(cargo_trained, 2), 0.0),
    ]
    answers = asyncio.run(_submit_held(queue, gate, jobs, store))

    assert sorted(gate.calls[1:]) == [["o1", "o3"], ["o2"]]
    domains = [orjson.loads(a)["domain"] for a in answers]  # type: ignore[arg-type]
    assert domains == ["cargo", "cargo", "passenger", "cargo"]
    assert orjson.loads(answers[2])["model"]["name"] == scorers["passenger"].model_info["name"]  # type: ignore[arg-type]


def test_stop_answers_what_is_queued_then_refuses(store, scorers, cargo_trained, monkeypatch):
    queue = DecisionQueue()
    gate = Gate(monkeypatch)

    async def scenario() -> tuple[list, BaseException | None]:
        loop = asyncio.get_running_loop()
        jobs = [
            asyncio.ensure_future(
                queue.decide(store, scorers["cargo"], "cargo", f"o{i}", _cargo(cargo_trained, i), 0.0)
            )
            for i in range(3)
        ]
        assert await loop.run_in_executor(None, gate.entered.wait, 30)
        await asyncio.sleep(0.05)
        stopping = loop.run_in_executor(None, queue.stop)
        gate.opened.set()
        answers = await asyncio.gather(*jobs, return_exceptions=True)
        await stopping
        try:
            await queue.decide(store, scorers["cargo"], "cargo", "late", _cargo(cargo_trained, 5), 0.0)
        except HTTPException as exc:
            return answers, exc
        return answers, None

    answers, late = asyncio.run(scenario())
    assert all(isinstance(a, bytes) for a in answers)
    assert late is not None and late.status_code == 503
    assert not any(t.is_alive() for t in queue._threads)


def test_a_request_whose_client_left_is_still_logged(queue, store, scorers, cargo_trained, monkeypatch):
    gate = Gate(monkeypatch)

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(
            queue.decide(store, scorers["cargo"], "cargo", "gone", _cargo(cargo_trained, 0), 0.0)
        )
        assert await loop.run_in_executor(None, gate.entered.wait, 30)
        task.cancel()  # the client disconnected while its record was being decided
        gate.opened.set()
        after = await queue.decide(store, scorers["cargo"], "cargo", "next", _cargo(cargo_trained, 1), 0.0)
        assert orjson.loads(after)["domain"] == "cargo"

    asyncio.run(scenario())
    assert _logged(store) == 2  # the decision made for the departed client is in the log


def test_an_answer_that_never_comes_ends_in_503_not_a_hang(store, scorers, cargo_trained, monkeypatch):
    """A fault of the queue itself (here: every answer lost) must not leave the request waiting forever."""
    import service.decision_queue as dq

    lost: list[object] = []
    monkeypatch.setattr(dq, "_deliver", lambda answers: lost.extend(answers))
    queue = DecisionQueue(answer_timeout=0.5)
    try:
        with pytest.raises(HTTPException) as caught:
            asyncio.run(queue.decide(store, scorers["cargo"], "cargo", "o", _cargo(cargo_trained, 0), 0.0))
    finally:
        queue.stop()
    assert caught.value.status_code == 503 and "not confirmed" in str(caught.value.detail)
    assert len(lost) == 1  # the decision was made (and logged); only its answer went missing
    assert _logged(store) == 1
