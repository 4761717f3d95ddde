"""Fixtures of the server-level reliability tests: real uvicorn processes, load, faults.

* :class:`Server` runs ``borderrisk serve`` (the production entry point) in its own process group on a
  free loopback port, with its output drained to a log file, and always kills the group on teardown.
* :class:`Load` runs a bounded number of requests (count *and* time) from a few threads, each with
  its own keep-alive ``httpx.Client``, and records every answer.
* :class:`TcpProxy` is a small asyncio TCP forwarder on 127.0.0.1 that the tests stop and restart to
  make PostgreSQL unreachable without touching the shared server.
* :func:`inspect_store` reads a decision log directly: record counts, half-written records, the chain.

Everything talks to 127.0.0.1 only, every loop is bounded, and every process started here is stopped
by the fixture that started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from sqlalchemy import func, select

from tests.conftest import ROLES, TEST_SECRET, record_of

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 120.0  # seconds for a server to import, migrate, load its models and answer


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_command() -> list[str]:
    """``borderrisk serve`` from the venv the tests run in."""
    script = Path(sys.executable).with_name("borderrisk")
    if script.exists():
        return [str(script), "serve"]
    return [sys.executable, "-c", "from borderrisk.cli import app; app()", "serve"]


# ----------------------------------------------------------------------------- the server


class Server:
    """One ``borderrisk serve`` process (own process group) on a free port."""

    def __init__(
        self, data_dir: Path, database_url: str, log_path: Path, args: tuple[str, ...] = (), **env: str
    ) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.log_path = log_path
        self.args = args  # more ``borderrisk serve`` options (``--workers 2``)
        self.extra_env = env
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._drain: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, wait: str | None = "ready", timeout: float = START_TIMEOUT) -> Server:
        env = {
            **os.environ,
            "BORDERRISK_DATA_DIR": str(self.data_dir),
            "BORDERRISK_DATABASE_URL": self.database_url,
            "BORDERRISK_ENV": "test",
            "BORDERRISK_SESSION_SECRET": TEST_SECRET,
            "BORDERRISK_HOST": "127.0.0.1",
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        # Output goes through a pipe drained by a thread of the test process (so a limit set on the
        # server's own file writes, see the SQLite store-failure test, does not hit its log).
        self.proc = subprocess.Popen(
            [*serve_command(), "--port", str(self.port), *self.args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill -9 reaches every worker
        )
        self._drain = threading.Thread(target=self._drain_output, args=(self.proc,), daemon=True)
        self._drain.start()
        if wait:
            self.wait_for(wait, timeout)
        return self

    def _drain_output(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        with self.log_path.open("ab") as log:
            for line in iter(proc.stdout.readline, b""):
                log.write(line)
                log.flush()

    def wait_for(self, what: str = "ready", timeout: float = START_TIMEOUT) -> None:
        """Until ``/healthz`` (``alive``) or ``/readyz`` (``ready``) answers 200."""
        path = "/readyz" if what == "ready" else "/healthz"
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}; log:\n{self.tail()}")
            try:
                r = httpx.get(self.url + path, timeout=2.0)
                if r.status_code == 200:
                    return
                last = f"{r.status_code} {r.text[:200]}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.1)
        raise AssertionError(f"server not {what} after {timeout}s ({last}); log:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def kill9(self) -> None:
        """``kill -9`` of the whole process group, and wait for it to be gone."""
        self.signal(signal.SIGKILL)
        self.wait_exit(10)

    def wait_exit(self, timeout: float) -> int | None:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s; always leaves no process behind."""
        if self.proc is None or self.proc.poll() is not None:
            self._join()
            return
        self.signal(signal.SIGTERM)
        if self.wait_exit(15) is None:
            self.kill9()
        self._join()

    def _join(self) -> None:
        if self._drain is not None:
            self._drain.join(5)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Make servers; every one is stopped (process group killed if need be) at teardown."""
    made: list[Server] = []

    def make(
        data_dir: Path, database_url: str, start: bool = True, args: tuple[str, ...] = (), **env: str
    ) -> Server:
        server = Server(data_dir, database_url, tmp_path / f"server-{len(made)}.log", args, **env)
        made.append(server)
        if start:
            server.start()
        return server

    yield make
    for server in made:
        server.stop()


# ----------------------------------------------------------------------------- registry and keys


@dataclass
class Registry:
    data_dir: Path
    settings: Any

    def client(self):
        from training.registry import client

        return client(self.settings)

    def set_champion(self, domain: str, version: str) -> None:
        from borderrisk.settings import MODEL_NAMES

        self.client().set_registered_model_alias(MODEL_NAMES[domain], "champion", version)


def register(settings, trained) -> str:
    """Register a trained bundle in ``settings``' registry; returns the new version."""
    from training.registry import log_and_register

    bundle = trained.result.bundle
    builder = bundle.builder()
    head = trained.history.head(3)
    example = pd.DataFrame(
        builder.transform({c: head[c] for c in head.columns}), columns=builder.feature_names
    )
    return log_and_register(settings, bundle, example, {}, {}).version


@pytest.fixture(scope="session")
def registry(tmp_path_factory, cargo_trained, passenger_trained) -> Registry:
    """A registry of its own: cargo v1 (champion) and v2, passenger v1."""
    from borderrisk.settings import Settings

    data_dir = tmp_path_factory.mktemp("reliability-data")
    settings = Settings(data_dir=data_dir, env="test", session_secret=TEST_SECRET)
    assert register(settings, cargo_trained) == "1"
    assert register(settings, passenger_trained) == "1"
    assert register(settings, cargo_trained) == "2"
    return Registry(data_dir, settings)


def make_store_keys(database_url: str, prefix: str = "rel") -> dict[str, str]:
    """Migrate the decision log at ``database_url`` and create one key per role in it."""
    from service.store import KeyStore, make_engine, migrate

    engine = make_engine(database_url)
    try:
        migrate(engine)
        keys = KeyStore(engine)
        return {role: keys.create(f"{prefix}-{role}", role) for role in ROLES}
    finally:
        engine.dispose()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="session")
def cargo_payloads(cargo_trained) -> list[dict[str, Any]]:
    return [record_of(cargo_trained.later.iloc[i]) for i in range(60)]


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A private PostgreSQL schema (skipped with the reason if PostgreSQL is unreachable)."""
    from tests.postgres import private_schema_url

    with private_schema_url() as url:
        yield url


# ----------------------------------------------------------------------------- load


@dataclass
class Answer:
    worker: int
    sent_at: float
    done_at: float
    status: int | None  # None: no HTTP answer (connection refused, reset, timeout)
    error: str | None = None
    body: dict[str, Any] | None = None


@dataclass
class Load:
    """``workers`` threads, each with a keep-alive client, sending at most ``per_worker`` requests and
    stopping at ``deadline`` seconds or when ``stop`` is set."""

    url: str
    path: str
    payloads: list[dict[str, Any]]
    headers: dict[str, str]
    workers: int = 4
    per_worker: int = 100
    deadline: float = 90.0
    pause: float = 0.0
    timeout: float = 30.0
    stop_on_error: bool = False
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _run(self, worker: int) -> None:
        end = time.monotonic() + self.deadline
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=self.timeout) as client:
            for i in range(self.per_worker):
                if self.stop.is_set() or time.monotonic() > end:
                    return
                payload = self.payloads[(worker * 7919 + i) % len(self.payloads)]
                sent = time.monotonic()
                try:
                    r = client.post(self.path, json=payload)
                    body = (
                        r.json() if r.headers.get("content-type", "").startswith("application/json") else None
                    )
                    answer = Answer(worker, sent, time.monotonic(), r.status_code, None, body)
                except httpx.HTTPError as exc:
                    answer = Answer(worker, sent, time.monotonic(), None, f"{type(exc).__name__}: {exc}")
                with self._lock:
                    self.answers.append(answer)
                if answer.status is None and self.stop_on_error:
                    return
                if self.pause:
                    time.sleep(self.pause)

    def start(self) -> Load:
        self._threads = [
            threading.Thread(target=self._run, args=(w,), daemon=True) for w in range(self.workers)
        ]
        for t in self._threads:
            t.start()
        return self

    def join(self, timeout: float | None = None) -> None:
        end = time.monotonic() + (timeout if timeout is not None else self.deadline + self.timeout + 5)
        for t in self._threads:
            t.join(max(0.0, end - time.monotonic()))
        assert not any(t.is_alive() for t in self._threads), "load threads did not stop in time"

    def ok(self) -> list[Answer]:
        return [a for a in self.answers if a.status == 200]

    def statuses(self) -> dict[str, int]:
        return dict(Counter(str(a.status) for a in self.answers))

    def count(self) -> int:
        with self._lock:
            return len(self.answers)

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()


# ----------------------------------------------------------------------------- the store, read directly


@dataclass
class StoreReport:
    ledger_rows: int
    decision_ledger_rows: int
    decision_rows: int
    decisions_without_ledger: int
    ledger_decisions_without_index: int
    chain_ok: bool
    chain_reason: str | None
    versions: dict[str, str]  # decision_id -> model_version

    def assert_whole(self) -> None:
        """No half-written record, and the chain verifies."""
        assert self.decisions_without_ledger == 0, self
        assert self.ledger_decisions_without_index == 0, self
        assert self.decision_ledger_rows == self.decision_rows, self
        assert self.chain_ok, self.chain_reason


def inspect_store(database_url: str) -> StoreReport:
    from service.store import make_engine, tables, verify_chain

    engine = make_engine(database_url)
    try:
        lg, dec = tables.ledger, tables.decisions
        with engine.connect() as conn:
            ledger_rows = conn.execute(select(func.count()).select_from(lg)).scalar_one()
            decision_ledger = conn.execute(
                select(func.count()).select_from(lg).where(lg.c.record_type == "decision")
            ).scalar_one()
            decision_rows = conn.execute(select(func.count()).select_from(dec)).scalar_one()
            orphans = conn.execute(
                select(func.count())
                .select_from(dec.outerjoin(lg, lg.c.seq == dec.c.ledger_seq))
                .where(lg.c.seq.is_(None))
            ).scalar_one()
            unindexed = conn.execute(
                select(func.count())
                .select_from(lg.outerjoin(dec, dec.c.ledger_seq == lg.c.seq))
                .where(lg.c.record_type == "decision", dec.c.decision_id.is_(None))
            ).scalar_one()
            versions = dict(conn.execute(select(dec.c.decision_id, dec.c.model_version)).all())
        result = verify_chain(engine)
        return StoreReport(
            ledger_rows,
            decision_ledger,
            decision_rows,
            orphans,
            unindexed,
            result.ok,
            result.reason,
            {str(k): str(v) for k, v in versions.items()},
        )
    finally:
        engine.dispose()


# ----------------------------------------------------------------------------- a TCP proxy


class TcpProxy:
    """An asyncio TCP forwarder ``127.0.0.1:port → 127.0.0.1:target`` in a thread of its own.

    ``down()`` closes the listening socket *and* every forwarded connection (both ends), as a
    database host that went away would look to the service; ``up()`` listens again on the same port.
    """

    def __init__(self, target_port: int, port: int | None = None) -> None:
        self.target_port = target_port
        self.port = port or free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.base_events.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.connections = 0
        self.thread.start()

    def _call(self, coro, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_w.close()
            return
        self.connections += 1
        self.writers |= {client_w, server_w}
        try:
            await asyncio.gather(self._pipe(client_r, server_w), self._pipe(server_r, client_w))
        finally:
            self.writers -= {client_w, server_w}

    async def _up(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def _down(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for w in list(self.writers):
            with contextlib.suppress(Exception):
                w.transport.abort()  # RST both ways: the service's pooled connections die now
        self.writers.clear()

    def up(self) -> TcpProxy:
        self._call(self._up())
        return self

    def down(self) -> None:
        self._call(self._down())

    async def _cancel_all(self) -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._call(self._down())
            self._call(self._cancel_all())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def tcp_proxy() -> Iterator[Callable[..., TcpProxy]]:
    made: list[TcpProxy] = []

    def make(target_port: int) -> TcpProxy:
        proxy = TcpProxy(target_port)
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.close()


def with_port(url: str, port: int) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(port=port).render_as_string(hide_password=False)
