"""Fixtures of the audit-store tests: every DB test runs on SQLite and on PostgreSQL.

PostgreSQL: ``BORDERRISK_TEST_POSTGRES_URL`` (default: the local test server).
Each test gets a fresh, uniquely named schema (``search_path`` set through the
connection's ``options``), dropped afterwards, so tests can run concurrently.
If the server is unreachable the postgres variants are skipped — unless
``CI=true``, where they fail.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, create_engine, text
from sqlalchemy.pool import NullPool
from sqlalchemy.types import JSON

from service.store import AuditStore, make_engine, migrate
from tests.postgres import pg_url, require_postgres


@dataclass
class DbTarget:
    """One test database: an SQLite file or a private PostgreSQL schema."""

    backend: str
    url: str
    connect_args: dict[str, Any] = field(default_factory=dict)
    _engines: list[Engine] = field(default_factory=list)

    def engine(self, **kwargs: Any) -> Engine:
        eng = make_engine(self.url, connect_args=dict(self.connect_args), **kwargs)
        self._engines.append(eng)
        return eng

    def dispose(self) -> None:
        for eng in self._engines:
            eng.dispose()


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def db_target(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[DbTarget]:
    if request.param == "sqlite":
        target = DbTarget("sqlite", f"sqlite:///{tmp_path / 'audit.db'}")
        try:
            yield target
        finally:
            target.dispose()
        return
    require_postgres()
    schema = f"br_store_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(pg_url(), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    target = DbTarget("postgres", pg_url(), {"options": f"-csearch_path={schema}"})
    try:
        yield target
    finally:
        target.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def engine(db_target: DbTarget) -> Engine:
    eng = db_target.engine()
    migrate(eng)
    return eng


@pytest.fixture
def store(engine: Engine) -> AuditStore:
    return AuditStore(engine)


T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def decision_kwargs(i: int = 0, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments of one plausible decision (passenger if i is odd, cargo if even)."""
    domain = "passenger" if i % 2 else "cargo"
    kwargs: dict[str, Any] = {
        "decision_id": str(uuid.uuid4()),
        "created_at": T0 + timedelta(minutes=i),
        "domain": domain,
        "officer": f"officer-{i % 3}",
        "model": {"name": f"{domain}-lgbm", "version": f"v{1 + i % 2}", "sha256": f"{i % 16:x}" * 64},
        "input_public": {"route": "DXB-FRA", "weight_kg": 12.5 + i, "declared_value": 0.1 * i, "n": i},
        "input_personal": {"name": f"Person {i}", "passport": f"P{i:07d}", "born": "1980-01-01"}
        if domain == "passenger"
        else None,
        "score": round(0.01 * (i % 100), 6),
        "channel": ("green", "yellow", "red")[i % 3],
        "selection": ("risk", "random", "none")[i % 3],
        "thresholds": {"yellow": 0.3, "red": 0.7},
        "explanation": {"base_value": -1.25, "contributions": {"weight_kg": 0.5 / (i + 1), "route": -0.1}},
    }
    kwargs.update(overrides)
    return kwargs


@pytest.fixture
def make_decision() -> Callable[..., dict[str, Any]]:
    return decision_kwargs


@pytest.fixture
def raw_sql(engine: Engine) -> Callable[..., Any]:
    """Run tampering SQL directly (bypassing the store); ``json_params`` are bound as JSON."""

    def run(sql: str, json_params: tuple[str, ...] = (), **params: Any) -> int:
        stmt = text(sql)
        if json_params:
            stmt = stmt.bindparams(*(bindparam(name, type_=JSON(none_as_null=True)) for name in json_params))
        with engine.begin() as conn:
            return conn.execute(stmt, params).rowcount

    return run
