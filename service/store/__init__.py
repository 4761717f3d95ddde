"""borderrisk audit store: hash-chained decision log and API keys.

Typical wiring::

    engine = make_engine(settings.database_url)
    migrate(engine)                     # idempotent, safe from several workers at once
    audit = AuditStore(engine)
    keys = KeyStore(engine)

Any database failure raises :class:`StoreUnavailable` (serve HTTP 503).
"""

from service.store.chain import (
    GENESIS,
    VerifyResult,
    canonical_json,
    personal_digest,
    record_hash,
    verify_chain,
)
from service.store.db import StoreError, StoreUnavailable, make_engine, migrate, ping
from service.store.decisions import Appended, AuditStore, DecisionNotFound, DuplicateDecision
from service.store.keys import KeyStore, Principal

__all__ = [
    "GENESIS",
    "Appended",
    "AuditStore",
    "DecisionNotFound",
    "DuplicateDecision",
    "KeyStore",
    "Principal",
    "StoreError",
    "StoreUnavailable",
    "VerifyResult",
    "canonical_json",
    "make_engine",
    "migrate",
    "personal_digest",
    "ping",
    "record_hash",
    "verify_chain",
]
