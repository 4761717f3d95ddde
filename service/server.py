"""Serving an ASGI app with several worker processes, each listening on a socket of its own.

uvicorn's ``--workers N`` binds one socket in the parent and shares it: every worker waits on the
same accept queue, and whichever wakes first takes *all* the connections pending (an event loop
accepts in a loop until the queue is empty). Clients that open their keep-alive connections
together — a gateway's pool, a load generator, the terminals of a shift coming on duty — then land
mostly on one worker: 16 connections were split 16:0, 15:1 or 12:4 between two workers (measured with
``ss``), so one core did the work of two and throughput swung by 2× from one run to the next.

Here each worker binds its own socket to the same address with ``SO_REUSEPORT``, and the kernel
spreads new connections over the listening sockets by a hash of their addresses. A worker's socket
starts listening only once its app has started (uvicorn listens after the lifespan), so a worker
still loading its models receives nothing. The parent only supervises: it replaces a worker that
dies, and passes SIGTERM / SIGINT on for a graceful shutdown.

The service's workers all log into one decision log, and they do not write it themselves: the
supervisor starts a decision-log writer process first (:mod:`service.store.logwriter`, which says why)
and hands its socket to every worker (``BORDERRISK_LOG_WRITER``). A writer that dies is replaced like a
worker (requests meanwhile get 503, as in any outage of the log); at shutdown it stops last, once the
workers have finished their requests.

Workers and writer end with the supervisor, even one killed outright (:mod:`service.orphans`).

Each worker is bound to a CPU of its own where the CPUs are the service's to divide
(:mod:`service.affinity`, ``BORDERRISK_CPU_PINNING``): a worker runs Python on about one CPU anyway,
and its event-loop and scoring threads then share that CPU's caches instead of trading them.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any

import structlog
import uvicorn
from uvicorn.config import STARTUP_FAILURE

from service.affinity import CpuPinning, bind_to_cpu, worker_cpus
from service.orphans import end_with_parent
from service.restarts import RestartBackoff

log = structlog.get_logger(__name__)

#: Seconds a worker has to finish its in-flight requests after SIGTERM before it is killed.
SHUTDOWN_GRACE_S = 30.0

__all__ = [
    "SHUTDOWN_GRACE_S",
    "connections_per_worker",
    "listening_sockets",
    "log_writer_pids",
    "serve",
    "worker_pids",
]


def _tcp_table(state: str, port: int) -> list[list[str]]:
    """Rows of ``/proc/net/tcp{,6}`` in ``state`` (hex code) whose local port is ``port``."""
    rows = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == state and int(fields[1].rsplit(":", 1)[1], 16) == port:
                rows.append(fields)
    return rows


def listening_sockets(port: int) -> int:
    """How many sockets listen on TCP ``port`` on this host (Linux ``/proc/net``): with several
    workers, each has its own once its app has started, so this says how many are serving."""
    return len(_tcp_table("0A", port))


def _children(supervisor: int, marker: bytes) -> set[int]:
    """Child processes of ``supervisor`` whose command line holds ``marker`` (Linux ``/proc``)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == supervisor and marker in cmdline:
            pids.add(int(entry.name))
    return pids


def worker_pids(supervisor: int) -> set[int]:
    """The worker processes of the supervisor ``supervisor`` (Linux ``/proc``)."""
    return _children(supervisor, b"spawn_main")


def log_writer_pids(supervisor: int) -> set[int]:
    """The decision-log writer of the supervisor ``supervisor`` (one, or none between a death and its
    replacement; Linux ``/proc``)."""
    return _children(supervisor, b"service.store.logwriter")


def connections_per_worker(supervisor: int, port: int) -> dict[int, int]:
    """Established client connections to ``port`` that each worker holds — how evenly the kernel
    spread them (for tests and the benchmark; Linux ``/proc``)."""
    established = {int(fields[9]) for fields in _tcp_table("01", port)}  # 9: the socket's inode
    held = {}
    for pid in worker_pids(supervisor):
        inodes = set()
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(int(target[8:-1]))
        except OSError:
            continue  # exited meanwhile
        held[pid] = len(inodes & established)
    return held


def _address(host: str, port: int) -> tuple[socket.AddressFamily, tuple[Any, ...]]:
    family, _, _, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    return family, address


def _bound_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    family, address = _address(host, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def _claim_port(host: str, port: int) -> int:
    """Fail now, with a message, if something already listens on the port (sockets that all set
    ``SO_REUSEPORT`` would otherwise share it silently with another server); return the port (the
    one the system chose, for port 0)."""
    try:
        probe = _bound_socket(host, port, reuse_port=False)
    except OSError as err:
        raise SystemExit(f"cannot serve on {host}:{port}: {err.strerror or err}") from None
    with probe:
        return int(probe.getsockname()[1])


def _worker(
    app: str, host: str, port: int, options: dict[str, Any], cpu: int | None = None, supervisor: int = 0
) -> None:
    """One worker process: ended with its supervisor (:mod:`service.orphans`), bound to its CPU (if
    any, before the app starts any thread), its own socket (bound, not yet listening), then the
    uvicorn server."""
    if supervisor and not end_with_parent(supervisor):
        sys.exit(0)  # the supervisor is gone already: nobody would stop this worker
    if cpu is not None:
        bind_to_cpu(cpu)
    try:
        sock = _bound_socket(host, port, reuse_port=True)
    except OSError as err:  # taken since the supervisor checked it: restarting would not help
        log.error("worker_cannot_bind", host=host, port=port, error=str(err))
        sys.exit(STARTUP_FAILURE)
    uvicorn.Server(uvicorn.Config(app, **options)).run(sockets=[sock])


#: Seconds the writer has to open (and migrate) the decision log and listen, at start-up.
WRITER_START_TIMEOUT_S = 120.0


class _Supervisor:
    def __init__(
        self,
        app: str,
        host: str,
        port: int,
        workers: int,
        options: dict[str, Any],
        log_writer: bool,
        cpus: list[int | None],
    ) -> None:
        self.args = (app, host, port, options)
        self.count = workers
        self.cpus = cpus  # per worker slot: a replaced worker gets the CPU of the one it replaces
        self.context = multiprocessing.get_context("spawn")
        self.stop = threading.Event()
        self.processes: list[BaseProcess] = []
        self.backoff = RestartBackoff()
        #: When each slot's process started (``"writer"`` or a worker's index), and when a dead one's
        #: replacement is due.
        self.started_at: dict[str | int, float] = {}
        self.restart_due: dict[str | int, float] = {}
        self.writer: subprocess.Popen[bytes] | None = None
        self.writer_socket: str | None = None
        self.database_url = ""
        if log_writer:
            from borderrisk.settings import get_settings

            settings = get_settings()
            if settings.audit_url.startswith("sqlite"):
                settings.data_path.mkdir(parents=True, exist_ok=True)
            self.database_url = settings.audit_url
            self.writer_dir = tempfile.mkdtemp(prefix="borderrisk-")  # private: mode 0700
            self.writer_socket = os.path.join(self.writer_dir, "log-writer.sock")

    def _start(self, slot: int) -> BaseProcess:
        cpu = self.cpus[slot]
        process = self.context.Process(
            target=_worker, args=(*self.args, cpu, os.getpid()), name="borderrisk-worker"
        )
        process.start()
        self.started_at[slot] = time.monotonic()
        log.info("worker_started", pid=process.pid, cpu=cpu)
        return process

    def _start_writer(self) -> subprocess.Popen[bytes]:
        """The writer, as a command of its own (``python -m service.store.logwriter``): not a
        ``spawn_main`` child, so nothing that counts the workers (:func:`worker_pids`) counts it."""
        assert self.writer_socket is not None
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "service.store.logwriter",
                self.database_url,
                self.writer_socket,
                str(os.getpid()),  # it ends with the supervisor (service.orphans)
            ]
        )
        self.started_at["writer"] = time.monotonic()
        log.info("log_writer_started", pid=process.pid)
        return process

    def _writer_listening(self, process: subprocess.Popen[bytes]) -> bool:
        """Wait until the writer answers; False if it exited first or took too long."""
        from service.store.logwriter import RemoteDecisionLog

        assert self.writer_socket is not None
        probe = RemoteDecisionLog(self.writer_socket, timeout_s=5.0)
        deadline = time.monotonic() + WRITER_START_TIMEOUT_S
        while process.poll() is None and time.monotonic() < deadline and not self.stop.is_set():
            if probe.ping():
                return True
            time.sleep(0.05)
        return False

    def _migrate_log(self) -> None:
        """Bring the decision log to the current schema before the writer starts: a migration that
        rebuilds a table (0002 on SQLite, about 20 s per 200,000 decisions) may take longer than the
        writer is given to start. On any failure (the database down, a log of a newer release) the
        writer and the workers keep trying and report it, as they did before."""
        from service.store import migrate

        log.info("decision_log_migrating")
        try:
            migrate(self.database_url)
        except Exception as exc:  # as the writer's own start (service.store.logwriter.run_writer)
            log.error("decision_log_not_migrated", error=str(exc))

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stop.set()

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        if self.writer_socket is not None:
            self._migrate_log()
            if self.stop.is_set():  # stopped while migrating: nothing started yet
                return 0
            self.writer = self._start_writer()
            if not self._writer_listening(self.writer):
                log.error("log_writer_failed_to_start", pid=self.writer.pid)
                self._shutdown()
                return 1
            os.environ["BORDERRISK_LOG_WRITER"] = self.writer_socket  # inherited by spawned workers
        self.processes = [self._start(slot) for slot in range(self.count)]
        status = 0
        while not self.stop.wait(0.5):
            writer = self.writer
            if (
                writer is not None
                and writer.poll() is not None
                and self._replace_now("writer", "log_writer_died", writer.pid, writer.returncode)
            ):
                self.writer = self._start_writer()
            for i, process in enumerate(self.processes):
                if process.is_alive():
                    continue
                if process.exitcode == STARTUP_FAILURE:  # the app cannot start: it would again
                    log.error("worker_failed_to_start", pid=process.pid)
                    self.stop.set()
                    status = 1
                    break
                if self._replace_now(i, "worker_died", process.pid, process.exitcode):
                    self.processes[i] = self._start(i)
        self._shutdown()
        return status

    def _replace_now(self, slot: str | int, event: str, pid: int | None, exitcode: int | None) -> bool:
        """Whether the dead process of ``slot`` is to be replaced now: at its first sight, schedule
        its replacement (:class:`~service.restarts.RestartBackoff`) and log the death once."""
        now = time.monotonic()
        due = self.restart_due.get(slot)
        if due is None:
            delay = self.backoff.delay_s(slot, now - self.started_at.get(slot, now))
            due = self.restart_due[slot] = now + delay
            log.warning(event, pid=pid, exitcode=exitcode, restart_in_s=round(delay, 1))
        if now < due:
            return False
        del self.restart_due[slot]
        return True

    @staticmethod
    def _stop(processes: list[BaseProcess]) -> None:
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes in-flight requests, then exits
        for process in processes:
            process.join(SHUTDOWN_GRACE_S)
            if process.is_alive():
                log.warning("worker_killed", pid=process.pid)
                process.kill()
                process.join()

    def _shutdown(self) -> None:
        self._stop(self.processes)  # the workers first: their last requests still need the writer
        if self.writer is not None:
            self.writer.terminate()  # SIGTERM: it answers what it has, then exits
            try:
                self.writer.wait(SHUTDOWN_GRACE_S)
            except subprocess.TimeoutExpired:
                log.warning("process_killed", pid=self.writer.pid, name="log-writer")
                self.writer.kill()
                self.writer.wait()
        if self.writer_socket is not None:
            shutil.rmtree(self.writer_dir, ignore_errors=True)


def serve(
    app: str,
    *,
    host: str,
    port: int,
    workers: int = 1,
    log_writer: bool = False,
    cpu_pinning: CpuPinning = "off",
    **options: Any,
) -> None:
    """Serve ``app`` (an import string) on ``host:port``: in this process for one worker, else under
    a supervisor with one socket per worker and, with ``log_writer``, a decision-log writer process
    that all workers log through. ``cpu_pinning`` binds each worker to one CPU
    (:mod:`service.affinity`; the writer and the supervisor stay unbound). ``options`` are
    :class:`uvicorn.Config` settings."""
    if workers < 1:
        raise ValueError("workers must be at least 1")
    cpus = worker_cpus(workers, cpu_pinning)
    if workers == 1:
        if cpus[0] is not None:
            bind_to_cpu(cpus[0])
        log.info("serving", host=host, port=port, workers=1, cpus=cpus)
        uvicorn.run(app, host=host, port=port, **options)
        return
    port = _claim_port(host, port)
    log.info("serving", host=host, port=port, workers=workers, log_writer=log_writer, cpus=cpus)
    sys.exit(_Supervisor(app, host, port, workers, options, log_writer, cpus).run())
