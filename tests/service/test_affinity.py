"""Which CPU each worker is bound to, when a CPU quota forbids binding, and that binding reaches
every thread of a process (the supervisor's own test, tests/reliability/test_workers.py, checks the
workers of a real server)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from service import affinity
from service.affinity import cpu_quota, worker_cpus


def _cgroup(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, None),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu.max": "200000 100000\n"}, 2.0),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({"cpu,cpuacct/cpu.cfs_quota_us": "150000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, 1.5),
    ],
    ids=["no-cgroup", "v2-unlimited", "v2-quota", "v1-unlimited", "v1-quota"],
)
def test_cpu_quota_reads_cgroup_v2_and_v1(tmp_path, files, expected):
    assert cpu_quota(_cgroup(tmp_path, files)) == expected


@pytest.fixture
def four_cpus(monkeypatch):
    monkeypatch.setattr(affinity.os, "sched_getaffinity", lambda pid: {3, 5, 6, 9})


def test_workers_get_the_allowed_cpus_round_robin(four_cpus, tmp_path):
    assert worker_cpus(4, "auto", root=tmp_path) == [3, 5, 6, 9]
    assert worker_cpus(6, "auto", root=tmp_path) == [3, 5, 6, 9, 3, 5]
    assert worker_cpus(2, "on", root=tmp_path) == [3, 5]


def test_auto_binds_nothing_with_fewer_workers_than_cpus_or_under_a_quota_and_on_binds_anyway(
    four_cpus, tmp_path
):
    """Services with fewer workers than CPUs would all crowd the first CPUs (one worker: the
    default); a quota means the CPUs are shared."""
    assert worker_cpus(1, "auto", root=tmp_path) == [None]
    assert worker_cpus(3, "auto", root=tmp_path) == [None, None, None]
    quota = _cgroup(tmp_path, {"cpu.max": "400000 100000"})
    assert worker_cpus(4, "auto", root=quota) == [None] * 4
    assert worker_cpus(4, "on", root=quota) == [3, 5, 6, 9]


def test_off_or_a_single_allowed_cpu_or_no_affinity_call_binds_nothing(four_cpus, tmp_path, monkeypatch):
    assert worker_cpus(3, "off", root=tmp_path) == [None, None, None]
    monkeypatch.setattr(affinity.os, "sched_getaffinity", lambda pid: {7})
    assert worker_cpus(2, "on", root=tmp_path) == [None, None]
    monkeypatch.delattr(affinity.os, "sched_getaffinity")  # as on macOS
    assert worker_cpus(2, "on", root=tmp_path) == [None, None]


def test_bind_to_cpu_binds_the_threads_already_running_and_those_started_later():
    """In a child process (binding the test process would slow the rest of the run)."""
    cpu = max(os.sched_getaffinity(0))
    code = f"""
import os, threading, time
from service.affinity import bind_to_cpu
stop = threading.Event()
early = threading.Thread(target=stop.wait); early.start()
bind_to_cpu({cpu})
late = threading.Thread(target=stop.wait); late.start()
for task in sorted(os.listdir("/proc/self/task")):
    print(open(f"/proc/self/task/{{task}}/status").read().split("Cpus_allowed_list:")[1].split()[0])
stop.set()
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lists = done.stdout.split()
    assert len(lists) == 3  # the main thread, one started before and one after binding
    assert set(lists) == {str(cpu)}
