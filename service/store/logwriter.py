"""The decision-log writer: with several workers, one process commits the decisions of all of them.

Why a process of its own
------------------------
Appends to the chain are serialised: one head, one lock, one writer at a time. Inside a worker, the
thread holding that lock needs the GIL back after every statement (``BEGIN``, the head, the
inserts, ``COMMIT`` each release it while SQLite works), and it competes for it with the worker's
other threads, which are busy computing features and explanations. CPython hands the GIL to a
waiting thread only at the end of a 5 ms switch interval, so a transaction whose own work takes
about 0.3 ms held the lock for 5–7 ms (measured on a 2-core Xeon), and the other worker, waiting on
the lock, sat idle: two workers kept the two cores about 75 % busy. A process that does nothing but write has
nobody to compete with: it holds the lock only as long as the database works.

So ``borderrisk serve --workers N`` (N ≥ 2) starts this writer beside the workers
(:mod:`service.server`). A worker still validates and canonicalises each decision itself, before
any lock (:meth:`AuditStore._prepare_decision`); it sends the prepared records and waits for the
answer. The writer chains and commits them with the store's own code
(:meth:`AuditStore._commit_decision_groups`): everything that arrived while it was writing the last
transaction goes into the next one (group commit across workers), and each request is answered only
once the transaction holding its decisions has committed. A worker returns a score only after that
answer; if the writer cannot be reached, the answer is 503, as for any other outage of the log.

Wire format: a Unix stream socket in a private directory; each worker thread keeps one connection
and has one request outstanding on it at a time::

    frame   = length (4 bytes, big-endian) body
    request = header, "\\n", then the decisions' public JSON and personal JSON bytes back to back
    header  = JSON array with one array per decision:
              [decision_id, created_at (ISO 8601), personal_digest, len(public), len(personal) or -1,
               domain, officer, model_name, model_version, model_sha256, score, channel, selection]
    reply   = JSON {"hashes": [...]} or {"error": "duplicate" | "unavailable", "message": "..."}

An empty request is a ping, answered ``{"ok": true}``.
"""

from __future__ import annotations

import contextlib
import os
import select
import selectors
import signal
import socket
import struct
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
import structlog

__all__ = ["PROTOCOL_TIMEOUT_S", "RemoteDecisionLog", "run_writer"]

log = structlog.get_logger(__name__)

_LENGTH = struct.Struct(">I")
#: Seconds a worker waits for the writer's answer before it reports the log unavailable (longer than
#: the store's own busy timeout, so an answer that can still come is not given up on first).
PROTOCOL_TIMEOUT_S = 60.0
_PING = b""
_PONG = orjson.dumps({"ok": True})

Call = list[tuple[Any, dict[str, Any]]]  # one append_decisions call: (_Pending, index row) per decision


# ----------------------------------------------------------------------------- framing


def _frame(body: bytes) -> bytes:
    return _LENGTH.pack(len(body)) + body


def encode_call(call: Call) -> bytes:
    """One ``append_decisions`` call's prepared decisions as a request frame."""
    header = []
    blobs = []
    for pending, index in call:
        personal = pending.personal_json
        header.append(
            [
                pending.record_id,
                pending.created_at.isoformat(),
                pending.personal_digest,
                len(pending.public_json),
                -1 if personal is None else len(personal),
                index["domain"],
                index["officer"],
                index["model_name"],
                index["model_version"],
                index["model_sha256"],
                index["score"],
                index["channel"],
                index["selection"],
            ]
        )
        blobs.append(pending.public_json)
        if personal is not None:
            blobs.append(personal)
    return _frame(b"".join((orjson.dumps(header), b"\n", *blobs)))


def decode_call(body: bytes) -> Call:
    """The inverse of :func:`encode_call` (on the writer's side)."""
    from service.store.decisions import _Pending

    end = body.index(b"\n")
    offset = end + 1
    call: Call = []
    times: dict[str, datetime] = {}  # the decisions of one batch share their time: parsed once
    for item in orjson.loads(body[:end]):
        rid, created, digest, n_public, n_personal, *index_fields = item
        domain, officer, name, version, sha, score, channel, sel = index_fields
        public = body[offset : offset + n_public]
        offset += n_public
        personal = None
        if n_personal >= 0:
            personal = body[offset : offset + n_personal]
            offset += n_personal
        ts = times.get(created) or times.setdefault(created, datetime.fromisoformat(created))
        index = {
            "decision_id": rid,
            "created_at": ts,
            "domain": domain,
            "officer": officer,
            "model_name": name,
            "model_version": version,
            "model_sha256": sha,
            "score": score,
            "channel": channel,
            "selection": sel,
        }
        call.append((_Pending("decision", rid, ts, public, personal, digest), index))
    if offset != len(body):
        raise ValueError("request frame longer than its header says")
    return call


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("the decision-log writer closed the connection")
        buf += chunk
    return bytes(buf)


def _read_frame(sock: socket.socket) -> bytes:
    (n,) = _LENGTH.unpack(_read_exactly(sock, _LENGTH.size))
    return _read_exactly(sock, n)


# ----------------------------------------------------------------------------- the worker's side


class RemoteDecisionLog:
    """What a worker's :class:`~service.store.AuditStore` commits decisions through when a writer
    process runs: :meth:`submit` has the contract of :meth:`GroupCommit.submit
    <service.store.group_commit.GroupCommit.submit>` — it returns the call's hashes once they are
    committed, or raises the error meant for this call.

    Each thread has its own connection (a worker's log threads, :mod:`service.decision_queue`, and
    the thread pool its batch requests run in, both bounded), so a call never waits on another's
    answer.
    """

    def __init__(self, path: str, timeout_s: float = PROTOCOL_TIMEOUT_S) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self._local = threading.local()

    def _connection(self) -> socket.socket:
        sock: socket.socket | None = getattr(self._local, "sock", None)
        if sock is not None and _closed_by_peer(sock):
            self._drop()  # the writer was restarted since this thread's last request
            sock = None
        if sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout_s)
            try:
                sock.connect(self.path)
            except OSError:
                sock.close()
                raise
            self._local.sock = sock
        return sock

    def _drop(self) -> None:
        sock = getattr(self._local, "sock", None)
        self._local.sock = None
        if sock is not None:
            sock.close()

    def _request(self, frame: bytes) -> dict[str, Any]:
        from service.store.db import StoreUnavailable

        try:
            sock = self._connection()
            sock.sendall(frame)
            return orjson.loads(_read_frame(sock))
        except (OSError, ConnectionError, orjson.JSONDecodeError) as err:
            self._drop()
            raise StoreUnavailable(
                f"audit store unavailable during append_decisions: the decision-log writer "
                f"({self.path}) did not answer: {err}"
            ) from err

    def submit(self, work: Call, size: int = 1) -> list[str]:
        from service.store.db import StoreUnavailable
        from service.store.decisions import DuplicateDecision

        reply = self._request(encode_call(work))
        if "hashes" in reply:
            return list(reply["hashes"])
        if reply.get("error") == "duplicate":
            raise DuplicateDecision(reply.get("message", "duplicate decision"))
        raise StoreUnavailable(reply.get("message", "the decision-log writer failed"))

    def ping(self) -> bool:
        """True if the writer answers (readiness)."""
        try:
            return self._request(_frame(_PING)).get("ok") is True
        except Exception:
            return False


def _closed_by_peer(sock: socket.socket) -> bool:
    """Whether an idle connection has something to read — which can only be the writer's end of it
    (EOF: the writer was restarted) — checked without waiting (``recv`` would wait for the socket's
    timeout first)."""
    return bool(select.select([sock], [], [], 0)[0])


# ----------------------------------------------------------------------------- the writer process


class _Connection:
    __slots__ = ("buffer", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def frames(self) -> list[bytes]:
        """Complete frames received so far (removed from the buffer)."""
        out = []
        buf = self.buffer
        while len(buf) >= _LENGTH.size:
            (n,) = _LENGTH.unpack_from(buf)
            if len(buf) < _LENGTH.size + n:
                break
            out.append(bytes(buf[_LENGTH.size : _LENGTH.size + n]))
            del buf[: _LENGTH.size + n]
        return out


class _Writer:
    """The writer's loop: read every request that has arrived, commit them together, answer each."""

    def __init__(self, store: Any, listener: socket.socket) -> None:
        from service.store.decisions import GROUP_MAX_DECISIONS

        self.store = store
        self.listener = listener
        self.max_group = GROUP_MAX_DECISIONS
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ, None)
        self.stop = threading.Event()

    def _accept(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while True:
                sock, _ = self.listener.accept()
                sock.setblocking(False)
                self.selector.register(sock, selectors.EVENT_READ, _Connection(sock))

    def _close(self, conn: _Connection) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(conn.sock)
        conn.sock.close()

    def _receive(self, conn: _Connection) -> list[bytes]:
        try:
            data = conn.sock.recv(1 << 20)
        except BlockingIOError:
            return []
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            return []
        conn.buffer += data
        return conn.frames()

    def _answer(self, conn: _Connection, body: bytes) -> None:
        try:
            conn.sock.setblocking(True)
            conn.sock.settimeout(5.0)  # a worker reads its answer at once; never stall the others
            conn.sock.sendall(_frame(body))
            conn.sock.setblocking(False)
        except OSError:
            self._close(conn)

    def _commit(self, requests: list[tuple[_Connection, Call]]) -> None:
        from service.store.decisions import DuplicateDecision

        calls = [call for _, call in requests]
        try:
            outcomes: Sequence[list[str] | BaseException] = self.store._commit_decision_groups(calls)
        except Exception as exc:  # a bug, not an outage: every caller of the group gets 503
            log.error("log_writer_commit_failed", error=repr(exc))
            outcomes = [exc] * len(calls)
        for (conn, _), outcome in zip(requests, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                kind = "duplicate" if isinstance(outcome, DuplicateDecision) else "unavailable"
                body = orjson.dumps({"error": kind, "message": str(outcome)})
            else:
                body = orjson.dumps({"hashes": outcome})
            self._answer(conn, body)

    def serve(self) -> None:
        while not self.stop.is_set():
            requests: list[tuple[_Connection, Call]] = []
            for key, _ in self.selector.select(timeout=0.5):
                conn = key.data
                if conn is None:
                    self._accept()
                    continue
                for body in self._receive(conn):
                    if body == _PING:
                        self._answer(conn, _PONG)
                        continue
                    try:
                        requests.append((conn, decode_call(body)))
                    except (ValueError, TypeError, KeyError) as exc:
                        log.error("log_writer_bad_request", error=repr(exc))
                        self._close(conn)
            # Everything that arrived while the last transaction was written goes into this one
            # (in groups of at most max_group decisions).
            group: list[tuple[_Connection, Call]] = []
            size = 0
            for conn, call in requests:
                if group and size + len(call) > self.max_group:
                    self._commit(group)
                    group, size = [], 0
                group.append((conn, call))
                size += len(call)
            if group:
                self._commit(group)


def listen(path: str) -> socket.socket:
    """The writer's listening socket at ``path`` (a stale one from a writer that died is replaced)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    os.chmod(path, 0o600)
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def run_writer(database_url: str, path: str) -> None:
    """The writer process: open (and migrate) the decision log, then serve until SIGTERM.

    SIGINT is ignored: a Ctrl-C reaches every process of the terminal at once, and the workers,
    finishing their requests, still need the writer; the supervisor stops it last, with SIGTERM.
    """
    from borderrisk.logging import configure_logging
    from service.store import AuditStore, make_engine, migrate

    configure_logging()
    engine = make_engine(database_url)
    try:
        migrate(engine)
    except Exception as exc:  # the workers report it too; each commit will answer "unavailable"
        log.error("log_writer_store_unavailable", error=str(exc))
    writer = _Writer(AuditStore(engine), listen(path))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: writer.stop.set())
    log.info("log_writer_started", pid=os.getpid(), socket=path)
    try:
        writer.serve()
    finally:
        engine.dispose()
        with contextlib.suppress(OSError):
            os.unlink(path)
        log.info("log_writer_stopped", pid=os.getpid())


if __name__ == "__main__":  # how the supervisor starts it: python -m service.store.logwriter URL SOCKET PID
    import sys

    from service.orphans import end_with_parent

    if len(sys.argv) > 3 and not end_with_parent(int(sys.argv[3])):
        sys.exit(0)  # the supervisor (PID) is gone already: nobody would stop this writer
    run_writer(sys.argv[1], sys.argv[2])
