"""What the batch endpoint cannot go beyond on this machine: its own work for every row, in-process.

The endpoint spends CPU on each row in four steps that no server, protocol or process layout takes
away: reading the declaration (JSON → validated record), deciding it (features, exact explanation,
words, channel), logging it (checks, canonical JSON, chain hash, durable commit) and writing its
answer. Here each step runs in one thread of one process on a fresh SQLite log, on 1,000-declaration
batches of the benchmark's payloads in the compact form, with no HTTP, no worker processes and no
hand-off to the log writer — each of those only adds. So two cores' worth of CPU divided by the sum
is an upper bound on the endpoint's rows per second, measured in the same run as the endpoint.

Run as ``python -m bench.batch_floor`` with the benchmark's environment
(``bench.request_path.bench_env``); prints one JSON object. Each step is timed on every batch
(median CPU time of :data:`REPEATS`), bounded in count.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import orjson

from bench.request_path import payloads
from borderrisk.settings import get_settings
from service.decisions import make_decisions
from service.models_state import ServingModels
from service.schemas import CargoBatch
from service.store import AuditStore, make_engine, migrate
from service.store.ids import new_record_id

ROWS = 1000
REPEATS = 9


def _cpu_us_per_row(step: Callable[[], Any]) -> float:
    """Median CPU time of ``step`` over :data:`REPEATS` runs after one warm-up, in µs per row."""
    step()
    times = []
    for _ in range(REPEATS):
        t0 = time.process_time()
        step()
        times.append(time.process_time() - t0)
    return statistics.median(times) / ROWS * 1e6


def measure() -> dict[str, Any]:
    settings = get_settings()
    engine = make_engine(settings.audit_url)
    migrate(engine)
    store = AuditStore(engine)
    scorer = ServingModels().load(settings, "cargo")
    body = orjson.dumps({"declarations": payloads(settings.data_path, ROWS)})

    def parse() -> list[dict[str, Any]]:
        return [d.model_dump() for d in CargoBatch.model_validate_json(body).declarations]

    records = parse()
    decided = make_decisions(scorer, "cargo", "bench-floor", records, settings.random_share, "compact")
    steps = {
        "parse": parse,
        "decide": lambda: make_decisions(
            scorer, "cargo", "bench-floor", records, settings.random_share, "compact"
        ),
        # each run logs the batch afresh (new ids), durably, as the endpoint does
        "log": lambda: store.append_decisions(
            [dict(e, decision_id=new_record_id()) for e in decided.entries]
        ),
        "respond": lambda: orjson.dumps({"decisions": decided.decisions}),
    }
    per_row = {name: _cpu_us_per_row(step) for name, step in steps.items()}
    engine.dispose()
    total = sum(per_row.values())
    cores = len(os.sched_getaffinity(0))
    return {
        "rows_per_batch": ROWS,
        "cpu_us_per_row": per_row,
        "total_cpu_us_per_row": total,
        "cores": cores,
        "bound_rows_per_s": cores * 1e6 / total,
    }


if __name__ == "__main__":
    print(json.dumps(measure()))
