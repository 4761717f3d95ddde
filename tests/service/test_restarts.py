"""Restart backoff: a process that keeps dying young is restarted later and later, not every tick."""

from __future__ import annotations

import pytest
import structlog

from service import server
from service.restarts import RestartBackoff


def test_early_deaths_double_the_wait_up_to_the_cap():
    backoff = RestartBackoff(first_delay_s=1.0, max_delay_s=30.0, stable_after_s=60.0)
    waits = [backoff.delay_s(0, lived_s=2.0) for _ in range(8)]
    assert waits == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_a_process_that_lived_long_starts_the_count_again():
    backoff = RestartBackoff(first_delay_s=1.0, max_delay_s=30.0, stable_after_s=60.0)
    assert [backoff.delay_s("writer", 1.0) for _ in range(3)] == [0.0, 1.0, 2.0]
    assert backoff.delay_s("writer", 60.0) == 0.0  # died of something else than its start
    assert backoff.delay_s("writer", 1.0) == 1.0


def test_slots_count_apart():
    backoff = RestartBackoff()
    for _ in range(4):
        backoff.delay_s(0, 0.1)
    assert backoff.delay_s(1, 0.1) == 0.0
    assert backoff.delay_s("writer", 0.1) == 0.0


@pytest.mark.parametrize(
    "kwargs", [{"first_delay_s": 0.0}, {"first_delay_s": 5.0, "max_delay_s": 1.0}, {"stable_after_s": 0.0}]
)
def test_settings_that_would_spin_or_never_wait_are_refused(kwargs):
    with pytest.raises(ValueError):
        RestartBackoff(**kwargs)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_supervisor_replaces_a_dead_process_only_when_its_wait_is_over(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(server.time, "monotonic", clock)
    sup = server._Supervisor("m:app", "127.0.0.1", 0, 1, {}, log_writer=False, cpus=[None])
    sup.started_at[0] = clock.now
    with structlog.testing.capture_logs() as logs:
        clock.now += 0.3  # died young, the first time: replaced at once
        assert sup._replace_now(0, "worker_died", 11, 1)
        sup.started_at[0] = clock.now
        clock.now += 0.3  # again: one second's wait
        assert not sup._replace_now(0, "worker_died", 12, 1)
        clock.now += 0.5
        assert not sup._replace_now(0, "worker_died", 12, 1)  # still waiting, not logged again
        clock.now += 0.5
        assert sup._replace_now(0, "worker_died", 12, 1)
    deaths = [entry for entry in logs if entry["event"] == "worker_died"]
    assert [(d["pid"], d["restart_in_s"]) for d in deaths] == [(11, 0.0), (12, 1.0)]
