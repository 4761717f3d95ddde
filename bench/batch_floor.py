"""What the batch endpoint cannot go beyond on this machine: its own work for every row, in-process.

The endpoint spends CPU on each row in four steps that no server, protocol or process layout takes
away: reading the declaration (JSON → validated record), deciding it (features, exact explanation,
words, channel), logging it (checks, canonical JSON, chain hash, durable commit) and writing its
answer. Here each step runs in one thread of one process on a fresh SQLite log, on 1,000-declaration
batches of the benchmark's payloads in the compact form, with no HTTP, no worker processes and no
hand-off to the log writer — each of those only adds. So two cores' worth of CPU divided by the sum
is an upper bound on the endpoint's rows per second, measured in the same run as the endpoint.

The same is measured for the single-record endpoint, whose records the decision queue decides a few
at a time (:mod:`service.decision_queue`: each explained as if alone, the group logged in one
transaction): groups of :data:`GROUP` records, the full explanation, one log transaction a group. It
is about what a request of the 2 workers × 16 clients run costs besides the server's own work, which
the ceiling run (the decision answered from memory) measures; the writer there may commit both
workers' groups in one transaction, which saves a part of the log's per-transaction cost.

The process binds itself to one CPU, as a service worker is bound (:mod:`service.affinity`), so
that the exact-explanation kernels run as they do there, on one thread.

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
from features.schemas import CargoDeclaration
from service.decisions import make_decisions
from service.models_state import ServingModels
from service.schemas import CargoBatch
from service.store import AuditStore, make_engine, migrate
from service.store.ids import new_record_id

ROWS = 1000
REPEATS = 9
#: Records decided together on the single-record path: at 16 clients over 2 workers, up to 8 wait
#: in a worker's queue while its decision thread is busy.
GROUP = 8


def _cpu_us_per_row(step: Callable[[], Any]) -> float:
    """Median CPU time of ``step`` (which handles :data:`ROWS` rows) over :data:`REPEATS` runs after
    one warm-up, in µs per row."""
    step()
    times = []
    for _ in range(REPEATS):
        t0 = time.process_time()
        step()
        times.append(time.process_time() - t0)
    return statistics.median(times) / ROWS * 1e6


def measure() -> dict[str, Any]:
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})
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
    total = sum(per_row.values())

    # the single-record path: ROWS records, GROUP at a time, each body read and answered on its own
    bodies = [orjson.dumps(r) for r in payloads(settings.data_path, ROWS)]
    singles = [CargoDeclaration.model_validate_json(b).model_dump() for b in bodies]
    groups = [singles[i : i + GROUP] for i in range(0, ROWS, GROUP)]

    def decide_groups() -> list[Any]:
        return [
            make_decisions(scorer, "cargo", "bench-floor", g, settings.random_share, as_alone=True)
            for g in groups
        ]

    made = decide_groups()
    single_steps = {
        "parse": lambda: [CargoDeclaration.model_validate_json(b).model_dump() for b in bodies],
        "decide": decide_groups,
        "log": lambda: [
            store.append_decisions([dict(e, decision_id=new_record_id()) for e in m.entries]) for m in made
        ],
        "respond": lambda: [orjson.dumps(d) for m in made for d in m.decisions],
    }
    per_record = {name: _cpu_us_per_row(step) for name, step in single_steps.items()}
    engine.dispose()
    cores = len(cpus)
    return {
        "rows_per_batch": ROWS,
        "cpu_us_per_row": per_row,
        "total_cpu_us_per_row": total,
        "cores": cores,
        "bound_rows_per_s": cores * 1e6 / total,
        "single": {
            "group": GROUP,
            "cpu_us_per_record": per_record,
            "total_cpu_us_per_record": sum(per_record.values()),
        },
    }


if __name__ == "__main__":
    print(json.dumps(measure()))
