"""Monitored groups, per-group model metrics and drift references — what the model card and the
proportionality report need from training.

Monitored attributes (``features.schemas.MONITORED_ATTRIBUTES``) are compared as groups: passenger
nationality, sex and age band (from the birth year and the departure year), cargo country of origin.
At training time :func:`oversight_metadata` adds to the bundle metadata (so the model card shows
them): the feature-policy record, the proxy check, metrics per monitored group on the validation
period, and the validation-period distributions that later periods are compared with (PSI).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from training.policy import FeaturePolicy, ProxyCheck
from training.proxy import proxy_check

#: Inclusive lower bounds of the age bands, in years at departure.
AGE_BANDS = ((0, "under 18"), (18, "18–29"), (30, "30–44"), (45, "45–59"), (60, "60 and over"))

#: Groups compared per domain (display attribute → how it is read from a record).
GROUP_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "cargo": ("country_of_origin",),
    "passenger": ("nationality", "sex", "age_band"),
}
GROUP_LABELS = {
    "country_of_origin": "country of origin",
    "nationality": "nationality",
    "sex": "sex",
    "age_band": "age band",
}

#: Raw inputs whose distribution is compared with the validation period (public fields only: they
#: stay in the decision log after personal fields are masked).
DRIFT_INPUTS: dict[str, dict[str, tuple[str, ...]]] = {
    "cargo": {
        "numeric": ("declared_value", "net_mass_kg", "tax_rate"),
        "categorical": ("country_of_departure", "transport_mode", "office_id"),
    },
    "passenger": {
        "numeric": ("bag_weight_kg", "checked_bags", "trips_last_12m", "party_size"),
        "categorical": ("origin_airport", "payment_method", "ticket_type", "carrier"),
    },
}
TOP_CATEGORIES = 12
OTHER = "(other)"
UNKNOWN = ""


def age_band(birth_year: Any, year: Any) -> str:
    try:
        age = int(year) - int(birth_year)
    except (TypeError, ValueError):
        return UNKNOWN
    label = AGE_BANDS[0][1]
    for low, name in AGE_BANDS:
        if age >= low:
            label = name
    return label


def _str_values(values: Any) -> np.ndarray:
    out = np.asarray(pd.Series(values, dtype=object).to_numpy(), dtype=object)
    return np.array([UNKNOWN if v is None or v != v else str(v) for v in out], dtype=object)


def group_columns(domain: str, cols: Mapping[str, Any], years: Any = None) -> dict[str, np.ndarray]:
    """Group labels per row from record columns ("" where the attribute is unknown or masked)."""
    if domain == "cargo":
        return {"country_of_origin": _str_values(cols["country_of_origin"])}
    if years is None:
        years = pd.to_datetime(pd.Series(cols["departure_at"])).dt.year.to_numpy()
    birth = pd.Series(cols["birth_year"], dtype=object).to_numpy()
    return {
        "nationality": _str_values(cols["nationality"]),
        "sex": _str_values(cols["sex"]),
        "age_band": np.array([age_band(b, y) for b, y in zip(birth, years, strict=True)], dtype=object),
    }


def monitored_groups(domain: str, df: pd.DataFrame) -> dict[str, np.ndarray]:
    return group_columns(domain, {c: df[c] for c in df.columns})


# ----------------------------------------------------------------------------- drift


def numeric_reference(values: np.ndarray) -> dict[str, Any]:
    values = values[np.isfinite(values)]
    edges = np.unique(np.quantile(values, np.linspace(0.1, 0.9, 9))) if len(values) else np.array([])
    return {"kind": "numeric", "edges": [float(e) for e in edges], "shares": numeric_shares(values, edges)}


def numeric_shares(values: np.ndarray, edges: Sequence[float] | np.ndarray) -> list[float]:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    bins = np.concatenate([[-np.inf], np.asarray(edges, dtype=np.float64), [np.inf]])
    counts = np.histogram(values, bins=bins)[0] if len(bins) > 2 else np.array([len(values)])
    return [float(c) / max(len(values), 1) for c in counts]


def categorical_reference(values: np.ndarray) -> dict[str, Any]:
    counts = pd.Series(values, dtype=object).dropna().astype(str).value_counts()
    top = [str(k) for k in counts.index[:TOP_CATEGORIES]]
    return {"kind": "categorical", "categories": top, "shares": categorical_shares(values, top)}


def categorical_shares(values: Any, categories: Sequence[str]) -> list[float]:
    series = pd.Series(values, dtype=object).dropna().astype(str)
    if series.empty:
        return [0.0] * (len(categories) + 1)
    counts = series.value_counts()
    shares = [float(counts.get(c, 0)) / len(series) for c in categories]
    return [*shares, max(0.0, 1.0 - sum(shares))]


def psi(reference: Sequence[float], observed: Sequence[float], floor: float = 1e-4) -> float:
    """Population stability index: Σ (o − r) · ln(o / r), shares floored to avoid log(0)."""
    r = np.maximum(np.asarray(reference, dtype=np.float64), floor)
    o = np.maximum(np.asarray(observed, dtype=np.float64), floor)
    return float(np.sum((o - r) * np.log(o / r)))


def drift_reference(domain: str, valid: pd.DataFrame) -> dict[str, Any]:
    spec = DRIFT_INPUTS[domain]
    out: dict[str, Any] = {}
    for name in spec["numeric"]:
        out[name] = numeric_reference(valid[name].to_numpy(dtype=np.float64, na_value=np.nan))
    for name in spec["categorical"]:
        out[name] = categorical_reference(valid[name].to_numpy(dtype=object))
    return out


# ----------------------------------------------------------------------------- per-group metrics


def group_metrics(
    groups: Mapping[str, np.ndarray],
    score: np.ndarray,
    red: np.ndarray,
    inspected: np.ndarray,
    y: np.ndarray,
    min_rows: int = 200,
    top: int = 12,
) -> dict[str, list[dict[str, Any]]]:
    """Validation-period metrics per group: flow share, red share, hit rate, calibration, ROC-AUC."""
    out: dict[str, list[dict[str, Any]]] = {}
    n = len(score)
    for attribute, labels in groups.items():
        counts = pd.Series(labels[labels != UNKNOWN]).value_counts()
        rows = []
        for group in [str(g) for g, c in counts.items() if c >= min_rows][:top]:
            m = labels == group
            insp = m & inspected
            yi = y[insp]
            entry: dict[str, Any] = {
                "group": group,
                "rows": int(m.sum()),
                "share_of_flow": round(float(m.sum()) / n, 4),
                "red_share": round(float(red[m].mean()), 4),
                "mean_score": round(float(score[m].mean()), 4),
                "inspected": int(insp.sum()),
                "hit_rate": round(float(yi.mean()), 4) if insp.any() else None,
                "mean_score_inspected": round(float(score[insp].mean()), 4) if insp.any() else None,
                "roc_auc": None,
            }
            if 5 <= yi.sum() <= len(yi) - 5:
                entry["roc_auc"] = round(float(roc_auc_score(yi, score[insp])), 4)
            rows.append(entry)
        out[attribute] = rows
    return out


def oversight_metadata(
    domain: str,
    df: pd.DataFrame,
    X: np.ndarray,
    is_valid: np.ndarray,
    margin_valid: Any,
    score_valid: Any,
    builder: Any,
    policy_record: dict[str, Any],
    seed: int = 0,
    red_share: float = 0.05,
) -> tuple[dict[str, Any], dict[str, float]]:
    """Bundle metadata for the model card, and the numbers to log to MLflow as metrics."""
    groups = monitored_groups(domain, df)
    config = ProxyCheck.model_validate(policy_record.get("proxy_check", {}))
    proxies = proxy_check(X, builder.feature_names, builder.categorical_indices, groups, config, seed=seed)
    valid = df.loc[is_valid]
    inspected = valid["inspected"].to_numpy(dtype=bool)
    label = builder.label_field
    y = valid[label].fillna(0).to_numpy(dtype=np.int64)
    red = margin_valid >= np.quantile(margin_valid, 1.0 - red_share)
    per_group = group_metrics({k: v[is_valid] for k, v in groups.items()}, score_valid, red, inspected, y)
    metadata = {
        "feature_policy": policy_record,
        "proxy_check": proxies,
        "group_metrics": {"red_share": red_share, "period": "validation", "groups": per_group},
        "drift_reference": drift_reference(domain, valid),
    }
    metrics: dict[str, float] = {}
    for attribute, result in proxies.items():
        if result.get("auc") is not None:
            metrics[f"proxy_auc_{attribute}"] = float(result["auc"])
            metrics[f"proxy_flagged_{attribute}"] = float(result["flagged"])
    return metadata, metrics


__all__ = [
    "AGE_BANDS",
    "DRIFT_INPUTS",
    "GROUP_ATTRIBUTES",
    "FeaturePolicy",
    "age_band",
    "categorical_shares",
    "drift_reference",
    "group_columns",
    "numeric_shares",
    "oversight_metadata",
    "psi",
]
