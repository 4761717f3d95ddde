"""Model cards: what a registered model version is, from its bundle metadata.

The serving model's card comes from memory; an older version's bundle is fetched from the registry
(verified against its SHA-256 like any served bundle) once and its metadata kept.
"""

from __future__ import annotations

import threading
from typing import Any

from features.schemas import MONITORED_ATTRIBUTES
from training.fairness import GROUP_LABELS

_cache: dict[tuple[str, str, str], dict[str, Any]] = {}
_lock = threading.Lock()

LIMITATIONS = {
    "cargo": [
        "Trained on past inspections: declarations like those rarely inspected before are scored with "
        "less evidence (the random share is the only unbiased sample).",
        "The history of an importer, declarant or HS code is frozen at the training cut-off; new "
        "entities are scored as never seen until the next release.",
        "Unit-value references need at least 5 declarations of an HS code (and origin); rarer goods "
        "fall back to the HS code, the heading, or the overall median.",
        "The score is a probability of a finding if inspected, calibrated on the validation period; "
        "it is decision support, and an officer decides every inspection.",
    ],
    "passenger": [
        "Trained on past inspections chosen by an earlier targeting practice: groups that practice "
        "over-selected are over-represented among the labels (see the proportionality report).",
        "Nationality, sex and birth year are never model inputs, but features such as the origin "
        "airport or document type can carry them (see the proxy check below).",
        "Travel agency and flight histories are frozen at the training cut-off.",
        "The score is a probability of a finding if inspected, calibrated on the validation period; "
        "it is decision support, and an officer decides every inspection.",
    ],
}


def card_of(metadata: dict[str, Any], *, version: str, sha256: str, serving: bool) -> dict[str, Any]:
    """The model card (a dict the template renders) of a bundle's metadata."""
    domain = metadata["domain"]
    metrics = {k: v for k, v in metadata.get("metrics", {}).items() if isinstance(v, int | float) and v == v}
    headline = [
        (k, metrics[k])
        for k in (
            "valid_roc_auc",
            "valid_pr_auc",
            "valid_precision_at_1pct",
            "valid_precision_at_5pct",
            "valid_recall_at_5pct",
            "valid_precision_at_10pct",
            "valid_brier",
            "valid_ece",
            "valid_random_roc_auc",
            "valid_random_precision_at_5pct",
        )
        if k in metrics
    ]
    group_metrics = metadata.get("group_metrics", {})
    return {
        "domain": domain,
        "name": metadata.get("name"),
        "version": version,
        "sha256": sha256,
        "serving": serving,
        "created_at": metadata.get("created_at"),
        "training_period": metadata.get("training_period", {}),
        "validation_period": metadata.get("validation_period", {}),
        "data_fingerprint": metadata.get("data_fingerprint"),
        "rows": metadata.get("rows", {}),
        "calibration": metadata.get("calibration"),
        "features": metadata.get("features", []),
        "policy": metadata.get("feature_policy"),
        "proxy": metadata.get("proxy_check", {}),
        "group_metrics": group_metrics.get("groups", {}),
        "group_red_share": group_metrics.get("red_share"),
        "group_labels": GROUP_LABELS,
        "monitored": MONITORED_ATTRIBUTES.get(domain, ()),
        "headline": headline,
        "metrics": sorted(metrics.items()),
        "limitations": LIMITATIONS.get(domain, []),
        "versions": metadata.get("versions", {}),
    }


def model_card(app_state: Any, domain: str, version: str) -> dict[str, Any] | None:
    """The card of ``domain`` model ``version``: the serving one, or fetched from the registry."""
    scorer = app_state.models.get(domain)
    if scorer is not None and scorer.version == version:
        card = card_of(scorer.bundle.metadata, version=version, sha256=scorer.sha256, serving=True)
        card["thresholds"] = scorer.thresholds.as_dict()
        return card
    settings = app_state.settings
    key = (settings.mlflow_uri, domain, version)
    with _lock:
        cached = _cache.get(key)
    if cached is None:
        from training.registry import fetch_bundle  # mlflow: only for versions no longer serving

        try:
            bundle, reg = fetch_bundle(settings, domain, version)
        except Exception:  # unknown version, unreachable registry, bundle that does not verify
            return None
        cached = {"metadata": bundle.metadata, "sha256": reg.sha256}
        with _lock:
            _cache[key] = cached
    card = card_of(cached["metadata"], version=version, sha256=cached["sha256"], serving=False)
    card["thresholds"] = None
    return card
