"""Group commit: the appends of concurrent callers share one transaction, and so one fsync.

Every decision must be durable before its response is sent, and every append to the chain is
serialised (one head, one lock). One transaction per decision would make the lock and the disk
flush the limit of the whole service; instead, callers that arrive while a transaction is being
written queue up, and the next transaction carries all of them.

Leader/follower, without a thread of its own: the first caller finds nobody writing and becomes the
*leader*. It takes every job queued so far (its own first, up to ``max_items``), commits them in one
transaction, hands each caller its own outcome and passes the lead to the oldest job still waiting,
whose caller then commits the next group. A caller alone (one request at a time) is its own leader
and commits at once: no hand-off to another thread, no added latency. A call still returns only
after the transaction holding its records has committed, and each job keeps its own outcome: one
caller's duplicate id fails that caller, not the others of its group.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

W = TypeVar("W")  # one caller's work
R = TypeVar("R")  # its result

__all__ = ["GroupCommit", "copy_for_caller"]


class _Job(Generic[W, R]):
    __slots__ = ("done", "error", "result", "size", "wake", "work")

    def __init__(self, work: W, size: int) -> None:
        self.work = work
        self.size = size
        self.done = False
        self.result: R | None = None
        self.error: BaseException | None = None
        self.wake = threading.Event()


def copy_for_caller(error: BaseException) -> BaseException:
    """An instance of ``error`` of one caller's own, chained to it, or ``error`` itself where its type
    cannot be rebuilt from its args. Callers that share one failure (the callers of a group, the
    requests of a batch) each raise their own instance: a traceback is per raise."""
    try:
        copy = type(error)(*error.args)
    except Exception:
        return error
    copy.__cause__ = error
    return copy


def _raise_copy(error: BaseException) -> None:
    """Raise the shared failure of a group's transaction in this caller's thread, as its own."""
    copy = copy_for_caller(error)
    if copy is error:
        raise error from None
    raise copy


class GroupCommit(Generic[W, R]):
    """Runs ``commit(works)`` for groups of concurrent :meth:`submit` calls.

    ``commit`` writes the works in one transaction and returns, in order, each work's result or the
    exception that work's caller must get (it may commit a failed group again work by work to tell
    them apart). An exception escaping ``commit`` fails every caller of the group.
    """

    def __init__(self, commit: Callable[[Sequence[W]], list[R | BaseException]], max_items: int) -> None:
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        self._commit = commit
        self._max_items = max_items
        self._mutex = threading.Lock()
        self._queue: deque[_Job[W, R]] = deque()
        self._leading = False
        self.groups = 0  # transactions written (for tests and metrics)
        self.jobs = 0  # calls they carried

    def submit(self, work: W, size: int = 1) -> R:
        """Commit ``work`` (``size`` records) together with whatever else is waiting; return its
        result once its transaction has committed, or raise the error meant for it."""
        job: _Job[W, R] = _Job(work, size)
        with self._mutex:
            self._queue.append(job)
            lead = not self._leading
            self._leading = True
        if not lead:
            job.wake.wait()
        if not job.done:  # leading: this job is the oldest queued
            self._lead()
        if job.error is not None:
            _raise_copy(job.error)
        return job.result  # type: ignore[return-value]

    def _take(self) -> list[_Job[W, R]]:
        with self._mutex:
            group = [self._queue.popleft()]
            total = group[0].size
            while self._queue and total + self._queue[0].size <= self._max_items:
                job = self._queue.popleft()
                group.append(job)
                total += job.size
            return group

    def _lead(self) -> None:
        group = self._take()
        try:
            outcomes = self._commit([job.work for job in group])
            if len(outcomes) != len(group):  # pragma: no cover - a bug in commit
                raise RuntimeError(f"commit returned {len(outcomes)} outcomes for {len(group)} works")
        except BaseException as exc:
            outcomes = [exc] * len(group)
        self.groups += 1
        self.jobs += len(group)
        for job, outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                job.error = outcome
            else:
                job.result = outcome
            job.done = True
        with self._mutex:
            successor = self._queue[0] if self._queue else None
            if successor is None:
                self._leading = False  # else the lead passes to the successor's caller
        for job in group[1:]:
            job.wake.set()
        if successor is not None:
            successor.wake.set()
