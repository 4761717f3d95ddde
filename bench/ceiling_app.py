"""The service with the decision itself taken out, as a ceiling for the request-path benchmark.

Everything a scoring request goes through — uvicorn, the middleware (request id, body limit,
metrics, the JSON log line), API-key authentication, body validation, the thread-pool hop and an
answer of the real size — but the decision (features, explanation, decision log) is computed once
per domain and then answered from memory. What this serves per second bounds what any decision
path can reach on this stack and machine. Never a way to run the service: benchmarks only.

Run as ``python -m bench.serve bench.ceiling_app:app``; it reads the same ``BORDERRISK_*`` settings
as the service.
"""

from __future__ import annotations

from typing import Any

import service.routers.score as score
from service.app import create_app

_answers: dict[str, list[dict[str, Any]]] = {}
_decide = score.decide


def _remembered(store, scorer, domain, officer, records, random_share, explanation="full"):  # type: ignore[no-untyped-def]
    key = f"{domain}/{explanation}/{len(records)}"
    if key not in _answers:
        _answers[key] = _decide(store, scorer, domain, officer, records, random_share, explanation)
    return _answers[key]


score.decide = _remembered  # type: ignore[assignment]
app = create_app()
