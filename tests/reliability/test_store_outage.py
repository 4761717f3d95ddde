"""The decision log fails mid-run: scoring answers 503 while it is down, nothing is returned unlogged,
and the service recovers by itself — no restart — when the store is back.

* PostgreSQL: the service reaches the (shared) server through a TCP proxy run by the test; the proxy
  is stopped — listener closed, every forwarded connection reset — and started again.
* SQLite: the disk "fills up" under the running server. The test lowers the server process's file-size
  limit (``RLIMIT_FSIZE`` through ``prlimit`` on the live process) to 4 KiB: from then on every write
  past the first 4 KiB of any file — the WAL, the database — fails with ``EFBIG`` (CPython ignores
  ``SIGXFSZ``), which SQLite reports as ``SQLITE_FULL``/``SQLITE_IOERR``, just as with a full disk or
  an exhausted quota. Reads keep working, as they would on a full disk. Raising the limit again is the
  disk getting space back. (``chmod`` would not do: the tests run as root.)
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable

import httpx
import pytest

from tests.reliability.conftest import Load, bearer, inspect_store, make_store_keys, with_port
from tests.reliability.figures import write_figures

pytestmark = pytest.mark.reliability

OUTAGE_S = 3.0
RECOVERY_TIMEOUT_S = 30.0


def _outage_run(server, url: str, keys, payloads, fail: Callable[[], None], heal: Callable[[], None]) -> dict:
    load = Load(
        server.url,
        "/v1/cargo/score",
        payloads,
        bearer(keys["officer"]),
        workers=3,
        per_worker=600,
        deadline=90,
        pause=0.01,
    )
    ready_during: list[int] = []
    load.start()
    try:
        assert load.wait_until(lambda: len(load.ok()) >= 40, timeout=60), load.statuses()
        t_down = time.monotonic()
        fail()
        end = t_down + OUTAGE_S
        while time.monotonic() < end:
            ready_during.append(httpx.get(server.url + "/readyz", timeout=10).status_code)
            time.sleep(0.2)
        down_answers = [a for a in load.answers if a.sent_at > t_down + 0.5]
        t_up = time.monotonic()
        heal()
        recovered = load.wait_until(
            lambda: sum(1 for a in load.ok() if a.sent_at > t_up) >= 30, timeout=RECOVERY_TIMEOUT_S
        )
    finally:
        load.stop.set()
        load.join()
    assert recovered, f"no recovery within {RECOVERY_TIMEOUT_S}s: {load.statuses()}; log:\n{server.tail()}"
    ready_after = httpx.get(server.url + "/readyz", timeout=10).status_code

    statuses = load.statuses()
    assert set(statuses) <= {"200", "503"}, f"{statuses}; log:\n{server.tail()}"
    unavailable = [a for a in load.answers if a.status == 503]
    assert unavailable and any(a.status == 503 for a in down_answers), statuses
    for a in unavailable:
        assert a.body and "score" not in a.body and "decision_id" not in a.body, a.body
    first_ok_after = min(a.done_at for a in load.ok() if a.sent_at > t_up)

    report = inspect_store(url)
    report.assert_whole()
    unlogged = [a for a in load.ok() if a.body["decision_id"] not in report.versions]
    assert not unlogged, f"{len(unlogged)} scores were returned without being logged"
    assert ready_after == 200
    return {
        "requests": len(load.answers),
        "answered_200": len(load.ok()),
        "answered_503": len(unavailable),
        "other_failures": len(load.answers) - len(load.ok()) - len(unavailable),
        "returned_unlogged": len(unlogged),
        "outage_seconds": OUTAGE_S,
        "recovered_after_seconds": round(first_ok_after - t_up, 2),
        "readyz_during_outage": sorted(set(ready_during)),
        "readyz_after": ready_after,
        "chain_ok": report.chain_ok,
    }


@pytest.mark.postgres
def test_postgres_unreachable_mid_run(registry, servers, tcp_proxy, pg_url, cargo_payloads):
    from sqlalchemy.engine import make_url

    proxy = tcp_proxy(make_url(pg_url).port or 5432).up()
    keys = make_store_keys(pg_url)
    registry.set_champion("cargo", "1")
    server = servers(registry.data_dir, with_port(pg_url, proxy.port))
    figures = _outage_run(server, pg_url, keys, cargo_payloads, proxy.down, proxy.up)
    # A load balancer polling /readyz takes the server out while PostgreSQL is unreachable.
    assert set(figures["readyz_during_outage"]) == {503}
    write_figures(
        "store_outage_postgres",
        {"command": "pytest tests/reliability/test_store_outage.py -k postgres", **figures},
    )


def test_sqlite_disk_full_mid_run(registry, servers, tmp_path, cargo_payloads):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    keys = make_store_keys(url)
    registry.set_champion("cargo", "1")
    server = servers(registry.data_dir, url)
    _, hard = resource.prlimit(server.pid, resource.RLIMIT_FSIZE)

    def fill_disk() -> None:
        resource.prlimit(server.pid, resource.RLIMIT_FSIZE, (4096, hard))

    def free_disk() -> None:
        resource.prlimit(server.pid, resource.RLIMIT_FSIZE, (hard, hard))

    try:
        figures = _outage_run(server, url, keys, cargo_payloads, fill_disk, free_disk)
    finally:
        free_disk()
    write_figures(
        "store_outage_sqlite",
        {"command": "pytest tests/reliability/test_store_outage.py -k sqlite", **figures},
    )
