"""Cargo features: valuation, routing, tariff incentives and the history of the parties involved.

Entity histories (past declarations, inspections and smoothed hit rate, as of each declaration's
day in training and frozen at the cut-off in service) cover the parties (importer, declarant, seller),
the goods (HS6) and their combinations, after DATE (Kim et al., KDD 2020): importer × HS, HS × origin,
HS × departure, HS × tax type, office × importer, the *lane* (HS × origin × departure × tax type) and
the *consignment* (HS × declared value × net mass: the same goods declared again with the same value
and mass, as a repeat shipment is).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from features.builder import FeatureBuilder
from features.common import WEEKDAYS, Columns, FeatureDef, as_datetime_array, as_float_array, as_str_array

#: A reference unit value needs at least this many declarations of its HS code (and origin).
MIN_REFERENCE_COUNT = 5

LANE = ("hs6", "country_of_origin", "country_of_departure", "tax_type")
CONSIGNMENT = ("hs6", "value_key", "mass_key")

_LABELS = {
    "office_id": "customs office",
    "process_type": "process type",
    "import_type": "import type",
    "import_use": "import use",
    "payment_type": "payment type",
    "transport_mode": "transport mode",
    "origin_indicator": "origin indicator",
    "tax_type": "tax type",
    "country_of_departure": "country of departure",
    "hs_chapter": "HS chapter",
}


class CargoFeatures(FeatureBuilder):
    domain = "cargo"
    id_field = "declaration_id"
    time_field = "declared_at"
    label_field = "fraud"
    entities: ClassVar[tuple[tuple[str, ...], ...]] = (
        ("importer_id",),
        ("declarant_id",),
        ("seller_id",),
        ("hs6",),
        ("importer_id", "hs6"),
        ("hs6", "country_of_origin"),
        ("hs6", "country_of_departure"),
        ("hs6", "tax_type"),
        ("office_id", "importer_id"),
        LANE,
        CONSIGNMENT,
    )
    entity_aliases: ClassVar[dict[tuple[str, ...], str]] = {LANE: "lane", CONSIGNMENT: "consignment"}
    derived_sources: ClassVar[dict[str, tuple[str, ...]]] = {
        "hs6": ("hs_code",),
        "value_key": ("declared_value",),
        "mass_key": ("net_mass_kg",),
    }
    categoricals: ClassVar[dict[str, tuple[str, ...]]] = {
        "office_id": ("office_id",),
        "process_type": ("process_type",),
        "import_type": ("import_type",),
        "import_use": ("import_use",),
        "payment_type": ("payment_type",),
        "transport_mode": ("transport_mode",),
        "origin_indicator": ("origin_indicator",),
        "tax_type": ("tax_type",),
        "country_of_departure": ("country_of_departure",),
        "hs_chapter": ("hs_code",),
    }

    @classmethod
    def with_derived(cls, cols: Columns) -> dict[str, Any]:
        out = dict(cols)
        hs = as_str_array(cols["hs_code"])
        out["hs6"] = np.array([None if h is None else h[:6] for h in hs], dtype=object)
        out["value_key"] = _number_key(cols["declared_value"])
        out["mass_key"] = _number_key(cols["net_mass_kg"])
        return out

    def numeric_defs(self) -> list[FeatureDef]:
        return [
            FeatureDef(
                "unit_value_ratio",
                "declared unit value / reference for HS code and origin",
                "numeric",
                ("declared_value", "net_mass_kg", "hs_code", "country_of_origin"),
            ),
            FeatureDef("tax_rate", "tariff rate (%)", "numeric", ("tax_rate",)),
            FeatureDef(
                "tax_rate_gap",
                "tariff rate minus the usual rate for the HS code (points)",
                "numeric",
                ("tax_rate", "hs_code"),
            ),
            FeatureDef("hs_heading", "HS heading (first four digits, as a number)", "numeric", ("hs_code",)),
            FeatureDef("log_net_mass", "net mass (log kg)", "numeric", ("net_mass_kg",)),
            FeatureDef("log_declared_value", "declared value (log)", "numeric", ("declared_value",)),
            FeatureDef(
                "transshipment",
                "origin differs from departure",
                "numeric",
                ("country_of_origin", "country_of_departure"),
            ),
            FeatureDef("has_seller", "seller named", "numeric", ("seller_id",)),
            FeatureDef("has_courier", "courier named", "numeric", ("courier_id",)),
            FeatureDef("weekday", "day of week declared", "numeric", ("declared_at",)),
            FeatureDef("hour", "hour declared (UTC)", "numeric", ("declared_at",)),
        ]

    def category_label(self, name: str) -> str:
        return _LABELS[name]

    def category_values(self, name: str, cols: Columns) -> np.ndarray:
        values = as_str_array(cols[self.categoricals[name][0]])
        if name == "hs_chapter":
            return np.array([None if v is None else v[:2] for v in values], dtype=object)
        return values

    @classmethod
    def fit_references(cls, cols: Columns) -> dict[str, Any]:
        """Median declared unit value per HS6×origin, HS6, HS4, and overall (robust to fraud);
        median tariff rate per HS6 and HS4 (the rate a preferential or misclassified claim is below).
        """
        frame = pd.DataFrame(
            {
                "hs6": cols["hs6"],
                "origin": as_str_array(cols["country_of_origin"]),
                "unit": _unit_value(cols),
            }
        ).dropna()
        frame = frame[frame["unit"] > 0]
        frame["hs4"] = frame["hs6"].str[:4]
        frame["hs6_origin"] = frame["hs6"] + "|" + frame["origin"]
        refs: dict[str, Any] = {"global": float(frame["unit"].median()) if len(frame) else 1.0}
        for level in ("hs6_origin", "hs6", "hs4"):
            grouped = frame.groupby(level)["unit"].agg(["median", "size"])
            grouped = grouped[grouped["size"] >= MIN_REFERENCE_COUNT]
            refs[level] = {str(k): float(v) for k, v in grouped["median"].items()}
        rates = pd.DataFrame({"hs6": cols["hs6"], "rate": as_float_array(cols["tax_rate"])}).dropna()
        rates["hs4"] = rates["hs6"].str[:4]
        for level in ("hs6", "hs4"):
            grouped = rates.groupby(level)["rate"].agg(["median", "size"])
            grouped = grouped[grouped["size"] >= MIN_REFERENCE_COUNT]
            refs[f"tax_{level}"] = {str(k): float(v) for k, v in grouped["median"].items()}
        return refs

    def usual_tax_rate(self, hs6: str | None) -> float:
        """Median tariff rate of the HS6 code (else its heading) in training; NaN when unknown."""
        refs = self.state.references
        if hs6 is None:
            return float("nan")
        if (v := refs["tax_hs6"].get(hs6)) is not None:
            return float(v)
        return float(refs["tax_hs4"].get(hs6[:4], float("nan")))

    def reference_unit_value(self, hs6: str | None, origin: str | None) -> tuple[float, str]:
        """The reference and the level it came from (most specific level with enough declarations)."""
        refs = self.state.references
        if hs6 is not None:
            if origin is not None and (v := refs["hs6_origin"].get(f"{hs6}|{origin}")) is not None:
                return v, "hs6_origin"
            if (v := refs["hs6"].get(hs6)) is not None:
                return v, "hs6"
            if (v := refs["hs4"].get(hs6[:4])) is not None:
                return v, "hs4"
        return refs["global"], "global"

    def numeric_block(self, cols: Columns) -> np.ndarray:
        hs6 = cols["hs6"]
        origin = as_str_array(cols["country_of_origin"])
        departure = as_str_array(cols["country_of_departure"])
        reference = np.array([self.reference_unit_value(h, o)[0] for h, o in zip(hs6, origin, strict=True)])
        mass = as_float_array(cols["net_mass_kg"])
        value = as_float_array(cols["declared_value"])
        when = as_datetime_array(cols["declared_at"])
        days = when.astype("datetime64[D]")
        weekday = ((days.astype(np.int64) + 3) % 7).astype(np.float64)  # 1970-01-01 was a Thursday
        hour = ((when - days).astype("timedelta64[h]").astype(np.int64)).astype(np.float64)
        transship = np.array([o != d for o, d in zip(origin, departure, strict=True)], dtype=np.float64)
        rate = as_float_array(cols["tax_rate"])
        usual = np.array([self.usual_tax_rate(h) for h in hs6], dtype=np.float64)
        heading = np.array([np.nan if h is None or not h[:4].isdigit() else float(h[:4]) for h in hs6])
        has = [
            np.array([v is not None for v in as_str_array(cols[f])], dtype=np.float64)
            for f in ("seller_id", "courier_id")
        ]
        return np.column_stack(
            [
                _unit_value(cols) / reference,
                rate,
                rate - usual,
                heading,
                np.log1p(mass),
                np.log1p(value),
                transship,
                *has,
                weekday,
                hour,
            ]
        )

    def reason(self, name: str, row: Mapping[str, Any], value: float, contribution: float) -> str:
        text = self._describe(name, row, value)
        return f"{text} ({'raises' if contribution > 0 else 'lowers'} risk)"

    def _describe(self, name: str, row: Mapping[str, Any], value: float) -> str:
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
        if name in self.categoricals:
            raw = self.category_values(name, self.derived_columns(row))[0]
            known = raw in self.vocabularies[name]._index
            return f"{_LABELS[name]} {raw}" + ("" if known else " (rare or unseen in training)")
        return self.describe_history(name, row)

    def entity_label(self, field: str) -> str:
        labels = {"hs6": "HS", "value_key": "declared value", "mass_key": "net mass (kg)"}
        return labels.get(field) or super().entity_label(field)


def _number_key(values: Any) -> np.ndarray:
    """A number as an exact, canonical text key ('950', '120.5'): the same for a float64 column in
    training and a Python float on the request path; missing → None."""
    arr = as_float_array(values)
    out = np.empty(len(arr), dtype=object)
    for i, v in enumerate(arr.tolist()):
        out[i] = None if v != v else f"{v:.12g}"
    return out


def _unit_value(cols: Columns) -> np.ndarray:
    mass = as_float_array(cols["net_mass_kg"])
    value = as_float_array(cols["declared_value"])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mass > 0, value / mass, np.nan)
