"""Single-record requests decided in batches by one thread per worker and logged by two more.

Why not FastAPI's thread pool
-----------------------------
A plain ``def`` endpoint keeps CPU work off the event loop by running it in a pool thread: one thread
per request in flight, all wanting the GIL, each blocked on its own round trip to the decision log.
This queue takes about a tenth less CPU per request: 22 interleaved pairs of runs at two workers ×
16 clients (AMD EPYC, 2 cores, each worker bound to a CPU) gave 10 % less CPU per request on average
(less in 18 of them) and 7 % more requests per second (from 12 % fewer to 54 % more; the machine's
speed drifted by half over the evening).

How
---
The single-record endpoints hand their validated record to :meth:`DecisionQueue.decide` and await
the answer. Threads of their own do the rest:

* the **decision thread** takes whatever has queued up while it was busy — never waiting for more to
  arrive, so a request alone is decided at once — and makes the decisions of those records as one
  batch (:func:`service.decisions.make_decisions`: one feature pass, the wording), each record
  explained as if alone, so that its answer does not depend on what it was decided with; then it
  goes on with the next records;
* a **log thread** logs every batch made meanwhile in one transaction
  (:func:`service.decisions.log_decisions`, one round trip to the log writer) and only then hands
  each request its answer, with one wake-up of the event loop for the lot. There are two, so that
  a transaction is on its way while the writer commits the one before.

So explaining the next records overlaps with logging the last ones, and each response is still sent
only after its decision is durable. The event loop does none of the CPU work of a decision.

Failures: a decision log that cannot be written answers 503 to every request of the transaction
(nothing unlogged is returned). Any other failure is taken apart — the records made or logged one by
one — so that one request's fault never fails another's. Nothing is written by a failed
transaction, so logging again is safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
import structlog.contextvars
from fastapi import HTTPException
from pydantic import BaseModel

from models.scoring import Scorer
from service import decisions, metrics
from service.decisions import Decided
from service.store import AuditStore
from service.store.group_commit import copy_for_caller
from service.store.logwriter import PROTOCOL_TIMEOUT_S

log = structlog.get_logger(__name__)

#: Records one batch carries at most (more wait for the next one): bounds one TreeSHAP call and
#: one transaction, and so the wait of the last request in them.
MAX_GROUP = 64

#: Transactions a worker keeps in flight: while the log writer commits one, the next is on its way.
LOG_THREADS = 2

#: Seconds a request waits for its answer: longer than a round trip to the log writer may take
#: (its own time-out answers 503 first), so only a fault of the queue itself ends the wait.
ANSWER_TIMEOUT_S = PROTOCOL_TIMEOUT_S + 30.0

Outcome = bytes | BaseException


@dataclass(eq=False)
class _Job:
    store: AuditStore
    scorer: Scorer
    domain: str
    officer: str
    record: BaseModel
    random_share: float
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[bytes] = field(repr=False)
    request_id: str | None = None  # for the log lines of the threads, which run outside its context

    @property
    def batch_key(self) -> tuple[int, int, str, float]:
        # The scorer object, not the domain alone: a reload may swap it between two requests.
        return id(self.store), id(self.scorer), self.domain, self.random_share


@dataclass(eq=False)
class _Made:
    """A batch decided, waiting for the log: its jobs, the decisions and each response body."""

    store: AuditStore
    jobs: list[_Job]
    decided: Decided
    bodies: list[bytes]

    def one_by_one(self) -> list[_Made]:
        parts = self.decided.one_by_one()
        return [_Made(self.store, [j], d, [b]) for j, d, b in zip(self.jobs, parts, self.bodies, strict=True)]


def _copy_for_caller(error: BaseException) -> BaseException:
    """Each caller of a failed batch raises its own exception object (a traceback is per raise);
    an HTTPException is not rebuilt from its args, so it is copied field by field."""
    if isinstance(error, HTTPException):
        return HTTPException(error.status_code, error.detail, error.headers)
    return copy_for_caller(error)


def _take(q: queue.SimpleQueue[Any], first: Any, limit: int, size: Any) -> tuple[list[Any], bool]:
    """``first`` and whatever else is queued, up to ``limit`` in ``size``; True if the end was met."""
    items, total = [first], size(first)
    while total < limit:
        try:
            item = q.get_nowait()
        except queue.Empty:
            break
        if item is None:
            return items, True
        items.append(item)
        total += size(item)
    return items, False


class DecisionQueue:
    """Decides and logs the single-record requests of one worker in batches (module docstring)."""

    def __init__(
        self,
        max_group: int = MAX_GROUP,
        log_threads: int = LOG_THREADS,
        answer_timeout: float = ANSWER_TIMEOUT_S,
    ) -> None:
        self.max_group = max_group
        self.log_threads = log_threads
        self.answer_timeout = answer_timeout
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._made: queue.SimpleQueue[_Made | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stopped = False
        self.batches = 0  # batches decided (by the one decision thread)

    def start(self) -> None:
        with self._lock:
            self._start()

    def _start(self) -> None:  # under self._lock
        if not self._threads and not self._stopped:
            targets = [("decisions", self._decide_loop)]
            targets += [(f"decision-log-{i}", self._log_loop) for i in range(self.log_threads)]
            for name, target in targets:
                thread = threading.Thread(target=target, name=name, daemon=True)
                thread.start()
                self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> None:
        """Decide and log what is queued, then end the threads; later requests get 503."""
        with self._lock:  # no job can be queued behind the end mark: decide() queues under the lock
            self._stopped = True
            threads = list(self._threads)
            if threads:
                self._jobs.put(None)  # the decision thread passes it on to the log threads
        for thread in threads:
            thread.join(timeout)

    async def decide(
        self,
        store: AuditStore,
        scorer: Scorer,
        domain: str,
        officer: str,
        record: BaseModel,
        random_share: float,
    ) -> bytes:
        """The logged decision on ``record``, as the JSON body of its response."""
        loop = asyncio.get_running_loop()
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        job = _Job(
            store, scorer, domain, officer, record, random_share, loop, loop.create_future(), request_id
        )
        with self._lock:
            if self._stopped:
                raise HTTPException(503, "the service is shutting down: no new decision is taken")
            self._start()
            self._jobs.put(job)
        try:  # shielded: on time-out the decision may still be logged; only the wait ends
            return await asyncio.wait_for(asyncio.shield(job.future), self.answer_timeout)
        except TimeoutError:
            log.error("decision_unanswered", request_id=request_id, after_s=self.answer_timeout)
            raise HTTPException(
                503, "the decision was not confirmed in time: it may or may not be in the log"
            ) from None

    # ------------------------------------------------------------------ the decision thread

    def _decide_loop(self) -> None:
        while True:
            first = self._jobs.get()
            if first is None:
                self._end_logging()
                return
            jobs, end = _take(self._jobs, first, self.max_group, lambda _: 1)
            batches: dict[tuple[int, int, str, float], list[_Job]] = {}
            for job in jobs:
                batches.setdefault(job.batch_key, []).append(job)
            for batch in batches.values():
                try:
                    self._make(batch)
                except BaseException as exc:  # never let the thread die: every caller gets an answer
                    log.exception("decision_batch_error", error=repr(exc), request_ids=_ids(batch))
                    _deliver([(job, exc) for job in batch])
            if end:
                self._end_logging()
                return

    def _end_logging(self) -> None:
        for _ in range(self.log_threads):  # one end mark each: a log thread stops at the first it takes
            self._made.put(None)

    def _make(self, batch: list[_Job]) -> None:
        """Decide ``batch`` and pass it to the log thread; failed records are answered here."""
        first = batch[0]
        try:
            decided = decisions.make_decisions(
                first.scorer,
                first.domain,
                [job.officer for job in batch],
                [job.record.model_dump() for job in batch],
                first.random_share,
                as_alone=True,
            )
            bodies = [orjson.dumps(d) for d in decided.decisions]
        except Exception as exc:
            if len(batch) == 1:
                _deliver([(first, exc)])
            else:  # find the record at fault: decide each alone
                for job in batch:
                    self._make([job])
            return
        self.batches += 1
        metrics.DECISION_GROUP.observe(len(batch))
        self._made.put(_Made(first.store, batch, decided, bodies))

    # ------------------------------------------------------------------ the log thread

    def _log_loop(self) -> None:
        while True:
            first = self._made.get()
            if first is None:
                return
            made, end = _take(self._made, first, self.max_group, lambda m: len(m.jobs))
            by_store: dict[int, list[_Made]] = {}
            for m in made:
                by_store.setdefault(id(m.store), []).append(m)
            for group in by_store.values():
                try:
                    _deliver(self._log(group))
                except BaseException as exc:  # never let the thread die: every caller gets an answer
                    jobs = [job for m in group for job in m.jobs]
                    log.exception("decision_log_thread_error", error=repr(exc), request_ids=_ids(jobs))
                    _deliver([(job, exc) for job in jobs])
            if end:
                return

    def _log(self, group: Sequence[_Made]) -> list[tuple[_Job, Outcome]]:
        """Log ``group`` in one transaction; the answer of each of its jobs."""
        try:
            decisions.log_decisions(group[0].store, [m.decided for m in group])
        except HTTPException as exc:  # the log cannot be written: the same for every record
            return [(job, exc) for m in group for job in m.jobs]
        except Exception as exc:
            parts = [one for m in group for one in m.one_by_one()]
            if len(parts) == 1:
                return [(parts[0].jobs[0], exc)]
            out: list[tuple[_Job, Outcome]] = []
            for part in parts:  # nothing was written: log each alone, to find the one at fault
                out.extend(self._log([part]))
            return out
        return [(job, body) for m in group for job, body in zip(m.jobs, m.bodies, strict=True)]


def _ids(jobs: Sequence[_Job]) -> list[str | None]:
    return [job.request_id for job in jobs]


def _deliver(answers: list[tuple[_Job, Outcome]]) -> None:
    """Hand the answers to the event loops waiting for them (one wake-up per loop)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, Outcome]]] = {}
    for job, outcome in answers:
        by_loop.setdefault(job.loop, []).append((job, outcome))
    for loop, some in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(_resolve, some)


def _resolve(answers: list[tuple[_Job, Outcome]]) -> None:
    """On the event loop: each waiting request gets its answer (its own exception object)."""
    seen: set[int] = set()
    for job, outcome in answers:
        if job.future.done():  # the client went away; its decision is logged all the same
            continue
        if isinstance(outcome, BaseException):
            shared = id(outcome) in seen
            seen.add(id(outcome))
            job.future.set_exception(_copy_for_caller(outcome) if shared else outcome)
        else:
            job.future.set_result(outcome)
