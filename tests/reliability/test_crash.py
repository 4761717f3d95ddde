"""Crash: ``kill -9`` of the server in the middle of load, then a restart.

Every decision whose response a client received is in the decision log; there is no half-written
record (one ledger record per decision row, every decision row's ledger record exists); the hash chain
verifies — and keeps growing correctly after the restart. On SQLite (WAL, ``synchronous=FULL``) and
PostgreSQL.

What ``kill -9`` proves: the process dies at an arbitrary instruction with requests in flight; what
it does not: a power cut (the operating system's page cache survives a killed process). Durability
across power loss rests on ``synchronous=FULL`` / ``synchronous_commit=on``, which the store sets.
"""

from __future__ import annotations

import time

import pytest

from tests.reliability.conftest import Load, bearer, inspect_store, make_store_keys
from tests.reliability.figures import write_figures

pytestmark = pytest.mark.reliability


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_kill_9_loses_no_answered_decision(backend, request, registry, servers, tmp_path, cargo_payloads):
    url = f"sqlite:///{tmp_path / 'audit.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    keys = make_store_keys(url)
    registry.set_champion("cargo", "1")
    server = servers(registry.data_dir, url)

    load = Load(
        server.url,
        "/v1/cargo/score",
        cargo_payloads,
        bearer(keys["officer"]),
        workers=4,
        per_worker=400,
        deadline=60,
        stop_on_error=True,
    )
    load.start()
    assert load.wait_until(lambda: len(load.ok()) >= 150, timeout=60), load.statuses()
    killed_at = time.monotonic()
    server.kill9()
    load.join()

    answered = load.ok()
    cut = [a for a in load.answers if a.status is None]
    other = [a for a in load.answers if a.status not in (200, None)]
    assert not other, other[:3]
    assert cut, "the kill did not catch any request in flight"
    assert all(a.done_at >= killed_at for a in cut)

    report = inspect_store(url)
    report.assert_whole()
    lost = [a.body["decision_id"] for a in answered if a.body["decision_id"] not in report.versions]
    assert not lost, f"{len(lost)} answered decisions are not in the log"
    logged_unanswered = report.decision_rows - len(answered)
    assert 0 <= logged_unanswered <= len(cut)

    # Restart on the same log: it serves again and the chain grows on from where it was.
    restarted = servers(registry.data_dir, url)
    after = Load(
        restarted.url, "/v1/cargo/score", cargo_payloads, bearer(keys["officer"]), workers=2, per_worker=15
    )
    after.start().join()
    assert after.statuses() == {"200": 30}
    final = inspect_store(url)
    final.assert_whole()
    assert final.decision_rows == report.decision_rows + 30
    assert all(a.body["decision_id"] in final.versions for a in answered + after.ok())

    write_figures(
        f"crash_{backend}",
        {
            "command": f"pytest tests/reliability/test_crash.py -k {backend}",
            "requests": len(load.answers),
            "answered_200": len(answered),
            "cut_by_kill": len(cut),
            "logged_but_unanswered": logged_unanswered,
            "decisions_lost": len(lost),
            "half_written_records": report.decisions_without_ledger + report.ledger_decisions_without_index,
            "chain_ok_after_kill": report.chain_ok,
            "requests_after_restart": len(after.answers),
            "chain_ok_after_restart": final.chain_ok,
        },
    )
