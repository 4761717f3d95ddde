"""Engine construction, migrations, transactions and error mapping for the store.

Backends
--------
* **SQLite** (single host, one file): WAL journal, ``synchronous=FULL`` (every
  commit is fsynced to the WAL before ``COMMIT`` returns), foreign keys on and a
  busy timeout so concurrent writers wait instead of failing.  The ``sqlite3``
  driver's own transaction handling is switched off (``isolation_level=None``)
  and SQLAlchemy's ``begin`` event emits ``BEGIN`` itself, as the SQLAlchemy
  SQLite documentation recommends; write transactions ask for
  ``BEGIN IMMEDIATE`` so they take SQLite's single write lock *before* reading
  anything (no lost updates, no ``SQLITE_BUSY_SNAPSHOT`` upgrades).
* **PostgreSQL** (psycopg 3): ``pool_pre_ping`` so connections killed by a
  restart or a failover are replaced transparently.  Write transactions force
  ``synchronous_commit=on`` locally, so a commit that returned is on disk even
  if the server default was relaxed.

Every database failure surfacing from the store is raised as
:class:`StoreUnavailable`; the service maps it to HTTP 503 so no score is ever
returned without having been logged.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import DateTime, Engine, Table, create_engine, event, exc, func, insert, select, text
from sqlalchemy.engine import Connection, Dialect, make_url

__all__ = [
    "MIGRATION_LOCK_KEY",
    "StoreError",
    "StoreUnavailable",
    "alembic_config",
    "db_errors",
    "driver_insert",
    "driver_write_transaction",
    "is_postgres",
    "is_sqlite",
    "make_engine",
    "migrate",
    "ping",
    "read_transaction",
    "write_transaction",
]

#: Advisory lock key (PostgreSQL) held while migrations run.  Arbitrary but fixed.
MIGRATION_LOCK_KEY = 0x62725F6D6967  # "br_mig"

#: Execution option read by the SQLite ``begin`` listener.
_SQLITE_BEGIN_OPTION = "borderrisk_sqlite_begin"
_SQLITE_BEGIN_MODES = frozenset({"DEFERRED", "IMMEDIATE"})

SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 10

_MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class StoreError(Exception):
    """Base class of every error raised by :mod:`service.store`."""


class WriterLockError(Exception):
    """The SQLite writer lock could not be taken (its file cannot be opened, or it stayed held past
    the busy timeout); :func:`db_errors` reports it as :class:`StoreUnavailable`."""


class StoreUnavailable(StoreError):
    """The database could not be reached or failed; nothing was (or can be) logged.

    The service must answer HTTP 503 and must not return the score.
    """


def is_sqlite(bind: Engine | Connection) -> bool:
    return bind.dialect.name == "sqlite"


def is_postgres(bind: Engine | Connection) -> bool:
    return bind.dialect.name == "postgresql"


class CanonicalJSON(str):
    """JSON text that is already canonical (``chain.canonical_json``): a JSON column stores it as is.

    The store writes a record's public part as the very bytes its hash covers, so it is encoded
    once, not once for the hash and again for the database.
    """


def json_text(value: Any) -> str:
    """The text a JSON column stores. The ledger's records arrive already encoded, canonically
    (:class:`CanonicalJSON`), and are stored as they are; anything else is
    written by orjson, and what orjson does not take (integers beyond 64 bits) by ``json``."""
    if isinstance(value, CanonicalJSON):
        return str.__str__(value)
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, allow_nan=False)


def make_engine(url: str, *, connect_args: dict[str, Any] | None = None, **engine_kwargs: Any) -> Engine:
    """Create an :class:`~sqlalchemy.Engine` configured for the audit store.

    ``connect_args`` are passed to the DBAPI (e.g. ``{"options": "-csearch_path=x"}``
    for PostgreSQL); ``engine_kwargs`` to :func:`sqlalchemy.create_engine`.
    """
    sa_url = make_url(url)
    args = dict(connect_args or {})
    backend = sa_url.get_backend_name()
    engine_kwargs.setdefault("json_serializer", json_text)
    if backend == "sqlite":
        # sqlite3's own busy timeout (seconds); the PRAGMA below sets the same.
        args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        engine = create_engine(sa_url, connect_args=args, **engine_kwargs)
        _install_sqlite_listeners(engine)
        return engine
    if backend == "postgresql":
        if "connect_timeout" not in sa_url.query:
            args.setdefault("connect_timeout", PG_CONNECT_TIMEOUT_S)
        engine_kwargs.setdefault("pool_pre_ping", True)
        return create_engine(sa_url, connect_args=args, **engine_kwargs)
    raise ValueError(f"unsupported database backend {backend!r}: use sqlite or postgresql")


def _install_sqlite_listeners(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy (the "begin" listener below) emit BEGIN instead of the driver.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            _ensure_wal(cursor)
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(_SQLITE_BEGIN_OPTION, "DEFERRED")
        if mode not in _SQLITE_BEGIN_MODES:  # pragma: no cover - internal misuse
            raise ValueError(f"invalid SQLite begin mode {mode!r}")
        conn.exec_driver_sql(f"BEGIN {mode}")


def _ensure_wal(cursor: Any) -> None:
    """Switch the file to WAL (persistent, so usually already done by an earlier connection).

    The switch needs an exclusive lock and SQLite reports "database is locked" at
    once, without consulting the busy handler, when another process holds the
    file (two workers opening a fresh database together): retry until the busy
    timeout.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            mode = str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower()
            if mode in ("wal", "memory"):
                return
            cursor.execute("PRAGMA journal_mode = WAL").fetchall()
            return
        except sqlite3.OperationalError as err:
            transient = "locked" in str(err) or "busy" in str(err)
            if not transient or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


@contextlib.contextmanager
def db_errors(operation: str) -> Iterator[None]:
    """Translate any SQLAlchemy/DBAPI failure into :class:`StoreUnavailable`."""
    try:
        yield
    except StoreError:
        raise
    except WriterLockError as err:
        raise StoreUnavailable(f"audit store unavailable during {operation}: {err}") from err
    except exc.SQLAlchemyError as err:
        detail = getattr(err, "orig", None) or err
        first_line = str(detail).strip().splitlines()[0] if str(detail).strip() else type(err).__name__
        raise StoreUnavailable(
            f"audit store unavailable during {operation}: {type(err).__name__}: {first_line}"
        ) from err


class _SqliteWriterLock:
    """Serialises the writers of one SQLite file, across threads and processes, before ``BEGIN
    IMMEDIATE``.

    SQLite's own busy handler makes a writer that finds the file locked sleep 1, 2, 5, 10 … 100 ms
    before it tries again; with several service workers appending decisions, those sleeps, not the
    work, set the latency (hundreds of milliseconds at the 99th percentile, measured). Writers
    therefore queue first on an ``flock`` of a side file (``<database>-writer.lock``), polled at
    sub-millisecond intervals, and find the database free when they get it. Anything else writing
    the file still meets SQLite's own lock and busy timeout, so correctness never depends on this.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.mutex = threading.Lock()
        self.fd: int | None = None
        self.pid = 0

    def _file(self) -> int:
        if self.fd is None or self.pid != os.getpid():  # a forked child needs its own open file
            try:
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as err:
                raise WriterLockError(f"cannot open the writer lock {self.path}: {err}") from err
            self.pid = os.getpid()
        return self.fd

    @contextlib.contextmanager
    def held(self, timeout_s: float) -> Iterator[None]:
        deadline = time.monotonic() + timeout_s
        if not self.mutex.acquire(timeout=timeout_s):
            raise WriterLockError(f"the writer lock {self.path} stayed held for {timeout_s:g} s")
        try:
            fd = self._file()
            delay = 20e-6
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise WriterLockError(
                            f"the writer lock {self.path} stayed held for {timeout_s:g} s"
                        ) from None
                    time.sleep(delay)
                    delay = min(delay * 2, 1e-3)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self.mutex.release()


_writer_locks: dict[str, _SqliteWriterLock] = {}  # by the lock file's resolved path: one per file
_writer_lock_of: dict[str, _SqliteWriterLock] = {}  # by the URL's database as written (no syscall)
_writer_locks_mutex = threading.Lock()


def _sqlite_writer_lock(engine: Engine) -> _SqliteWriterLock | None:
    """The writer lock of an SQLite database file (None for an in-memory database)."""
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    if (lock := _writer_lock_of.get(database)) is not None:
        return lock
    path = str(Path(database).resolve()) + "-writer.lock"
    with _writer_locks_mutex:
        lock = _writer_locks.get(path)
        if lock is None:
            lock = _writer_locks[path] = _SqliteWriterLock(path)
        _writer_lock_of[database] = lock
        return lock


@contextlib.contextmanager
def write_transaction(
    engine: Engine, *, lock_key: int | None = None, sqlite_foreign_keys: bool = True
) -> Iterator[Connection]:
    """A serialised write transaction; committed (durably) when the block exits cleanly.

    SQLite: writers queue on the file's writer lock (see :class:`_SqliteWriterLock`), then
    ``BEGIN IMMEDIATE`` takes the database's write lock up front (any other writer waits up to the
    busy timeout). PostgreSQL: ``synchronous_commit`` is forced on and, when ``lock_key`` is
    given, ``pg_advisory_xact_lock(lock_key)`` is taken as the first statement;
    it is released by the commit/rollback.

    ``sqlite_foreign_keys=False`` (migrations only): SQLite enforces no foreign key during the
    transaction, as its documented way of rebuilding a table that others refer to requires (the
    pragma has no effect inside a transaction, so it is set before, and the connection is then
    closed rather than pooled); a migration that rebuilds a table checks the keys itself
    (``PRAGMA foreign_key_check``).
    """
    sqlite = is_sqlite(engine)
    writer_lock = _sqlite_writer_lock(engine) if sqlite else None
    with contextlib.ExitStack() as stack:
        if writer_lock is not None:
            stack.enter_context(writer_lock.held(SQLITE_BUSY_TIMEOUT_MS / 1000))
        conn = stack.enter_context(engine.connect())
        if sqlite:
            conn.execution_options(**{_SQLITE_BEGIN_OPTION: "IMMEDIATE"})
            if not sqlite_foreign_keys:
                dbapi = conn.connection.dbapi_connection
                assert dbapi is not None
                dbapi.execute("PRAGMA foreign_keys = OFF")  # outside any transaction: takes effect
                # never back to the pool: a fresh connection has them on (the connect listener)
                stack.callback(conn.invalidate)
        with conn.begin():
            if is_postgres(conn):
                conn.execute(text("SET LOCAL synchronous_commit TO ON"))
                if lock_key is not None:
                    conn.execute(select(func.pg_advisory_xact_lock(lock_key)))
            yield conn


@contextlib.contextmanager
def driver_write_transaction(engine: Engine) -> Iterator[sqlite3.Connection]:
    """:func:`write_transaction` on SQLite at the driver level: the sqlite3 connection, in a
    transaction committed (durably) when the block exits cleanly, rolled back otherwise.

    The serialisation is the same — the file's writer lock, then ``BEGIN IMMEDIATE`` — on a
    connection of the same pool (set up by the same ``connect`` listener: WAL, ``synchronous=FULL``,
    busy timeout). What it leaves out is SQLAlchemy's per-transaction machinery (connection
    wrapper, ``begin`` event, transaction objects, the execution of each statement): the decision
    log's appends, the one write on the request path, spend a fifth of their CPU there (measured).
    Every other write keeps :func:`write_transaction` and SQLAlchemy statements.

    A driver error leaves as the SQLAlchemy error ``conn.execute`` would raise (so
    :func:`db_errors` and the duplicate check see the same thing on both paths), and the connection
    is then dropped from the pool rather than reused, as SQLAlchemy does with a connection it
    cannot trust.
    """
    if not is_sqlite(engine):  # pragma: no cover - internal misuse
        raise ValueError("driver_write_transaction is for SQLite engines")
    writer_lock = _sqlite_writer_lock(engine)
    with contextlib.ExitStack() as stack:
        if writer_lock is not None:
            stack.enter_context(writer_lock.held(SQLITE_BUSY_TIMEOUT_MS / 1000))
        try:
            pooled = engine.raw_connection()  # a pool checkout raises the driver's own errors
        except sqlite3.Error as err:
            raise exc.DBAPIError.instance("-- connect", None, err, sqlite3.Error) from err
        stack.callback(pooled.close)
        dbapi: sqlite3.Connection = pooled.dbapi_connection  # type: ignore[assignment]
        statement = "BEGIN IMMEDIATE"
        try:
            dbapi.execute(statement)
            statement = "-- decision log append"
            yield dbapi
            statement = "COMMIT"
            dbapi.execute(statement)
        except BaseException as err:
            if dbapi.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    dbapi.execute("ROLLBACK")
            if isinstance(err, sqlite3.Error):
                if not isinstance(err, sqlite3.IntegrityError):
                    pooled.invalidate()
                raise exc.DBAPIError.instance(statement, None, err, sqlite3.Error) from err
            if isinstance(err, exc.DBAPIError) and not isinstance(err, exc.IntegrityError):
                pooled.invalidate()
            raise


@contextlib.contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A read transaction that sees one consistent snapshot for all its statements.

    PostgreSQL runs it at REPEATABLE READ; SQLite's deferred transaction is a
    snapshot from its first read (WAL mode), so writers are never blocked.
    """
    with engine.connect() as conn:
        if is_postgres(conn):
            conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """``conn.execute(insert(table), rows)``; on SQLite, handed to the driver directly.

    A decision's transaction is two such inserts of one row or a few, and SQLAlchemy's statement
    machinery around each (cache key, execution context, result set-up) cost more than SQLite's own
    work (about 0.3 ms of a 1.6 ms append, measured on a 2-core Xeon). On SQLite the same INSERT —
    the columns the rows name, each value through the column type's own bind processor, as
    SQLAlchemy would send it — goes to the connection's sqlite3 cursor (:func:`driver_insert`).
    Other databases take ``conn.execute`` (a network round trip dwarfs the machinery there).
    """
    if not rows:
        return
    if not is_sqlite(conn):
        conn.execute(insert(table), list(rows))
        return
    driver_insert(conn.connection.dbapi_connection, conn.dialect, table, rows)  # type: ignore[arg-type]


def driver_insert(
    dbapi_connection: sqlite3.Connection, dialect: Dialect, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """The INSERT of ``rows`` into ``table`` on an sqlite3 connection, as SQLAlchemy would send it
    (the columns the rows name, each value through its column type's bind processor); a driver error
    comes back as the SQLAlchemy error ``conn.execute`` raises (an ``IntegrityError`` for a duplicate
    key)."""
    if not rows:
        return
    keys = tuple(rows[0])
    sql, processors, repeated = _sqlite_insert(dialect, table, keys)
    columns: list[list[Any]] = [[row[k] for row in rows] for k in keys]
    for j, process in enumerate(processors):
        if process is None:
            continue
        if repeated[j]:  # a timestamp: the decisions of one batch share theirs, processed once
            done: dict[Any, Any] = {}
            columns[j] = [done[v] if v in done else done.setdefault(v, process(v)) for v in columns[j]]
        else:
            columns[j] = [process(v) for v in columns[j]]
    params = list(zip(*columns, strict=True))
    cursor = dbapi_connection.cursor()
    try:
        cursor.executemany(sql, params)
    except sqlite3.Error as err:
        raise exc.DBAPIError.instance(sql, params, err, sqlite3.Error) from err
    finally:
        cursor.close()


#: Per dialect (its processors carry its JSON serialiser), per table and column list.
_sqlite_inserts: weakref.WeakKeyDictionary[
    Dialect, dict[tuple[str, tuple[str, ...]], tuple[str, list[Any], list[bool]]]
] = weakref.WeakKeyDictionary()


def _sqlite_insert(
    dialect: Dialect, table: Table, keys: tuple[str, ...]
) -> tuple[str, list[Any], list[bool]]:
    """The INSERT statement for ``keys`` of ``table``, each column's bind processor, and whether the
    column holds timestamps (hashable values that repeat within an insert) (cached)."""
    memo = _sqlite_inserts.setdefault(dialect, {})
    if (found := memo.get((table.name, keys))) is None:
        quote = dialect.identifier_preparer.quote
        columns = [table.c[k] for k in keys]
        sql = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(c.name) for c in columns)}) "
            f"VALUES ({', '.join('?' * len(columns))})"
        )
        processors = [c.type.dialect_impl(dialect).bind_processor(dialect) for c in columns]
        repeated = [isinstance(getattr(c.type, "impl", c.type), DateTime) for c in columns]
        found = memo[(table.name, keys)] = (sql, processors, repeated)
    return found


def ping(engine: Engine) -> bool:
    """True if a round trip to the database succeeds."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1")).scalar_one()
        return True
    except Exception:
        return False


def alembic_config() -> Any:
    """An in-code Alembic :class:`~alembic.config.Config` (no ``alembic.ini`` needed)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS_DIR).replace("%", "%%"))
    cfg.set_main_option("path_separator", "os")
    return cfg


def migrate(engine_or_url: Engine | str, revision: str = "head") -> None:
    """Run ``alembic upgrade <revision>``; idempotent and safe to call from many processes at once.

    The migration runs in one transaction on a connection that first takes a
    lock: ``pg_advisory_xact_lock`` on PostgreSQL, the write lock of
    ``BEGIN IMMEDIATE`` on SQLite.  A second process blocks until the first one
    has committed, then finds the schema at head and does nothing.
    """
    from alembic import command

    owned = isinstance(engine_or_url, str)
    engine = make_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    try:
        with (
            db_errors("migration"),
            write_transaction(engine, lock_key=MIGRATION_LOCK_KEY, sqlite_foreign_keys=False) as conn,
        ):
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        if owned:
            engine.dispose()
