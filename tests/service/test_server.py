"""The multi-worker launcher's socket handling (service/server.py); the workers themselves are run
by tests/reliability/test_workers.py."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from service.server import _bound_socket, _claim_port, listening_sockets, serve


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
