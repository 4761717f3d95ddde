"""Binding each worker process to one CPU.

A worker is one Python process: the GIL lets one of its threads run Python at a time, so it never
uses more than about one CPU. It still has several busy threads — the event loop (HTTP, middleware,
validation) and the threads that decide and log (:mod:`service.decision_queue`) — and, left to the
scheduler, they run on whichever CPU is free, so the request's data and the interpreter's own state
keep moving between the CPUs' caches. Bound to one CPU, its threads find them warm: on the 2-core
development machine (AMD EPYC, before the decision queue), two workers with 16 clients answered
1,181–1,243 requests per second bound against 730–1,003 unbound, alternating runs (p99 23–26 ms
against 34–56 ms), and one worker with 8 clients 847–878 against 667–707 (bound with ``on``); one
worker answering one client at a time showed no clear difference. nginx's ``worker_cpu_affinity
auto`` does the same.

Binding is wrong where the CPUs are not the service's to divide. Under a CPU quota (a container
with ``--cpus`` on a larger host sees every host CPU, but may use only a share of them) a bound
worker competes with whatever else runs on its CPU; and services with fewer workers than CPUs —
one worker, the default of ``borderrisk serve`` and of the container image — would all bind to the
first CPUs, several of them on one host to the same one. ``auto`` (the default) therefore binds only
when the workers cover every CPU the service may use (one per CPU, the deployment of a machine of
its own) and no cgroup CPU quota applies; ``on`` binds in any case, ``off`` never
(``BORDERRISK_CPU_PINNING``).
"""

from __future__ import annotations

import os
from pathlib import Path

from borderrisk.settings import CpuPinning

__all__ = ["CpuPinning", "bind_to_cpu", "cpu_quota", "worker_cpus"]

#: Where the cgroup CPU quota is read (as a process sees it inside its container): cgroup v2's
#: ``cpu.max`` ("max 100000" means none), else cgroup v1's ``cpu.cfs_quota_us`` (-1 means none).
CGROUP_ROOT = Path("/sys/fs/cgroup")


def cpu_quota(root: Path = CGROUP_ROOT) -> float | None:
    """The CPUs this process's cgroup may use (quota / period), or None when there is no quota."""
    v2 = root / "cpu.max"
    try:
        quota, period = v2.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    for folder in ("cpu", "cpu,cpuacct"):
        try:
            quota_us = int((root / folder / "cpu.cfs_quota_us").read_text())
            period_us = int((root / folder / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        return None if quota_us < 0 else quota_us / period_us
    return None


def worker_cpus(workers: int, mode: CpuPinning, *, root: Path = CGROUP_ROOT) -> list[int | None]:
    """The CPU each worker slot is bound to (None: not bound), round robin over the CPUs this
    process may run on. Nothing is bound with ``off``; with ``auto`` when there are fewer workers than
    allowed CPUs or a CPU quota applies; when only one CPU is allowed (there is nothing to choose);
    nor where the system cannot bind (not Linux)."""
    if not hasattr(os, "sched_getaffinity"):
        return [None] * workers
    allowed = sorted(os.sched_getaffinity(0))
    if mode == "off" or len(allowed) < 2:
        return [None] * workers
    if mode == "auto" and (workers < len(allowed) or cpu_quota(root) is not None):
        return [None] * workers
    return [allowed[slot % len(allowed)] for slot in range(workers)]


def bind_to_cpu(cpu: int) -> None:
    """Bind every thread of this process to ``cpu`` (threads started later inherit it).

    ``sched_setaffinity`` binds one thread; a process may already run others (a thread pool a
    library started at import), so each is bound by its id."""
    for task in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(task), {cpu})
        except ProcessLookupError:  # that thread has ended meanwhile
            continue
