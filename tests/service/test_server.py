"""The multi-worker launcher's socket handling (service/server.py); the workers themselves are run
by tests/reliability/test_workers.py."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys

import pytest

from service.server import _bound_socket, _claim_port, _Supervisor, listening_sockets, serve


def test_claim_port_refuses_a_port_something_listens_on():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit, match=f"cannot serve on 127.0.0.1:{port}"):
            _claim_port("127.0.0.1", port)


def test_claim_port_resolves_port_zero_to_a_free_port():
    port = _claim_port("127.0.0.1", 0)
    assert port > 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # nobody holds it


def test_workers_sockets_share_a_port_and_count_only_once_listening():
    port = _claim_port("127.0.0.1", 0)
    first = _bound_socket("127.0.0.1", port, reuse_port=True)
    second = _bound_socket("127.0.0.1", port, reuse_port=True)
    try:
        assert listening_sockets(port) == 0  # bound, not listening: no connection goes there yet
        first.listen()
        assert listening_sockets(port) == 1
        second.listen()
        assert listening_sockets(port) == 2
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        first.close()
        second.close()
    assert listening_sockets(port) == 0


def test_serve_needs_a_worker():
    with pytest.raises(ValueError, match="at least 1"):
        serve("service.main:app", host="127.0.0.1", port=0, workers=0)


def test_supervisor_stops_when_the_app_cannot_start():
    """Workers that cannot start would fail the same way again: the supervisor exits 1 instead of
    replacing them for ever."""
    code = (
        "from service.server import serve; serve('no_such_module:app', host='127.0.0.1', port=0, workers=2)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "worker_failed_to_start" in done.stdout + done.stderr


def test_the_supervisor_migrates_the_decision_log_before_it_starts_the_writer(tmp_path, monkeypatch):
    """A migration that rebuilds a large table may take longer than the writer is given to start:
    the supervisor applies it first, then starts the writer on a log already at head."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine

    from service.store.db import alembic_config

    monkeypatch.setenv("BORDERRISK_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("BORDERRISK_DATABASE_URL", raising=False)
    sup = _Supervisor("m:app", "127.0.0.1", 0, 2, {}, log_writer=True, cpus=[None, None])
    try:
        assert sup.database_url == f"sqlite:///{tmp_path / 'audit.db'}"
        started = []
        monkeypatch.setattr(sup, "_start_writer", lambda: started.append("writer") or _DeadWriter())
        monkeypatch.setattr(sup, "_writer_listening", lambda _process: False)  # end run() there
        assert sup.run() == 1
        assert started == ["writer"]
        engine = create_engine(sup.database_url)
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        assert current == ScriptDirectory.from_config(alembic_config()).get_current_head()
        engine.dispose()
    finally:
        shutil.rmtree(sup.writer_dir, ignore_errors=True)


class _DeadWriter:
    pid = 0
    returncode = 1

    def poll(self) -> int:
        return 1

    def terminate(self) -> None:
        pass

    def wait(self, _timeout: float | None = None) -> int:
        return 1
