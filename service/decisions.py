"""From a validated record to a logged decision.

A decision is written to the audit store *before* its response is built: if the store cannot write,
the caller gets 503 and no score — never a score that is not logged. Random selection comes from the
operating system's secure source, so nobody can predict or steer which declarations it picks.
"""

from __future__ import annotations

import math
import secrets
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import structlog
from fastapi import HTTPException

from features.builder import columns_of_record
from features.schemas import PASSENGER_PERSONAL_FIELDS
from models.scoring import Scorer, records_to_columns
from service import metrics
from service.store import AuditStore, StoreUnavailable
from service.store.ids import new_record_id

log = structlog.get_logger(__name__)
_random = secrets.SystemRandom()

#: Contributions a compact explanation words (label, value, reason); the rest are names and numbers.
#: The oversight pages and the explanation for the person concerned show at most this many.
COMPACT_WORDED = 12
ExplanationForm = Literal["full", "compact"]
#: The 503 of a service whose decision log is not open (yet: the service keeps trying to open it).
LOG_NOT_OPEN = "the decision log is not available: no score is returned unlogged"


def selection_for(channel: str, random_share: float) -> str:
    """``random`` when drawn (whatever the score: an unbiased sample of the whole flow), else
    ``risk`` for the red channel, else ``none``."""
    if random_share > 0 and _random.random() < random_share:
        return "random"
    return "risk" if channel == "red" else "none"


def split_personal(domain: str, record: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Public and personal parts of the input; personal fields are masked after the retention period."""
    if domain != "passenger":
        return dict(record), None
    personal = {k: record[k] for k in PASSENGER_PERSONAL_FIELDS if k in record}
    return {k: v for k, v in record.items() if k not in personal}, personal


def _finite_values(explanation: dict[str, Any]) -> dict[str, Any]:
    """Feature values JSON (and so the response and the chained log) can carry: a derived value that
    is infinite — a declared value over a vanishingly small mass, say — is shown as text.

    The values shown are the model row's (NaN already shown as None) or category texts, so only a
    record whose model row holds an infinity needs this (``decide`` asks the row first)."""
    for item in explanation["contributions"]:
        value = item["value"]
        if isinstance(value, float) and not math.isfinite(value):
            item["value"] = None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return explanation


def _jsonable(record: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in record.items():
        out[k] = v.isoformat() if hasattr(v, "isoformat") else v
    return out


@dataclass
class Decided:
    """Decisions made but not yet logged: the response bodies and the decision-log entries."""

    domain: str
    decisions: list[dict[str, Any]]
    entries: list[dict[str, Any]]

    def one_by_one(self) -> list[Decided]:
        return [Decided(self.domain, [d], [e]) for d, e in zip(self.decisions, self.entries, strict=True)]


def decide(
    store: AuditStore | None,
    scorer: Scorer,
    domain: str,
    officer: str | Sequence[str],
    records: Sequence[Mapping[str, Any]],
    random_share: float,
    explanation: ExplanationForm = "full",
) -> list[dict[str, Any]]:
    """Score, explain, select and log a batch of records, in one transaction of the decision log
    (:func:`make_decisions`, then :func:`log_decisions`)."""
    if store is None:
        raise HTTPException(503, LOG_NOT_OPEN)
    decided = make_decisions(scorer, domain, officer, records, random_share, explanation)
    log_decisions(store, [decided])
    return decided.decisions


def make_decisions(
    scorer: Scorer,
    domain: str,
    officer: str | Sequence[str],
    records: Sequence[Mapping[str, Any]],
    random_share: float,
    explanation: ExplanationForm = "full",
    *,
    as_alone: bool = False,
) -> Decided:
    """Score, explain and select a batch of records; nothing is logged yet.

    ``officer`` is the one officer of a batch request, or one per record (the single-record requests
    that :mod:`service.decision_queue` decides together). ``explanation`` is ``full`` (every
    contribution worded) or ``compact`` (the largest :data:`COMPACT_WORDED` worded, every other one as
    a name and its exact number); the log holds the explanation the caller receives. ``as_alone``:
    each record gets, bit for bit, the decision it would get alone (the single-record endpoints'
    records, whatever else they are decided with)."""
    one = len(records) == 1
    officers = [officer] * len(records) if isinstance(officer, str) else list(officer)
    if len(officers) != len(records):
        raise ValueError(f"{len(officers)} officers for {len(records)} records")
    columns = columns_of_record(records[0]) if one else records_to_columns(records)
    scored = scorer.score_columns(columns, row_by_row=as_alone)
    assert scored.contributions is not None
    if explanation == "compact":
        explanations = scorer.explanations(scored, records, worded=COMPACT_WORDED)
    elif one:
        explanations = [scorer.explanation(scored.contributions[0], records[0], x=scored.X[0])]
    else:
        explanations = scorer.explanations(scored, records)
    now = datetime.now(UTC)
    thresholds = scorer.thresholds.as_dict()
    model = scorer.model_info
    decisions: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    infinite = np.isinf(scored.X).any(axis=1).tolist()
    for i, record in enumerate(records):
        channel = scored.channel[i]
        selection = selection_for(channel, random_share)
        explained = _finite_values(explanations[i]) if infinite[i] else explanations[i]
        public, personal = split_personal(domain, _jsonable(record))
        decision_id = new_record_id()
        score = float(scored.score[i])
        entries.append(
            {
                "decision_id": decision_id,
                "created_at": now,
                "domain": domain,
                "officer": officers[i],
                "model": model,
                "input_public": public,
                "input_personal": personal,
                "score": score,
                "channel": channel,
                "selection": selection,
                "thresholds": thresholds,
                "explanation": explained,
            }
        )
        decisions.append(
            {
                "decision_id": decision_id,
                "domain": domain,
                "model": model,
                "score": score,
                "channel": channel,
                "selection": selection,
                "inspect": selection != "none",
                "thresholds": {"yellow": thresholds["yellow_score"], "red": thresholds["red_score"]},
                "explanation": explained,
            }
        )
    return Decided(domain, decisions, entries)


def log_decisions(store: AuditStore, batches: Sequence[Decided]) -> None:
    """Log the decisions of ``batches`` in one transaction: all of them or, on any error, none.

    Raises 503 when the decision log cannot be written (no score may be returned unlogged); any
    other error (an entry the log refuses) leaves nothing written, so the caller may log the
    batches again one by one to find the one at fault."""
    entries = [e for b in batches for e in b.entries]
    try:
        store.append_decisions(entries)
    except StoreUnavailable as exc:
        metrics.AUDIT_ERRORS.labels("append_decision").inc()
        domains = sorted({b.domain for b in batches})
        log.error("decision_log_unavailable", error=str(exc), domains=domains, count=len(entries))
        raise HTTPException(
            503, "the decision log cannot be written; no score is returned unlogged"
        ) from None
    for b in batches:
        scores = metrics.SCORES.labels(b.domain)
        for d in b.decisions:
            scores.observe(d["score"])
        counts = Counter((d["channel"], d["selection"]) for d in b.decisions)
        for (channel, selection), n in counts.items():
            metrics.DECISIONS.labels(b.domain, channel, selection).inc(n)
