"""KeyStore: create / authenticate / revoke / list, and the revocation-vs-cache contract."""

from __future__ import annotations

import hashlib
import re

import pytest
from sqlalchemy import event, select

from service.store import KeyStore, Principal, StoreUnavailable, make_engine
from service.store.tables import api_keys


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_create_and_authenticate(engine) -> None:
    keys = KeyStore(engine, cache_ttl=0)
    key = keys.create("officer-anna", "officer")
    m = re.fullmatch(r"br_([0-9a-f]{12})_([A-Za-z0-9_-]{43})", key)
    assert m, key
    principal = keys.authenticate(key)
    assert principal == Principal(name="officer-anna", role="officer", key_id=m.group(1))
    with engine.connect() as conn:
        row = conn.execute(select(api_keys).where(api_keys.c.key_id == m.group(1))).one()
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in str(tuple(row))  # the plaintext is never stored
    other = keys.create("auditor-bo", "auditor")
    assert other != key and keys.authenticate(other).role == "auditor"


def test_wrong_and_malformed_keys_are_rejected(engine) -> None:
    keys = KeyStore(engine, cache_ttl=0)
    key = keys.create("analyst-1", "analyst")
    _prefix, key_id, secret = key.split("_", 2)
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    bad = [
        f"br_{key_id}_{flipped}",  # right id, wrong secret
        f"br_{'0' * 12}_{secret}",  # unknown id
        "",
        "br_",
        "br__",
        key + "x",
        key[:-1],
        key.upper(),
        f"xx_{key_id}_{secret}",
        f"br_{key_id}",
        "Bearer " + key,
        "br_" + key_id + "_" + secret + "\n",
        "é" * 60,
        "br_" + "z" * 12 + "_" + secret,
        None,
        12345,
        b"bytes",
        "x" * 10_000,
    ]
    for candidate in bad:
        assert keys.authenticate(candidate) is None, candidate  # type: ignore[arg-type]
    assert keys.authenticate(key) is not None


def test_roles_names_and_duplicates(engine) -> None:
    keys = KeyStore(engine)
    for role in ("officer", "analyst", "auditor", "admin"):
        keys.create(f"user-{role}", role)
    with pytest.raises(ValueError, match="unknown role"):
        keys.create("root", "superuser")
    with pytest.raises(ValueError, match="already exists"):
        keys.create("user-admin", "officer")
    for bad_name in ("", "   ", " padded", "x" * 201):
        with pytest.raises(ValueError):
            keys.create(bad_name, "officer")
    assert keys.revoke("user-admin") is True
    with pytest.raises(ValueError, match="already exists"):
        keys.create("user-admin", "admin")  # names of revoked keys are not reused
    listed = keys.list()
    assert [k["name"] for k in listed] == ["user-officer", "user-analyst", "user-auditor", "user-admin"]
    assert all(set(k) == {"key_id", "name", "role", "created_at", "revoked_at", "active"} for k in listed)
    assert [k["active"] for k in listed] == [True, True, True, False]
    assert listed[3]["revoked_at"] is not None


def test_revoke_takes_effect(engine) -> None:
    keys = KeyStore(engine)  # default TTL: revoking through the same instance is immediate
    key = keys.create("officer-x", "officer")
    assert keys.authenticate(key) is not None
    assert keys.revoke("officer-x") is True
    assert keys.authenticate(key) is None
    assert keys.revoke("officer-x") is False  # already revoked
    assert keys.revoke("nobody") is False


def test_revocation_from_another_process_within_ttl(engine) -> None:
    clock = FakeClock()
    worker = KeyStore(engine, cache_ttl=5, clock=clock)  # one uvicorn worker
    uncached = KeyStore(engine, cache_ttl=0)  # another worker with the cache disabled
    admin_cli = KeyStore(engine)  # the admin CLI, a separate process
    key = admin_cli.create("officer-y", "officer")
    assert worker.authenticate(key) is not None and uncached.authenticate(key) is not None
    admin_cli.revoke("officer-y")
    assert uncached.authenticate(key) is None  # TTL=0: immediate
    clock.now += 4.9
    assert worker.authenticate(key) is not None  # still cached: the documented window
    clock.now += 0.2
    assert worker.authenticate(key) is None  # TTL elapsed: the revoke is in force


def test_cache_spares_the_database(engine) -> None:
    keys = KeyStore(engine, cache_ttl=60)
    key = keys.create("officer-z", "officer")
    queries: list[str] = []

    def count(conn, cursor, statement, *args):
        queries.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(20):
            assert keys.authenticate(key) is not None
        wrong = key[:-1] + ("A" if key[-1] != "A" else "B")
        assert keys.authenticate(wrong) is None  # same key id: served from the cache, hash still checked
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert sum("api_keys" in q for q in queries) == 1


def test_cache_only_check_answers_without_the_database_or_says_it_cannot(engine) -> None:
    """The request path checks keys on the event loop with ``authenticate_cached`` and goes to the
    database (in a thread) only when it answers ``known=False``."""
    clock = FakeClock()
    keys = KeyStore(engine, cache_ttl=5, clock=clock)
    key = keys.create("officer-c", "officer")
    assert keys.authenticate_cached("garbage") == (True, None)  # malformed: no database needed
    keys.invalidate()
    assert keys.authenticate_cached(key) == (False, None)  # not cached: ask the database
    assert keys.authenticate(key) is not None  # ... which fills the cache
    known, principal = keys.authenticate_cached(key)
    assert known and principal is not None and principal.role == "officer"
    wrong = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert keys.authenticate_cached(wrong) == (True, None)  # cached id, wrong secret: refused
    keys.revoke("officer-c")  # through this instance: the cache entry goes at once
    assert keys.authenticate_cached(key) == (False, None)
    assert keys.authenticate(key) is None
    assert keys.authenticate_cached(key) == (True, None)  # the revoked row is cached as refused
    clock.now += 5.1
    assert keys.authenticate_cached(key) == (False, None)  # TTL elapsed: ask again


def test_database_down_is_not_a_401() -> None:
    engine = make_engine(
        "postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 2}
    )
    try:
        keys = KeyStore(engine)
        with pytest.raises(StoreUnavailable):
            keys.authenticate("br_0123456789ab_" + "A" * 43)
        assert keys.authenticate("garbage") is None  # malformed keys never reach the database
        with pytest.raises(StoreUnavailable):
            keys.create("x", "officer")
        with pytest.raises(StoreUnavailable):
            keys.list()
    finally:
        engine.dispose()
