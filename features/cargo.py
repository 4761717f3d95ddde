"""Cargo features: valuation, routing, tariff incentives and the history of the parties involved.

Entity histories (past declarations, inspections and smoothed hit rate, as of each declaration's
day in training and frozen at the cut-off in service) cover the parties (importer, declarant, seller),
the goods (HS6) and their combinations, after DATE (Kim et al., KDD 2020): importer × HS, HS × origin,
HS × departure, HS × tax type, office × importer, the *lane* (HS × origin × departure × tax type) and
the *consignment* (HS × declared value × net mass: the same goods declared again with the same value
and mass, as a repeat shipment is).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from features.builder import CATEGORY, FeatureBuilder, Reason
from features.common import (
    SMALL,
    WEEKDAYS,
    Columns,
    FeatureDef,
    FloatColumn,
    PreparedColumns,
    TextColumn,
    as_instant_column,
    calendar,
    divide,
    log1p,
    map_distinct,
    number_of,
    per_positive,
    stack_columns,
    subtract,
    text_column,
    text_of,
)

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
    def derived_fields(cls, cols: PreparedColumns) -> dict[str, Any]:
        hs = cols.text("hs_code")
        value, mass = cols.number("declared_value"), cols.number("net_mass_kg")
        return {
            "hs6": text_column([None if h is None else h[:6] for h in hs]),
            "value_key": _number_key(value),
            "mass_key": _number_key(mass),
        }

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

    def category_values(self, name: str, cols: Columns) -> TextColumn:
        values = text_of(cols, self.categoricals[name][0])
        if name == "hs_chapter":
            return text_column([None if v is None else v[:2] for v in values])
        return values

    @classmethod
    def fit_references(cls, cols: Columns) -> dict[str, Any]:
        """Median declared unit value per HS6×origin, HS6, HS4, and overall (robust to fraud);
        median tariff rate per HS6 and HS4 (the rate a preferential or misclassified claim is below).
        """
        frame = pd.DataFrame(
            {
                "hs6": cols["hs6"],
                "origin": text_of(cols, "country_of_origin"),
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
        rates = pd.DataFrame({"hs6": cols["hs6"], "rate": number_of(cols, "tax_rate")}).dropna()
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

    def hs_facts(self, hs6: str | None, origin: str | None) -> tuple[float, float, float]:
        """What training knew of an HS6 code from an origin: (reference unit value, usual tariff rate,
        heading as a number)."""
        return float(self.reference_unit_value(hs6, origin)[0]), self.usual_tax_rate(hs6), _heading(hs6)

    def numeric_block(self, cols: Columns) -> np.ndarray:
        prepared = self.prepare(cols)
        hs6 = prepared["hs6"]
        origin = prepared.text("country_of_origin")
        departure = prepared.text("country_of_departure")
        # HS codes and origins repeat: each distinct pair is looked up once in a big batch
        facts = map_distinct(self.hs_facts, hs6, origin)
        reference, usual, heading = _columns_of(facts, 3)
        mass, value, rate = (prepared.number(f) for f in ("net_mass_kg", "declared_value", "tax_rate"))
        log_mass, log_value = log1p(mass, value)
        _, weekday, hour = calendar(as_instant_column(prepared["declared_at"]))
        columns = [
            divide(_unit_value(prepared), reference),
            rate,
            subtract(rate, usual),
            heading,
            log_mass,
            log_value,
            [o != d for o, d in zip(origin, departure, strict=True)],  # transshipment
            *([v is not None for v in prepared.text(f)] for f in ("seller_id", "courier_id")),
            weekday,
            hour,
        ]
        return stack_columns(columns, len(hs6))

    def entity_label(self, field: str) -> str:
        labels = {"hs6": "HS", "value_key": "declared value", "mass_key": "net mass (kg)"}
        return labels.get(field) or super().entity_label(field)

    # -- reasons ------------------------------------------------------------------------------
    def reason_for(self, name: str) -> Reason:
        """The reasons read the record's fields as given (its HS code, origin, tariff rate…)."""
        if name in self.categoricals:
            return Reason((CATEGORY + name,), self._category_text(name), by_fields=True)
        if name == "unit_value_ratio":
            return Reason(("hs_code", "country_of_origin"), _unit_value_text)
        if name == "tax_rate":
            return Reason(("tax_rate", "hs_code"), _tax_rate_text)
        if name == "tax_rate_gap":
            return Reason(("tax_rate", "hs_code"), _tax_gap_text)
        if name == "hs_heading":
            return Reason(("hs_code",), _heading_text)
        if name == "transshipment":
            return Reason(("country_of_origin", "country_of_departure"), _transshipment_text)
        if name in ("has_seller", "has_courier"):
            who = name.removeprefix("has_")
            return Reason((f"{who}_id",), _party_text(who))
        if name in ("log_net_mass", "log_declared_value"):
            field = "net_mass_kg" if name == "log_net_mass" else "declared_value"
            return Reason((field,), _amount_text(field.replace("_", " ")))
        if name == "weekday":
            return Reason((), _weekday_text)
        if name == "hour":
            return Reason((), _hour_text)
        return self.history_reason(name)

    def _category_text(self, name: str) -> Callable[[Any], str]:
        label, known = _LABELS[name], set(self.vocabularies[name].categories)

        def text(raw: Any) -> str:
            return f"{label} {raw}" + ("" if raw in known else " (rare or unseen in training)")

        return text


def _hs6(hs_code: Any) -> str:
    return str(hs_code)[:6]


def _unit_value_text(value: float, hs_code: Any, origin: Any) -> str:
    where = f"HS {_hs6(hs_code)} from {origin}"
    if value < 1:
        return f"declared unit value {100 * (1 - value):.0f} % below the reference for {where}"
    return f"declared unit value {value:.1f}× the reference for {where}"


def _tax_rate_text(value: float, rate: Any, hs_code: Any) -> str:
    return f"tariff rate {rate:g} % for HS {_hs6(hs_code)}"


def _tax_gap_text(value: float, rate: Any, hs_code: Any) -> str:
    hs6 = _hs6(hs_code)
    if value != value:
        return f"no usual tariff rate known for HS {hs6}"
    usual = rate - value
    if abs(value) < 1e-9:
        return f"tariff rate {rate:g} %, the usual rate for HS {hs6}"
    side = "below" if value < 0 else "above"
    gap = f"{abs(value):g} points {side} the usual {usual:g} %"
    return f"tariff rate {rate:g} %, {gap} for HS {hs6}"


def _heading_text(value: float, hs_code: Any) -> str:
    return f"HS heading {_hs6(hs_code)[:4]}"


def _transshipment_text(value: float, origin: Any, departure: Any) -> str:
    if value:
        return f"origin {origin} differs from departure {departure}"
    return f"shipped directly from its origin {origin}"


def _party_text(who: str) -> Callable[[float, Any], str]:
    def text(value: float, party: Any) -> str:
        return f"{who} {party}" if value else f"no {who} named"

    return text


def _amount_text(label: str) -> Callable[[float, Any], str]:
    def text(value: float, amount: Any) -> str:
        return f"{label} {amount:,.2f}"

    return text


def _weekday_text(value: float) -> str:
    return f"declared on a {WEEKDAYS[int(value)]}"


def _hour_text(value: float) -> str:
    return f"declared at {int(value):02d}:00 UTC"


def _heading(hs6: str | None) -> float:
    """The HS heading (first four digits) as a number; NaN when missing or not digits."""
    return np.nan if hs6 is None or not hs6[:4].isdigit() else float(hs6[:4])


def _number_key(values: FloatColumn) -> TextColumn:
    """A number as an exact, canonical text key ('950', '120.5'): the same for a float64 column in
    training and a Python float on the request path; missing → None."""
    items = values if isinstance(values, list) else values.tolist()
    return text_column([None if v != v else f"{v:.12g}" for v in items])


def _columns_of(rows: list[tuple[float, ...]], width: int) -> list[FloatColumn]:
    """The ``width`` columns of rows of floats: lists for a few rows, float64 arrays for many."""
    if len(rows) < SMALL:
        return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]
    matrix = np.array(rows, dtype=np.float64).reshape(-1, width)
    return [matrix[:, k] for k in range(width)]


def _unit_value(cols: Columns) -> FloatColumn:
    """Declared value per kg; NaN unless the mass is positive."""
    return per_positive(number_of(cols, "declared_value"), number_of(cols, "net_mass_kg"))
