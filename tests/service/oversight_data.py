"""Put an inspection history into a decision log, as the service and its officers would have made it.

Each history row becomes a real decision of the given scorer (score, channel, exact explanation),
dated at its departure. Where the history's legacy rule targeted a row that the model did not put
in red, an officer override to red is recorded — so a ``targeting_bias`` of the history becomes a
bias of the human selections in the log — and every selected row gets its outcome: the history's
own where it was inspected, else a draw from the true probability ``oracle_p``.
"""

from __future__ import annotations

import uuid
from datetime import UTC

import numpy as np
import pandas as pd

from features.schemas import SCHEMAS
from models.scoring import Scorer, records_to_columns
from service.decisions import _jsonable, split_personal
from service.store import AuditStore
from tests.conftest import record_of

OFFICER = "legacy-desk"


def plant_history(store: AuditStore, scorer: Scorer, df: pd.DataFrame, seed: int = 0) -> list[str]:
    domain = scorer.bundle.domain
    time_field = "declared_at" if domain == "cargo" else "departure_at"
    label = "fraud" if domain == "cargo" else "finding"
    schema = SCHEMAS[domain]
    records = [schema.model_validate(record_of(row)).model_dump() for _, row in df.iterrows()]
    scored = scorer.score_columns(records_to_columns(records))
    assert scored.contributions is not None
    thresholds = scorer.thresholds.as_dict()
    rng = np.random.default_rng(seed)
    entries, ids = [], []
    for i, record in enumerate(records):
        public, personal = split_personal(domain, _jsonable(record))
        did = str(uuid.uuid4())
        ids.append(did)
        entries.append(
            {
                "decision_id": did,
                "created_at": pd.Timestamp(df[time_field].iloc[i]).tz_localize(UTC).to_pydatetime(),
                "domain": domain,
                "officer": OFFICER,
                "model": scorer.model_info,
                "input_public": public,
                "input_personal": personal,
                "score": float(scored.score[i]),
                "channel": scored.channel[i],
                "selection": "random"
                if df["selection"].iloc[i] == "random"
                else ("risk" if scored.channel[i] == "red" else "none"),
                "thresholds": thresholds,
                "explanation": scorer.explanation(scored.contributions[i], record, x=scored.X[i]),
            }
        )
    for start in range(0, len(entries), 1000):
        store.append_decisions(entries[start : start + 1000])
    for i, entry in enumerate(entries):
        targeted = df["selection"].iloc[i] == "targeted"
        when = entry["created_at"]
        if targeted and entry["channel"] != "red" and entry["selection"] != "random":
            store.append_review(
                entry["decision_id"],
                OFFICER,
                "override",
                "red",
                "targeted by the earlier rule",
                created_at=when,
            )
        selected = entry["selection"] != "none" or targeted
        if not selected:
            continue
        if bool(df["inspected"].iloc[i]):
            finding = bool(df[label].iloc[i])
        else:
            finding = bool(rng.random() < float(df["oracle_p"].iloc[i]))
        store.append_outcome(entry["decision_id"], OFFICER, finding, created_at=when)
    return ids
