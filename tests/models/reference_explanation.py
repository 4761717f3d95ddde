"""The explanation as it was computed before the fast paths: one feature at a time, straight from the
record, each reason re-deriving what it needs. Kept as the tests' reference for the words, values and
order of :meth:`models.scoring.Scorer.explanation`, ``explanations`` and ``top_reason_columns``.

It reads only the builder's frozen state (vocabularies, histories, labels); the derived fields (HS6,
number keys, transit airport) and raw categories are recomputed here as the old code did, so a
change in the builder's own derivations shows up as a difference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from features.builder import FeatureBuilder
from features.common import WEEKDAYS


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _text(value: object) -> str | None:
    return None if _missing(value) else str(value)


def _route(value: Any) -> list[str]:
    if value is None or (not isinstance(value, list | tuple | np.ndarray) and _missing(value)):
        return []
    return [str(v) for v in value]


def _number_key(value: object) -> str | None:
    if _missing(value):
        return None
    v = float(value)  # type: ignore[arg-type]
    return None if v != v else f"{v:.12g}"


def derived(builder: FeatureBuilder, row: Mapping[str, Any]) -> dict[str, Any]:
    """The record's fields with the derived ones, as the old ``with_derived`` of one row gave them."""
    out = dict(row)
    if builder.domain == "cargo":
        hs = _text(row["hs_code"])
        out["hs6"] = None if hs is None else hs[:6]
        out["value_key"] = _number_key(row["declared_value"])
        out["mass_key"] = _number_key(row["net_mass_kg"])
    else:
        stops = _route(row["route"])
        out["transit_airport"] = stops[1] if len(stops) > 2 else None
    return out


def raw_category(builder: FeatureBuilder, name: str, row: Mapping[str, Any]) -> str | None:
    if builder.domain == "passenger" and name == "transit_airport":
        return derived(builder, row)["transit_airport"]  # type: ignore[no-any-return]
    value = _text(row[builder.categoricals[name][0]])
    if name == "hs_chapter" and value is not None:
        return value[:2]
    return value


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def describe_history(builder: FeatureBuilder, name: str, row: Mapping[str, Any]) -> str:
    h = next(
        h for h in builder.histories if name in {f"{h.name}_{s}" for s in ("seen", "inspected", "hit_rate")}
    )
    values = derived(builder, row)
    parts = [values[f] for f in h.fields]
    if any(_missing(p) for p in parts):  # a file's NaN is missing, as a request's None is
        return " × ".join(builder.entity_label(f) for f in h.fields) + ": not given"
    who = " × ".join(f"{builder.entity_label(f)} {p}" for f, p in zip(h.fields, parts, strict=True))
    seen, inspected, hits = h.totals.get("|".join(str(p) for p in parts), [0, 0, 0])
    if seen == 0:
        return f"{who}: never seen before"
    return f"{who}: {_count(hits, 'finding')} in {_count(inspected, 'inspection')}, {seen} past records"


def _cargo(builder: FeatureBuilder, name: str, row: Mapping[str, Any], value: float) -> str:
    hs6 = str(row["hs_code"])[:6]
    origin = row["country_of_origin"]
    if name == "unit_value_ratio":
        where = f"HS {hs6} from {origin}"
        if value < 1:
            return f"declared unit value {100 * (1 - value):.0f} % below the reference for {where}"
        return f"declared unit value {value:.1f}× the reference for {where}"
    if name == "tax_rate":
        return f"tariff rate {row['tax_rate']:g} % for HS {hs6}"
    if name == "tax_rate_gap":
        if np.isnan(value):
            return f"no usual tariff rate known for HS {hs6}"
        usual = row["tax_rate"] - value
        if abs(value) < 1e-9:
            return f"tariff rate {row['tax_rate']:g} %, the usual rate for HS {hs6}"
        side = "below" if value < 0 else "above"
        gap = f"{abs(value):g} points {side} the usual {usual:g} %"
        return f"tariff rate {row['tax_rate']:g} %, {gap} for HS {hs6}"
    if name == "hs_heading":
        return f"HS heading {hs6[:4]}"
    if name == "transshipment":
        if value:
            return f"origin {origin} differs from departure {row['country_of_departure']}"
        return f"shipped directly from its origin {origin}"
    if name in ("has_seller", "has_courier"):
        who = name.removeprefix("has_")
        return f"{who} {row[f'{who}_id']}" if value else f"no {who} named"
    if name in ("log_net_mass", "log_declared_value"):
        field = "net_mass_kg" if name == "log_net_mass" else "declared_value"
        return f"{field.replace('_', ' ')} {row[field]:,.2f}"
    if name == "weekday":
        return f"declared on a {WEEKDAYS[int(value)]}"
    if name == "hour":
        return f"declared at {int(value):02d}:00 UTC"
    if name in builder.categoricals:
        raw = raw_category(builder, name, row)
        known = raw in builder.vocabularies[name].categories
        return f"{builder.category_label(name)} {raw}" + ("" if known else " (rare or unseen in training)")
    return describe_history(builder, name, row)


def _passenger(builder: FeatureBuilder, name: str, row: Mapping[str, Any], value: float) -> str:
    if name == "booking_lead_hours":
        if value < 72:
            return f"booked {value:.0f} h before departure"
        return f"booked {value / 24:.0f} days before departure"
    if name == "n_transits":
        return f"route {'–'.join(_route(row['route']))}" if value else "direct flight"
    if name == "party_size":
        return "travelling alone" if value == 1 else f"party of {int(value)}"
    if name == "checked_bags":
        return f"{int(value)} checked bag{'s' if value != 1 else ''}"
    if name == "bag_weight_kg":
        return f"bags weigh {value:.0f} kg in total"
    if name == "bag_weight_per_bag":
        return "no checked bags" if np.isnan(value) else f"checked bags average {value:.0f} kg each"
    if name == "document_days_left":
        return f"travel document expires {value:.0f} days after departure"
    if name == "trips_last_12m":
        return f"{int(value)} trips in the last 12 months"
    if name == "has_agency":
        return f"booked through agency {row['travel_agency_id']}" if value else "booked without an agency"
    if name == "departure_hour":
        return f"departure at {int(value):02d}:00 UTC"
    if name == "departure_weekday":
        return f"departure on a {WEEKDAYS[int(value)]}"
    if name == "transit_airport":
        stops = _route(row["route"])
        return f"via {stops[1]}" if len(stops) > 2 else "no transit"
    if name in builder.categoricals:
        raw = row[name]
        known = raw in builder.vocabularies[name].categories
        text = (
            {"one_way": "one-way ticket", "return": "return ticket"}.get(raw)
            if name == "ticket_type"
            else None
        )
        if name == "payment_method":
            text = f"paid by {raw}"
        return (text or f"{builder.category_label(name)} {raw}") + (
            "" if known else " (rare or unseen in training)"
        )
    return describe_history(builder, name, row)


def reason(
    builder: FeatureBuilder, name: str, row: Mapping[str, Any], value: float, contribution: float
) -> str:
    describe = _cargo if builder.domain == "cargo" else _passenger
    text = describe(builder, name, row, value)
    return f"{text} ({'raises' if contribution > 0 else 'lowers'} risk)"


def display_value(builder: FeatureBuilder, index: int, row: Mapping[str, Any], value: float) -> Any:
    feature = builder.feature_defs[index]
    if feature.kind == "categorical":
        decoded = builder.vocabularies[feature.name].decode(value)
        return raw_category(builder, feature.name, row) if decoded is not None else None
    return None if np.isnan(value) else float(value)


def explanation(
    builder: FeatureBuilder,
    contrib: np.ndarray,
    row: Mapping[str, Any],
    x: np.ndarray,
    top: int | None = None,
) -> dict[str, Any]:
    order = np.argsort(-np.abs(contrib[:-1]), kind="stable")
    if top is not None:
        order = order[:top]
    names = builder.feature_names
    items = []
    for i in order:
        c = float(contrib[i])
        items.append(
            {
                "feature": names[i],
                "label": builder.feature_defs[i].label,
                "value": display_value(builder, int(i), row, float(x[i])),
                "contribution": c,
                "reason": reason(builder, names[i], row, float(x[i]), c),
            }
        )
    return {"base_value": float(contrib[-1]), "unit": "log-odds", "contributions": items}


def top_reasons(
    builder: FeatureBuilder, contrib: np.ndarray, row: Mapping[str, Any], x: np.ndarray, k: int = 3
) -> list[str]:
    order = np.argsort(-np.abs(contrib[:-1]), kind="stable")[:k]
    names = builder.feature_names
    return [reason(builder, names[i], row, float(x[i]), float(contrib[i])) for i in order]


def same(a: Any, b: Any) -> bool:
    """Equal, with equal types all the way down (NaN equals NaN): ``1 == 1.0`` is not enough."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(p, q) for p, q in zip(a, b, strict=True))
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    return bool(a == b)
