"""The service with the decision itself taken out, as a ceiling for the request-path benchmark.

Everything a scoring request goes through — uvicorn, the middleware (request id, body limit,
metrics, the JSON log line), API-key authentication, body validation, the hand-off to the decision
threads and an answer of the real size — but the decision (features, explanation, decision log) is
made once per batch size and then answered from memory, and nothing is logged. What this serves per
second bounds what any decision path can reach on this stack and machine. Never a way to run the
service: benchmarks only.

Run as ``python -m bench.serve bench.ceiling_app:app``; it reads the same ``BORDERRISK_*`` settings
as the service.
"""

from __future__ import annotations

import service.decisions as decisions
from service.app import create_app

_answers: dict[str, decisions.Decided] = {}
_make = decisions.make_decisions


def _remembered(scorer, domain, officer, records, random_share, explanation="full", **kw):  # type: ignore[no-untyped-def]
    key = f"{domain}/{explanation}/{len(records)}"
    if key not in _answers:
        _answers[key] = _make(scorer, domain, officer, records, random_share, explanation, **kw)
    return _answers[key]


def _not_logged(store, batches):  # type: ignore[no-untyped-def]
    return None


decisions.make_decisions = _remembered  # type: ignore[assignment]
decisions.log_decisions = _not_logged  # type: ignore[assignment]
app = create_app()
