"""Declaration schemas: what a cargo declaration and a passenger record must look like.

These are the contract at the service boundary. They are strict on purpose: a number sent as a
string, a country that is not ISO 3166-1, a NaN mass or a booking after departure is refused with a
message that names the field, rather than scored on a guess. Category codes that are well formed but
unknown to the model (a new office, a new carrier) are *accepted*: the feature builders map them to
the model's explicit "unseen" category.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from features.reference import ISO_COUNTRIES

Identifier = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:/-]+$")
]
Code = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_-]+$")
]
IataAirport = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
IataCarrier = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{2}$")]
HsCode = Annotated[str, StringConstraints(pattern=r"^\d{6,10}$")]


def _iso_country(value: str) -> str:
    if value not in ISO_COUNTRIES:
        raise ValueError(f"'{value}' is not an ISO 3166-1 alpha-2 country code")
    return value


Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$"), AfterValidator(_iso_country)]


def _naive_utc(value: datetime) -> datetime:
    """Store every instant as naive UTC, the form the feature builders and the history files use."""
    if value.tzinfo is not None:
        try:
            value = value.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            raise ValueError("instant is outside the calendar once converted to UTC") from None
    return value


_NUMERIC_TEXT = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def _not_a_number(value: object) -> object:
    """Dates come as ISO 8601 text: a number, or a number written as text ("0"), would otherwise be
    read as a Unix timestamp (1970-01-01)."""
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMERIC_TEXT.fullmatch(value)):
        raise ValueError("expected an ISO 8601 date or date-time string, not a number")
    return value


def _whole_number(value: object) -> object:
    """JSON has one number type: 6.0 is the integer 6, but "6", true and 6.5 are not integers."""
    if isinstance(value, str | bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError("expected a whole number")
    return value


Instant = Annotated[datetime, BeforeValidator(_not_a_number), AfterValidator(_naive_utc)]
Day = Annotated[date, BeforeValidator(_not_a_number)]
#: An ISO 8601 date-time as given (query parameters such as ``since``), never a number.
IsoDateTime = Annotated[datetime, BeforeValidator(_not_a_number)]


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]


def _finite(lo: float, hi: float, *, gt: bool = False) -> object:
    if gt:
        return Field(strict=True, allow_inf_nan=False, gt=lo, le=hi)
    return Field(strict=True, allow_inf_nan=False, ge=lo, le=hi)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class CargoDeclaration(_Record):
    """One import declaration (one good), as lodged by the declarant."""

    declaration_id: Identifier
    declared_at: Instant
    office_id: Code
    process_type: Code
    import_type: Code
    import_use: Code
    payment_type: Code
    transport_mode: Code
    declarant_id: Identifier
    importer_id: Identifier
    seller_id: Identifier | None = None
    courier_id: Identifier | None = None
    hs_code: HsCode = Field(description="Harmonized System code, 6 to 10 digits")
    country_of_departure: Country
    country_of_origin: Country
    origin_indicator: Code
    tax_type: Code
    tax_rate: Annotated[float, _finite(0, 1000)] = Field(description="tariff rate in percent")
    net_mass_kg: Annotated[float, _finite(0, 1e8, gt=True)]
    declared_value: Annotated[float, _finite(0, 1e13)] = Field(description="customs value")

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "declaration_id": "C-2025-000123",
                    "declared_at": "2025-06-02T09:30:00Z",
                    "office_id": "030",
                    "process_type": "B",
                    "import_type": "11",
                    "import_use": "21",
                    "payment_type": "11",
                    "transport_mode": "10",
                    "declarant_id": "DCL0042",
                    "importer_id": "IMP001234",
                    "seller_id": "SEL00987",
                    "courier_id": None,
                    "hs_code": "851712",
                    "country_of_departure": "AE",
                    "country_of_origin": "CN",
                    "origin_indicator": "Y",
                    "tax_type": "A",
                    "tax_rate": 8.0,
                    "net_mass_kg": 120.5,
                    "declared_value": 950.0,
                }
            ]
        },
    )


TicketType = Literal["one_way", "return"]
PaymentMethod = Literal["cash", "card", "transfer", "voucher"]
TravelClass = Literal["economy", "premium_economy", "business", "first"]
DocumentType = Literal["passport", "id_card", "residence_permit"]
Sex = Literal["F", "M", "X"]


class PassengerRecord(_Record):
    """One passenger on one arriving flight (PNR/API data).

    ``nationality``, ``sex`` and ``birth_year`` are *monitored* attributes: stored with the decision so
    that oversight can measure selection rates by group, never model inputs.
    """

    record_id: Identifier
    carrier: IataCarrier
    flight_number: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{2}\d{1,4}[A-Z]?$")]
    departure_at: Instant
    origin_airport: IataAirport
    destination_airport: IataAirport
    route: list[IataAirport] = Field(
        min_length=2, max_length=12, description="airports from origin to destination"
    )
    booking_at: Instant
    ticket_type: TicketType
    payment_method: PaymentMethod
    travel_class: TravelClass
    party_size: WholeNumber = Field(ge=1, le=99)
    checked_bags: WholeNumber = Field(ge=0, le=20)
    bag_weight_kg: Annotated[float, _finite(0, 500)]
    document_type: DocumentType
    document_issuing_country: Country
    document_expiry: Day
    travel_agency_id: Identifier | None = None
    trips_last_12m: WholeNumber = Field(ge=0, le=366)
    nationality: Country
    sex: Sex
    birth_year: WholeNumber = Field(ge=1900, le=2100)

    @model_validator(mode="after")
    def _consistent(self) -> PassengerRecord:
        if self.route[0] != self.origin_airport:
            raise ValueError("route must start at origin_airport")
        if self.route[-1] != self.destination_airport:
            raise ValueError("route must end at destination_airport")
        if self.booking_at > self.departure_at:
            raise ValueError("booking_at is after departure_at")
        if self.birth_year > self.departure_at.year:
            raise ValueError("birth_year is after the departure year")
        return self

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "record_id": "P-2025-000456",
                    "carrier": "TK",
                    "flight_number": "TK1723",
                    "departure_at": "2025-06-02T06:10:00Z",
                    "origin_airport": "LOS",
                    "destination_airport": "FRA",
                    "route": ["LOS", "IST", "FRA"],
                    "booking_at": "2025-06-01T14:00:00Z",
                    "ticket_type": "one_way",
                    "payment_method": "cash",
                    "travel_class": "economy",
                    "party_size": 1,
                    "checked_bags": 2,
                    "bag_weight_kg": 61.0,
                    "document_type": "passport",
                    "document_issuing_country": "NG",
                    "document_expiry": "2025-07-15",
                    "travel_agency_id": "AG0031",
                    "trips_last_12m": 7,
                    "nationality": "NG",
                    "sex": "M",
                    "birth_year": 1988,
                }
            ]
        },
    )


#: Passenger fields that identify or describe the person; masked after the retention period.
PASSENGER_PERSONAL_FIELDS: tuple[str, ...] = (
    "nationality",
    "sex",
    "birth_year",
    "document_expiry",
    "document_issuing_country",
    "travel_agency_id",
)
#: Monitored attributes per domain: recorded for group metrics, never model inputs.
MONITORED_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "cargo": ("country_of_origin",),
    "passenger": ("nationality", "sex", "birth_year"),
}

SCHEMAS: dict[str, type[_Record]] = {"cargo": CargoDeclaration, "passenger": PassengerRecord}
ID_FIELDS: dict[str, str] = {"cargo": "declaration_id", "passenger": "record_id"}
TIME_FIELDS: dict[str, str] = {"cargo": "declared_at", "passenger": "departure_at"}
