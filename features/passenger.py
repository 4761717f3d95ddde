"""Passenger features: booking behaviour, routing, baggage, travel document, agency history.

Nationality, sex and birth year are monitored attributes: they are stored with each decision for
group metrics but no feature here is derived from them (``FeatureDef.sources`` proves it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from features.builder import FeatureBuilder, Reason
from features.common import (
    NAT,
    WEEKDAYS,
    Columns,
    FeatureDef,
    FloatColumn,
    InstantColumn,
    PreparedColumns,
    TextColumn,
    as_instant_column,
    calendar,
    day_number,
    float_column,
    instants,
    is_missing,
    per_positive,
    stack_columns,
    text_column,
    text_of,
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
    def derived_fields(cls, cols: PreparedColumns) -> dict[str, Any]:
        routes = [_route_list(r) for r in cols["route"]]
        return {
            "transit_airport": text_column([r[1] if len(r) > 2 else None for r in routes]),
            "n_transits": float_column([float(max(len(r) - 2, 0)) for r in routes]),
        }

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

    def category_values(self, name: str, cols: Columns) -> TextColumn:
        if name == "transit_airport":
            return self.prepare(cols)["transit_airport"]
        return text_of(cols, name)

    def numeric_block(self, cols: Columns) -> np.ndarray:
        prepared = self.prepare(cols)
        departure, booking, expiry = (
            as_instant_column(prepared[f]) for f in ("departure_at", "booking_at", "document_expiry")
        )
        day, weekday, hour = calendar(departure)
        bags, weight, party, trips = (
            prepared.number(f) for f in ("checked_bags", "bag_weight_kg", "party_size", "trips_last_12m")
        )
        columns = [
            _hours_between(departure, booking),
            prepared["n_transits"],
            party,
            bags,
            weight,
            per_positive(weight, bags),
            _days_between(day_number(expiry), day),
            trips,
            [v is not None for v in prepared.text("travel_agency_id")],  # has_agency
            hour,
            weekday,
        ]
        return stack_columns(columns, len(day))

    # -- reasons ------------------------------------------------------------------------------
    def reason_for(self, name: str) -> Reason:
        """The reasons read the feature value, and the record's route and agency as given."""
        if name == "transit_airport":
            return Reason(("transit_airport",), _transit_text, by_fields=True)
        if name in self.categoricals:
            return Reason((name,), self._category_text(name), by_fields=True)
        if name == "n_transits":
            return Reason(("route",), _transits_text)
        if name == "has_agency":
            return Reason(("travel_agency_id",), _agency_text)
        if (text := _NUMERIC_TEXTS.get(name)) is not None:
            return Reason((), text)
        return self.history_reason(name)

    def _category_text(self, name: str) -> Callable[[Any], str]:
        label, known = _LABELS[name], set(self.vocabularies[name].categories)

        def text(raw: Any) -> str:
            words = _TICKET_TYPES.get(raw) if name == "ticket_type" else None
            if name == "payment_method":
                words = f"paid by {raw}"
            return (words or f"{label} {raw}") + ("" if raw in known else " (rare or unseen in training)")

        return text


_TICKET_TYPES = {"one_way": "one-way ticket", "return": "return ticket"}


def _hours_between(later: InstantColumn, earlier: InstantColumn) -> FloatColumn:
    """Hours from ``earlier`` to ``later`` (whole seconds, floored), as float."""
    few = isinstance(later, list) and isinstance(earlier, list)
    if few and NAT not in later and NAT not in earlier:  # the same floored seconds and IEEE division
        return [float((e - s) // 1_000_000) / 3600.0 for e, s in zip(later, earlier, strict=True)]
    out = (instants(later) - instants(earlier)).astype("timedelta64[s]").astype(np.float64) / 3600.0
    return out.tolist() if few else out


def _days_between(later: list[int] | np.ndarray, earlier: list[int] | np.ndarray) -> FloatColumn:
    """Days from day number ``earlier`` to day number ``later``, as float (NaT as NumPy gives it)."""
    few = isinstance(later, list) and isinstance(earlier, list)
    if few and NAT not in later and NAT not in earlier:
        return [float(e - s) for e, s in zip(later, earlier, strict=True)]
    days = np.asarray(later, dtype=np.int64).view("datetime64[D]")
    out = (days - np.asarray(earlier, dtype=np.int64).view("datetime64[D]")).astype(np.float64)
    return out.tolist() if few else out


def _transit_text(transit: Any) -> str:
    return f"via {transit}" if transit is not None else "no transit"


def _transits_text(value: float, route: Any) -> str:
    return f"route {'–'.join(_route_list(route))}" if value else "direct flight"


def _agency_text(value: float, agency: Any) -> str:
    return f"booked through agency {agency}" if value else "booked without an agency"


def _lead_text(value: float) -> str:
    if value < 72:
        return f"booked {value:.0f} h before departure"
    return f"booked {value / 24:.0f} days before departure"


def _per_bag_text(value: float) -> str:
    return "no checked bags" if value != value else f"checked bags average {value:.0f} kg each"


_NUMERIC_TEXTS: dict[str, Callable[[float], str]] = {
    "booking_lead_hours": _lead_text,
    "party_size": lambda value: "travelling alone" if value == 1 else f"party of {int(value)}",
    "checked_bags": lambda value: f"{int(value)} checked bag{'s' if value != 1 else ''}",
    "bag_weight_kg": lambda value: f"bags weigh {value:.0f} kg in total",
    "bag_weight_per_bag": _per_bag_text,
    "document_days_left": lambda value: f"travel document expires {value:.0f} days after departure",
    "trips_last_12m": lambda value: f"{int(value)} trips in the last 12 months",
    "departure_hour": lambda value: f"departure at {int(value):02d}:00 UTC",
    "departure_weekday": lambda value: f"departure on a {WEEKDAYS[int(value)]}",
}
