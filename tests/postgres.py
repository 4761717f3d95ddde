"""The PostgreSQL the tests use: ``BORDERRISK_TEST_POSTGRES_URL`` (default: the local test server).

If it is unreachable, PostgreSQL variants are skipped with the reason — unless ``CI=true``, where
they fail: CI must never pass by skipping the production database.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pg_url() -> str:
    return os.environ.get("BORDERRISK_TEST_POSTGRES_URL") or DEFAULT_PG_URL


@functools.cache
def _pg_unreachable() -> str | None:
    url = pg_url()
    shown = make_url(url).render_as_string(hide_password=True)
    try:
        eng = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 3})
        try:
            with eng.connect() as conn:
                conn.execute(text("SELECT 1"))
        finally:
            eng.dispose()
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return f"PostgreSQL at {shown} is unreachable ({first}); set BORDERRISK_TEST_POSTGRES_URL"
    return None


def require_postgres() -> None:
    reason = _pg_unreachable()
    if reason is None:
        return
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{reason} — CI=true, so the PostgreSQL tests must not be skipped", pytrace=False)
    pytest.skip(reason)


@contextmanager
def private_schema_url() -> Iterator[str]:
    """A URL whose connections use a fresh, uniquely named schema, dropped afterwards."""
    require_postgres()
    schema = f"br_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(pg_url(), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(pg_url()).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
