"""A logged decision as people read it: what was decided, why in words, who reviewed it.

Used by the decisions API (auditor), the oversight pages and the explanation a person concerned
receives. Everything here is derived from the logged record alone (input, score, channel,
thresholds, explanation, reviews, outcomes), so it explains what was decided *then*, whatever model
is serving now.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from service.oversight.charts import Step, waterfall

CHANNEL_WORDS = {
    "red": "red channel (inspection)",
    "yellow": "yellow channel (document check)",
    "green": "green channel (release)",
}
SUBJECT = {"cargo": "declaration", "passenger": "passenger record"}


def strength(contribution: float) -> str:
    c = abs(contribution)
    return "strongly" if c >= 1.0 else "moderately" if c >= 0.3 else "slightly"


def margin_of(explanation: dict[str, Any]) -> float:
    """Base value plus every contribution: the worded ones and a compact explanation's remaining."""
    return float(explanation["base_value"]) + sum(c for _, c in contribution_pairs(explanation))


def contribution_pairs(explanation: dict[str, Any]) -> list[tuple[str, float]]:
    """(what it is, contribution) for every feature, largest first: a worded one as ``label = value``,
    one a compact explanation left unworded by its feature name."""
    pairs = [
        (f"{c['label']} = {_short(c['value'])}", float(c["contribution"]))
        for c in explanation["contributions"]
    ]
    remaining = explanation.get("remaining") or {"features": [], "contributions": []}
    pairs += [
        (str(f), float(c)) for f, c in zip(remaining["features"], remaining["contributions"], strict=True)
    ]
    return pairs


def reasons(explanation: dict[str, Any], k: int = 5, min_abs: float = 0.05) -> list[dict[str, Any]]:
    """The ``k`` largest contributions, each as a sentence with its direction and strength."""
    out = []
    for c in explanation["contributions"][:k]:
        value = float(c["contribution"])
        if abs(value) < min_abs:
            continue
        text = str(c["reason"])
        # The stored reason ends with "(raises risk)" / "(lowers risk)"; say how much instead.
        for suffix in (" (raises risk)", " (lowers risk)"):
            text = text.removesuffix(suffix)
        direction = "raised" if value > 0 else "lowered"
        out.append(
            {
                "feature": c["feature"],
                "label": c["label"],
                "text": text,
                "direction": "raises" if value > 0 else "lowers",
                "sentence": f"{text[:1].upper()}{text[1:]}: "
                f"this {strength(value)} {direction} the risk score.",
                "contribution": value,
            }
        )
    return out


def selection_sentence(domain: str, selection: str, channel: str, effective: str) -> str:
    what = SUBJECT[domain]
    if selection == "random":
        return (
            f"This {what} was drawn at random for inspection, whatever its score: a small share of all "
            f"{what}s is, so that the risk model can be checked against an unbiased sample."
        )
    if effective == "red" and channel != "red":
        return (
            f"An officer selected this {what} for inspection (the model had put it in the {channel} channel)."
        )
    if selection == "risk" and effective == "red":
        return f"This {what} was selected for inspection because its risk score reached the red channel."
    if selection == "risk":
        return (
            f"The risk score put this {what} in the red channel, but an officer moved it to the "
            f"{effective} channel: it was not inspected on that ground."
        )
    return f"This {what} was not selected for inspection: {CHANNEL_WORDS.get(effective, effective)}."


def review_sentence(reviews: list[dict[str, Any]]) -> str:
    if not reviews:
        return "No officer has reviewed this decision yet."
    last = reviews[-1]
    when = _when(last["created_at"])
    if last["action"] == "confirm":
        return f"A customs officer reviewed it on {when} and confirmed the {last['channel']} channel."
    return (
        f"A customs officer reviewed it on {when} and changed the channel to {last['channel']}: "
        f"{last['reason']}"
    )


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%d %B %Y, %H:%M UTC")
    return str(value)


def decision_view(decision: dict[str, Any], top: int = 12) -> dict[str, Any]:
    """Everything a page or an export shows about one logged decision."""
    explanation = decision["explanation"]
    domain = decision["domain"]
    margin = margin_of(explanation)
    steps = [Step(what, contribution) for what, contribution in contribution_pairs(explanation)]
    t = decision["thresholds"]
    inputs = [{"field": k, "value": v, "personal": False} for k, v in decision["input_public"].items()]
    if decision.get("input_personal"):
        inputs += [{"field": k, "value": v, "personal": True} for k, v in decision["input_personal"].items()]
    return {
        "decision": decision,
        "domain": domain,
        "subject": SUBJECT[domain],
        "score": float(decision["score"]),
        "margin": margin,
        "channel": decision["channel"],
        "effective_channel": decision["effective_channel"],
        "channel_words": CHANNEL_WORDS.get(decision["effective_channel"], decision["effective_channel"]),
        "selected": decision["selection"] == "random" or decision["effective_channel"] == "red",
        "selection_sentence": selection_sentence(
            domain, decision["selection"], decision["channel"], decision["effective_channel"]
        ),
        "score_sentence": (
            f"Risk score {decision['score']:.3f} (the estimated probability of a finding if inspected); "
            f"yellow begins at {t['yellow_score']:.3f}, red at {t['red_score']:.3f}."
        ),
        "review_sentence": review_sentence(decision["reviews"]),
        "reviewed": bool(decision["reviews"]),
        "reasons": reasons(explanation),
        "waterfall": waterfall(float(explanation["base_value"]), steps, top=top),
        "inputs": inputs,
        "model": decision["model"],
        "model_url": f"/oversight/models/{domain}/{decision['model']['version']}",
    }


def _short(value: Any) -> str:
    if value is None:
        return "missing"
    if isinstance(value, float):
        if math.isnan(value):
            return "missing"
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    text = str(value)
    return text if len(text) <= 24 else text[:23] + "…"
