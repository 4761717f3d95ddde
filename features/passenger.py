"""Passenger features: booking behaviour, routing, baggage, travel document, agency history.

Nationality, sex and birth year are monitored attributes: they are stored with each decision for
group metrics but no feature here is derived from them (``FeatureDef.sources`` proves it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from features.builder import FeatureBuilder
from features.common import (
    WEEKDAYS,
    Columns,
    FeatureDef,
    as_datetime_array,
    as_float_array,
    as_str_array,
    is_missing,
)

_LABELS = {
    "carrier": "carrier",
    "origin_airport": "origin airport",
    "transit_airport": "first transit airport",
    "ticket_type": "ticket type",
    "payment_method": "payment method",
    "travel_class": "travel class",
    "document_type": "document type",
}


def _route_list(value: Any) -> list[str]:
    if value is None or (not isinstance(value, (list, tuple, np.ndarray)) and is_missing(value)):
        return []
    return [str(v) for v in value]


class PassengerFeatures(FeatureBuilder):
    domain = "passenger"
    id_field = "record_id"
    time_field = "departure_at"
    label_field = "finding"
    entities: ClassVar[tuple[tuple[str, ...], ...]] = (("travel_agency_id",), ("flight_number",))
    categoricals: ClassVar[dict[str, tuple[str, ...]]] = {
        "carrier": ("carrier",),
        "origin_airport": ("origin_airport",),
        "transit_airport": ("route",),
        "ticket_type": ("ticket_type",),
        "payment_method": ("payment_method",),
        "travel_class": ("travel_class",),
        "document_type": ("document_type",),
    }

    @classmethod
    def with_derived(cls, cols: Columns) -> dict[str, Any]:
        out = dict(cols)
        routes = [_route_list(r) for r in cols["route"]]
        out["transit_airport"] = np.array([r[1] if len(r) > 2 else None for r in routes], dtype=object)
        out["n_transits"] = np.array([max(len(r) - 2, 0) for r in routes], dtype=np.float64)
        return out

    def numeric_defs(self) -> list[FeatureDef]:
        return [
            FeatureDef(
                "booking_lead_hours",
                "hours between booking and departure",
                "numeric",
                ("booking_at", "departure_at"),
            ),
            FeatureDef("n_transits", "number of transit stops", "numeric", ("route",)),
            FeatureDef("party_size", "party size", "numeric", ("party_size",)),
            FeatureDef("checked_bags", "checked bags", "numeric", ("checked_bags",)),
            FeatureDef("bag_weight_kg", "total bag weight (kg)", "numeric", ("bag_weight_kg",)),
            FeatureDef(
                "bag_weight_per_bag",
                "average weight per checked bag (kg)",
                "numeric",
                ("bag_weight_kg", "checked_bags"),
            ),
            FeatureDef(
                "document_days_left",
                "days the document is valid after departure",
                "numeric",
                ("document_expiry", "departure_at"),
            ),
            FeatureDef("trips_last_12m", "trips in the last 12 months", "numeric", ("trips_last_12m",)),
            FeatureDef("has_agency", "booked through a travel agency", "numeric", ("travel_agency_id",)),
            FeatureDef("departure_hour", "departure hour (UTC)", "numeric", ("departure_at",)),
            FeatureDef("departure_weekday", "departure day of week", "numeric", ("departure_at",)),
        ]

    def category_label(self, name: str) -> str:
        return _LABELS[name]

    def category_values(self, name: str, cols: Columns) -> np.ndarray:
        if name == "transit_airport":
            return cols["transit_airport"] if "transit_airport" in cols else self.with_derived(cols)[name]
        return as_str_array(cols[name])

    def numeric_block(self, cols: Columns) -> np.ndarray:
        departure = as_datetime_array(cols["departure_at"])
        booking = as_datetime_array(cols["booking_at"])
        lead = (departure - booking).astype("timedelta64[s]").astype(np.float64) / 3600.0
        expiry = as_datetime_array(cols["document_expiry"]).astype("datetime64[D]")
        days_left = (expiry - departure.astype("datetime64[D]")).astype(np.float64)
        bags = as_float_array(cols["checked_bags"])
        weight = as_float_array(cols["bag_weight_kg"])
        with np.errstate(divide="ignore", invalid="ignore"):
            per_bag = np.where(bags > 0, weight / bags, np.nan)
        days = departure.astype("datetime64[D]")
        hour = (departure - days).astype("timedelta64[h]").astype(np.float64)
        weekday = ((days.astype(np.int64) + 3) % 7).astype(np.float64)
        agency = np.array([v is not None for v in as_str_array(cols["travel_agency_id"])], dtype=np.float64)
        return np.column_stack(
            [
                lead,
                cols["n_transits"],
                as_float_array(cols["party_size"]),
                bags,
                weight,
                per_bag,
                days_left,
                as_float_array(cols["trips_last_12m"]),
                agency,
                hour,
                weekday,
            ]
        )

    def reason(self, name: str, row: Mapping[str, Any], value: float, contribution: float) -> str:
        text = self._describe(name, row, value)
        return f"{text} ({'raises' if contribution > 0 else 'lowers'} risk)"

    def _describe(self, name: str, row: Mapping[str, Any], value: float) -> str:
        if name == "booking_lead_hours":
            if value < 72:
                return f"booked {value:.0f} h before departure"
            return f"booked {value / 24:.0f} days before departure"
        if name == "n_transits":
            return f"route {'–'.join(_route_list(row['route']))}" if value else "direct flight"
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
            stops = _route_list(row["route"])
            return f"via {stops[1]}" if len(stops) > 2 else "no transit"
        if name in self.categoricals:
            raw = row[name]
            known = raw in self.vocabularies[name]._index
            text = (
                {"one_way": "one-way ticket", "return": "return ticket"}.get(raw)
                if name == "ticket_type"
                else None
            )
            if name == "payment_method":
                text = f"paid by {raw}"
            return (text or f"{_LABELS[name]} {raw}") + ("" if known else " (rare or unseen in training)")
        return self.describe_history(name, row)
