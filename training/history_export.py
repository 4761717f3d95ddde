"""The decision log as a training history: the loop from officers' inspections back to training.

Each logged decision becomes one row in the format ``borderrisk train`` reads: the declaration's
fields, ``inspected`` (an outcome was recorded), ``selection`` (``random`` stays ``random`` — the
unbiased sample; ``risk`` and officer-chosen inspections become ``targeted``) and the label.
A selected decision whose outcome is not recorded yet is exported as not inspected: its label is
unknown. Passenger records whose personal fields were masked by retention lack model inputs; they
are counted and left out, never dropped silently.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from features.frames import LABELS
from features.schemas import SCHEMAS

_TIME_FIELDS = ("declared_at", "departure_at", "booking_at", "document_expiry")


@dataclass
class ExportedHistory:
    frame: pd.DataFrame
    masked_skipped: int


def history_frame(domain: str, items: Iterable[dict[str, Any]]) -> ExportedHistory:
    label = LABELS[domain]
    fields = list(SCHEMAS[domain].model_fields)
    rows, masked = [], 0
    for item in items:
        record = dict(item["features"])
        if domain == "passenger":
            personal = item.get("personal")
            if personal is None:
                masked += 1
                continue
            record |= personal
        inspected = bool(item["has_outcome"])
        selection = item["selection"]
        row = {f: record.get(f) for f in fields}
        row["inspected"] = inspected
        row["selection"] = ("random" if selection == "random" else "targeted") if inspected else "none"
        row[label] = (1 if item["finding"] else 0) if inspected else None
        if domain == "cargo":
            row["revenue_recovered"] = (item["revenue_recovered"] or 0.0) if inspected else None
        row["decision_id"] = item["decision_id"]
        row["model_version"] = item["model_version"]
        row["score"] = item["score"]
        row["decided_at"] = item["created_at"]
        rows.append(row)
    frame = pd.DataFrame(
        rows,
        columns=[*fields, "inspected", "selection", label]
        + (["revenue_recovered"] if domain == "cargo" else [])
        + ["decision_id", "model_version", "score", "decided_at"],
    )
    for col in _TIME_FIELDS:
        if col in frame:
            frame[col] = (
                pd.to_datetime(frame[col], utc=True, format="ISO8601")
                .dt.tz_localize(None)
                .astype("datetime64[us]")
            )
    frame["decided_at"] = (
        pd.to_datetime(frame["decided_at"], utc=True, format="ISO8601")
        .dt.tz_localize(None)
        .astype("datetime64[us]")
    )
    frame[label] = frame[label].astype("Int8")
    frame["inspected"] = frame["inspected"].astype(bool)
    if "revenue_recovered" in frame:
        frame["revenue_recovered"] = frame["revenue_recovered"].astype("Float64")
    return ExportedHistory(frame, masked)
