"""Model swap under load: a real server, concurrent keep-alive clients, ten reloads flipping the
``champion`` between two registered versions. No request fails; every response names the old or the
new version, and the decision log records, for each response, the version the response named."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.reliability.conftest import Load, bearer, inspect_store, make_store_keys
from tests.reliability.figures import write_figures

pytestmark = pytest.mark.reliability

RELOADS = 10


def test_model_swap_under_load(registry, servers, tmp_path, cargo_payloads):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    keys = make_store_keys(url)
    registry.set_champion("cargo", "1")
    server = servers(registry.data_dir, url)
    admin = httpx.Client(base_url=server.url, headers=bearer(keys["admin"]), timeout=60)

    load = Load(
        server.url, "/v1/cargo/score", cargo_payloads, bearer(keys["officer"]), workers=4, per_worker=120
    )
    started = time.monotonic()
    load.start()
    reloads: list[tuple[str, int, str]] = []
    try:
        for n in range(RELOADS):
            # Spread the reloads over the run: wait for some answers between two of them.
            load.wait_until(lambda n=n: load.count() >= (n + 1) * 30, timeout=20)
            target = "2" if n % 2 == 0 else "1"
            registry.set_champion("cargo", target)
            r = admin.post("/v1/models/cargo/reload")
            reloads.append((target, r.status_code, r.json().get("version", r.text[:200])))
    finally:
        load.join()
        admin.close()
    elapsed = time.monotonic() - started

    answers = load.answers
    failed = [a for a in answers if a.status != 200]
    assert not failed, f"{len(failed)} failed requests, first: {failed[0]}"
    assert [(t, s) for t, s, _ in reloads] == [("2" if n % 2 == 0 else "1", 200) for n in range(RELOADS)]
    assert [v for _, _, v in reloads] == [t for t, _, _ in reloads]
    served = [a.body["model"]["version"] for a in answers]
    assert set(served) == {"1", "2"}, set(served)

    report = inspect_store(url)
    report.assert_whole()
    lost = [a for a in answers if a.body["decision_id"] not in report.versions]
    mismatched = [
        a for a in answers if report.versions.get(a.body["decision_id"]) != a.body["model"]["version"]
    ]
    assert not lost and not mismatched, (len(lost), len(mismatched))
    assert report.decision_rows == len(answers)

    write_figures(
        "model_swap",
        {
            "command": "pytest tests/reliability/test_model_swap.py",
            "requests": len(answers),
            "failed": len(failed),
            "reloads": len(reloads),
            "served_by_version": {v: served.count(v) for v in sorted(set(served))},
            "decisions_lost": len(lost),
            "version_mismatches": len(mismatched),
            "seconds": round(elapsed, 1),
        },
    )
