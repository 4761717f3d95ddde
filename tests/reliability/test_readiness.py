"""Readiness: ``/readyz`` says 200 only when models are loaded and the decision log is reachable, so a
load balancer never sends traffic to a server that cannot score and log.

* An empty registry: alive (``/healthz`` 200) but not ready (503), scoring 503; register both models and
  reload them (admin): ready, scoring 200. No restart.
* The decision log unreachable at start-up (PostgreSQL behind a proxy that is not listening): not ready,
  scoring 503; when the database comes back the service becomes ready by itself.
* Shutdown. What "during shutdown" means with uvicorn: on SIGTERM it stops accepting connections at its
  next tick (≤ 0.1 s), lets the requests in flight finish (graceful), then runs the lifespan's shutdown
  and exits. The test sends SIGTERM while a slow request is still uploading and other clients poll
  ``/readyz`` — on new connections and on a keep-alive one — until the process is gone. After SIGTERM no
  poll gets 200: they get 503 (``state.stopping`` is set from the signal on) or a refused connection;
  the slow request completes with 200 and its decision is in the log.
"""

from __future__ import annotations

import json
import signal
import threading
import time

import httpx
import pytest

from tests.reliability.conftest import bearer, inspect_store, make_store_keys, register
from tests.reliability.figures import write_figures

pytestmark = pytest.mark.reliability


def test_not_ready_until_models_are_registered_and_reloaded(
    servers, tmp_path, cargo_trained, passenger_trained, cargo_payloads
):
    from borderrisk.settings import Settings
    from tests.conftest import TEST_SECRET

    data_dir = tmp_path / "empty-data"
    data_dir.mkdir()
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    keys = make_store_keys(url)
    server = servers(data_dir, url, start=False).start(wait="alive")
    officer, admin = bearer(keys["officer"]), bearer(keys["admin"])

    r = httpx.get(server.url + "/readyz")
    assert r.status_code == 503 and "error" in r.json()["models"]["cargo"], r.text
    r = httpx.post(server.url + "/v1/cargo/score", json=cargo_payloads[0], headers=officer)
    assert r.status_code == 503 and "no cargo model" in r.json()["detail"], r.text

    settings = Settings(data_dir=data_dir, env="test", session_secret=TEST_SECRET)
    register(settings, cargo_trained)
    r = httpx.post(server.url + "/v1/models/cargo/reload", headers=admin, timeout=60)
    assert r.status_code == 200, r.text
    assert httpx.get(server.url + "/readyz").status_code == 503  # passenger still missing
    register(settings, passenger_trained)
    r = httpx.post(server.url + "/v1/models/passenger/reload", headers=admin, timeout=60)
    assert r.status_code == 200, r.text
    r = httpx.get(server.url + "/readyz")
    assert r.status_code == 200 and r.json()["models"] == {"cargo": "1", "passenger": "1"}, r.text
    assert (
        httpx.post(server.url + "/v1/cargo/score", json=cargo_payloads[0], headers=officer).status_code == 200
    )


@pytest.mark.postgres
def test_store_unreachable_at_start_then_back(registry, servers, tcp_proxy, pg_url, cargo_payloads):
    from sqlalchemy.engine import make_url

    from tests.reliability.conftest import with_port

    keys = make_store_keys(pg_url)
    registry.set_champion("cargo", "1")
    proxy = tcp_proxy(make_url(pg_url).port or 5432)  # not listening yet: connection refused
    server = servers(registry.data_dir, with_port(pg_url, proxy.port), start=False).start(wait="alive")
    r = httpx.get(server.url + "/readyz")
    assert r.status_code == 503 and "decision_log" in r.json()["models"], r.text
    r = httpx.post(server.url + "/v1/cargo/score", json=cargo_payloads[0], headers=bearer(keys["officer"]))
    assert r.status_code == 503, r.text

    proxy.up()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and httpx.get(server.url + "/readyz").status_code != 200:
        time.sleep(0.2)
    r = httpx.get(server.url + "/readyz")
    assert r.status_code == 200, f"not ready 30 s after the database came back: {r.text}"
    r = httpx.post(server.url + "/v1/cargo/score", json=cargo_payloads[0], headers=bearer(keys["officer"]))
    assert r.status_code == 200, r.text
    assert r.json()["decision_id"] in inspect_store(pg_url).versions


def test_no_ready_answer_after_sigterm(registry, servers, tmp_path, cargo_payloads):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    keys = make_store_keys(url)
    registry.set_champion("cargo", "1")
    server = servers(registry.data_dir, url)
    polls: list[tuple[str, float, float, int | str]] = []  # kind, sent, answered, status or error
    stop = threading.Event()

    def poll(kind: str) -> None:
        client = httpx.Client(base_url=server.url, timeout=5) if kind == "keep-alive" else None
        try:
            for _ in range(5000):  # bounded: ~25 s at most
                if stop.is_set():
                    return
                sent = time.monotonic()
                try:
                    r = client.get("/readyz") if client else httpx.get(server.url + "/readyz", timeout=5)
                    polls.append((kind, sent, time.monotonic(), r.status_code))
                except httpx.HTTPError as exc:
                    polls.append((kind, sent, time.monotonic(), type(exc).__name__))
                time.sleep(0.005)
        finally:
            if client:
                client.close()

    body = json.dumps({"declarations": cargo_payloads[:5]}).encode()
    slow: dict = {}

    def slow_upload() -> None:
        def chunks():
            step = len(body) // 10 + 1
            for i in range(0, len(body), step):
                yield body[i : i + step]
                time.sleep(0.25)

        sent = time.monotonic()
        try:
            r = httpx.post(
                server.url + "/v1/cargo/score/batch",
                content=chunks(),
                headers={**bearer(keys["officer"]), "content-type": "application/json"},
                timeout=30,
            )
            slow.update(sent=sent, status=r.status_code, body=r.json())
        except httpx.HTTPError as exc:
            slow.update(sent=sent, status=type(exc).__name__)

    threads = [
        threading.Thread(target=f, args=a)
        for f, a in ((poll, ("new",)), (poll, ("keep-alive",)), (slow_upload, ()))
    ]
    for t in threads:
        t.start()
    time.sleep(0.8)  # the slow upload is under way, both pollers see 200
    sigterm_at = time.monotonic()
    server.signal(signal.SIGTERM)
    exit_code = server.wait_exit(30)
    exited_at = time.monotonic()
    stop.set()
    for t in threads:
        t.join(35)

    assert exit_code is not None, "the server did not exit within 30 s of SIGTERM"
    before = [p for p in polls if p[2] < sigterm_at]
    after = [p for p in polls if p[1] > sigterm_at]
    assert before and all(p[3] == 200 for p in before[-4:])
    assert after, "no poll after SIGTERM"
    ready_after = [p for p in after if p[3] == 200]
    assert not ready_after, f"/readyz said 200 after SIGTERM: {ready_after[:3]}"
    # Every other poll got 503 or no HTTP answer at all (connection refused or closed).
    assert all(p[3] == 503 or isinstance(p[3], str) for p in after), {p[3] for p in after}
    assert slow.get("status") == 200, slow
    assert slow["sent"] < sigterm_at
    logged = inspect_store(url)
    logged.assert_whole()
    assert all(d["decision_id"] in logged.versions for d in slow["body"]["decisions"])

    write_figures(
        "shutdown",
        {
            "command": "pytest tests/reliability/test_readiness.py -k sigterm",
            "polls_after_sigterm": len(after),
            "ready_200_after_sigterm": len(ready_after),
            "answers_after_sigterm": {
                str(k): sum(1 for p in after if p[3] == k) for k in {p[3] for p in after}
            },
            "in_flight_request_completed": slow.get("status") == 200,
            "seconds_to_exit": round(exited_at - sigterm_at, 2),
        },
    )
