"""Grow a benchmark's decision log to a given number of decisions, as a service that has run a while.

A log's indexes cost more per insert as they grow (the chain hash's unique index cost the writer
40 % of a large transaction at 200,000 decisions before revision 0002 took it away), so a benchmark
on a fresh log alone would flatter the writer. Run as ``python -m bench.grow_log DECISIONS`` with the
benchmark's environment (``bench.request_path.bench_env``): the decisions are the demo cargo model's
own, on the benchmark's payloads, each with an id of its own, logged 1,000 per transaction.
"""

from __future__ import annotations

import sys
import time

from bench.request_path import payloads
from borderrisk.settings import get_settings
from service.decisions import make_decisions
from service.models_state import ServingModels
from service.store import AuditStore, make_engine, migrate
from service.store.ids import new_record_id

CHUNK = 1000


def grow(target: int) -> int:
    """Append decisions until the log holds at least ``target``; return how many it holds."""
    from sqlalchemy import text

    settings = get_settings()
    engine = make_engine(settings.audit_url)
    migrate(engine)
    store = AuditStore(engine)
    with engine.connect() as conn:
        held = int(conn.execute(text("SELECT count(*) FROM decisions")).scalar_one())
    models = ServingModels()
    scorer = models.load(settings, "cargo")
    records = payloads(settings.data_path, CHUNK)
    decided = make_decisions(scorer, "cargo", "bench-grow", records, 0.0, "compact")
    while held < target:
        store.append_decisions([dict(e, decision_id=new_record_id()) for e in decided.entries])
        held += CHUNK
    engine.dispose()
    return held


if __name__ == "__main__":
    t0 = time.perf_counter()
    n = grow(int(sys.argv[1]))
    print(f"log holds {n} decisions ({time.perf_counter() - t0:.0f} s)")
