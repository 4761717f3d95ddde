"""API keys: creation, authentication (with a short cache) and revocation.

Key format: ``br_<key_id>_<secret>``; ``key_id`` is 12 lowercase hex characters
(public, used to find the row), ``secret`` is ``secrets.token_urlsafe(32)``
(256 random bits).  Only ``sha256(full key)`` is stored.

Why SHA-256 and not bcrypt/argon2: slow, salted hashes exist to make guessing
*low-entropy* secrets (human passwords) expensive.  These keys are 256-bit
uniformly random, so a preimage search is infeasible whatever the hash speed,
and a fast hash keeps authentication cheap on every request (a slow hash on
the request path would also be a CPU denial-of-service lever).  Hashes are
compared with :func:`hmac.compare_digest`.

Cache: a successful (or failed) lookup of a ``key_id`` is kept for
``cache_ttl`` seconds (default 5) so the request path rarely touches the
database.  Consequence: a key revoked through *another* process (another
worker, the CLI) is still accepted by this process for at most ``cache_ttl``
seconds; :meth:`KeyStore.revoke` in this process drops the entry at once.
``cache_ttl=0`` disables the cache (revocation is immediate everywhere).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, exc, insert, select, update

from service.store import tables
from service.store.db import db_errors, write_transaction

__all__ = ["KEY_PREFIX", "ROLES", "KeyStore", "Principal"]

KEY_PREFIX = "br"
ROLES = tables.ROLES
_KEY_ID = re.compile(r"^[0-9a-f]{12}$")
_SECRET = re.compile(r"^[A-Za-z0-9_-]{43}$")  # token_urlsafe(32) without padding
_MAX_KEY_LEN = 100
_CACHE_MAX = 4096

_keys = tables.api_keys


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    key_id: str


@dataclass(frozen=True)
class _KeyRow:
    name: str
    role: str
    key_hash: str
    revoked: bool


def _hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _parse(key: Any) -> tuple[str, str] | None:
    if not isinstance(key, str) or len(key) > _MAX_KEY_LEN:
        return None
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    _, key_id, secret = parts
    if not _KEY_ID.match(key_id) or not _SECRET.match(secret):
        return None
    return key_id, secret


class KeyStore:
    """API keys in the ``api_keys`` table (see the module docstring for the cache contract)."""

    def __init__(
        self,
        engine: Engine,
        *,
        cache_ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if cache_ttl < 0:
            raise ValueError("cache_ttl must be >= 0")
        self.engine = engine
        self.cache_ttl = cache_ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, _KeyRow | None]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ cache

    def _cache_get(self, key_id: str) -> tuple[bool, _KeyRow | None]:
        if self.cache_ttl <= 0:
            return False, None
        with self._lock:
            entry = self._cache.get(key_id)
            if entry is None:
                return False, None
            expires, row = entry
            if self._clock() >= expires:
                del self._cache[key_id]
                return False, None
            return True, row

    def _cache_put(self, key_id: str, row: _KeyRow | None) -> None:
        if self.cache_ttl <= 0:
            return
        with self._lock:
            now = self._clock()
            if len(self._cache) >= _CACHE_MAX:
                for k in [k for k, (exp, _) in self._cache.items() if exp <= now]:
                    del self._cache[k]
                while len(self._cache) >= _CACHE_MAX:
                    del self._cache[next(iter(self._cache))]
            self._cache[key_id] = (now + self.cache_ttl, row)

    def invalidate(self, key_id: str | None = None) -> None:
        """Drop one cached key id, or the whole cache."""
        with self._lock:
            if key_id is None:
                self._cache.clear()
            else:
                self._cache.pop(key_id, None)

    # ------------------------------------------------------------------ API

    def create(self, name: str, role: str) -> str:
        """Create a key and return it in plaintext — the only time it is ever visible.

        Raises :class:`ValueError` for an unknown role, an empty/over-long name,
        or a name already used (also by a revoked key: names are never reused,
        so the audit trail's officer names stay unambiguous).
        """
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}: must be one of {', '.join(ROLES)}")
        if not isinstance(name, str) or not name.strip() or len(name) > 200 or name != name.strip():
            raise ValueError("key name must be a non-empty string of at most 200 characters, no outer spaces")
        if "\x00" in name:
            raise ValueError("key name contains a NUL character")
        now = datetime.now(UTC)
        with db_errors("create API key"):
            for _attempt in range(5):
                key_id = secrets.token_hex(6)
                key = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
                try:
                    with write_transaction(self.engine) as conn:
                        taken = conn.execute(
                            select(_keys.c.key_id, _keys.c.name).where(
                                (_keys.c.name == name) | (_keys.c.key_id == key_id)
                            )
                        ).all()
                        if any(r.name == name for r in taken):
                            raise ValueError(f"an API key named {name!r} already exists")
                        if taken:  # key_id collision (48 random bits): draw again
                            continue
                        conn.execute(
                            insert(_keys),
                            [
                                {
                                    "key_id": key_id,
                                    "name": name,
                                    "role": role,
                                    "key_hash": _hash_key(key),
                                    "created_at": now,
                                    "revoked_at": None,
                                }
                            ],
                        )
                except exc.IntegrityError as err:  # lost a race on the unique name
                    raise ValueError(f"an API key named {name!r} already exists") from err
                self.invalidate(key_id)
                return key
        raise RuntimeError("could not draw an unused key id")  # pragma: no cover

    def authenticate_cached(self, key: str) -> tuple[bool, Principal | None]:
        """``(True, principal or None)`` when the answer needs no database (a malformed key, or a key
        id in the cache); ``(False, None)`` when :meth:`authenticate` must ask the database. Lets
        the request path check a key on the event loop and go to a thread only on a cache miss."""
        parsed = _parse(key)
        if parsed is None:
            return True, None
        hit, row = self._cache_get(parsed[0])
        if not hit:
            return False, None
        return True, self._check(key, parsed[0], row)

    @staticmethod
    def _check(key: str, key_id: str, row: _KeyRow | None) -> Principal | None:
        if row is None:
            return None
        if not hmac.compare_digest(_hash_key(key), row.key_hash):
            return None
        if row.revoked:
            return None
        return Principal(name=row.name, role=row.role, key_id=key_id)

    def authenticate(self, key: str) -> Principal | None:
        """The key's principal, or None if malformed, unknown, wrong or revoked.

        Raises :class:`StoreUnavailable` if the database cannot be asked (the
        service answers 503, not 401).
        """
        parsed = _parse(key)
        if parsed is None:
            return None
        key_id, _secret = parsed
        return self._check(key, key_id, self._row(key_id, "authenticate"))

    def _row(self, key_id: str, op: str) -> _KeyRow | None:
        """The key's row by public id, through the cache (a miss reads the database once)."""
        hit, row = self._cache_get(key_id)
        if not hit:
            with db_errors(op), self.engine.connect() as conn:
                found = conn.execute(
                    select(_keys.c.name, _keys.c.role, _keys.c.key_hash, _keys.c.revoked_at).where(
                        _keys.c.key_id == key_id
                    )
                ).first()
            row = (
                None
                if found is None
                else _KeyRow(found.name, found.role, found.key_hash, found.revoked_at is not None)
            )
            self._cache_put(key_id, row)
        return row

    def principal(self, key_id: str) -> Principal | None:
        """The principal of an active key by its public id (a session that outlives one request
        re-checks its key this way), or None if unknown or revoked. Uses the same cache."""
        if not isinstance(key_id, str) or not _KEY_ID.match(key_id):
            return None
        row = self._row(key_id, "principal")
        if row is None or row.revoked:
            return None
        return Principal(name=row.name, role=row.role, key_id=key_id)

    def revoke(self, name: str) -> bool:
        """Revoke the named key; False if there is no such active key."""
        now = datetime.now(UTC)
        with db_errors("revoke API key"), write_transaction(self.engine) as conn:
            key_id = conn.execute(
                select(_keys.c.key_id).where(_keys.c.name == name, _keys.c.revoked_at.is_(None))
            ).scalar()
            if key_id is None:
                return False
            conn.execute(update(_keys).where(_keys.c.key_id == key_id).values(revoked_at=now))
        self.invalidate(key_id)
        return True

    def list(self) -> list[dict[str, Any]]:
        """All keys, oldest first, without their hashes."""
        with db_errors("list API keys"), self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    _keys.c.key_id, _keys.c.name, _keys.c.role, _keys.c.created_at, _keys.c.revoked_at
                ).order_by(_keys.c.created_at, _keys.c.name)
            ).all()
        return [
            {
                "key_id": r.key_id,
                "name": r.name,
                "role": r.role,
                "created_at": r.created_at,
                "revoked_at": r.revoked_at,
                "active": r.revoked_at is None,
            }
            for r in rows
        ]
