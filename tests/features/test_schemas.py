"""The declaration schemas accept well-formed records and name every field that is not."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from features.schemas import CargoDeclaration, PassengerRecord

CARGO = CargoDeclaration.model_config["json_schema_extra"]["examples"][0]  # type: ignore[index]
PASSENGER = PassengerRecord.model_config["json_schema_extra"]["examples"][0]  # type: ignore[index]


def _errors(model, payload) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(payload)
    return {".".join(str(p) for p in e["loc"]) or "__root__": e["msg"] for e in info.value.errors()}


def test_examples_are_valid_and_instants_become_naive_utc():
    cargo = CargoDeclaration.model_validate(CARGO)
    assert cargo.declared_at.tzinfo is None and cargo.declared_at.hour == 9
    shifted = CargoDeclaration.model_validate(CARGO | {"declared_at": "2025-06-02T11:30:00+02:00"})
    assert shifted.declared_at == cargo.declared_at
    assert PassengerRecord.model_validate(PASSENGER).route == ["LOS", "IST", "FRA"]


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("country_of_origin", "XX", "ISO 3166"),
        ("country_of_origin", "cn", "pattern"),
        ("hs_code", "8517", "pattern"),
        ("hs_code", "85171200001", "pattern"),
        ("net_mass_kg", -3.0, "greater than 0"),
        ("net_mass_kg", "12", "valid number"),
        ("net_mass_kg", float("nan"), "finite"),
        ("declared_value", float("inf"), "finite"),
        ("tax_rate", 5000, "less than or equal"),
        ("declared_at", "yesterday", "datetime"),
        ("importer_id", "", "at least 1"),
        ("importer_id", "x" * 65, "at most 64"),
        ("office_id", "03 0", "pattern"),
    ],
)
def test_cargo_field_errors_name_the_field(field, value, fragment):
    errors = _errors(CargoDeclaration, CARGO | {field: value})
    assert field in errors, errors
    assert fragment in errors[field]


def test_missing_and_extra_fields_are_named():
    payload = {k: v for k, v in CARGO.items() if k != "importer_id"} | {"model_version": "7"}
    errors = _errors(CargoDeclaration, payload)
    assert "importer_id" in errors and "Field required" in errors["importer_id"]
    assert "model_version" in errors and "Extra inputs" in errors["model_version"]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"route": ["LOS", "FRA"], "origin_airport": "ACC"}, "route must start at origin_airport"),
        ({"route": ["LOS", "IST", "MUC"]}, "route must end at destination_airport"),
        ({"booking_at": "2025-06-03T00:00:00Z"}, "booking_at is after departure_at"),
        ({"origin_airport": "LO1"}, "pattern"),
        ({"party_size": 0}, "greater than or equal to 1"),
        ({"party_size": 1.5}, "whole number"),
        ({"party_size": "2"}, "whole number"),
        ({"sex": "male"}, "Input should be"),
        ({"ticket_type": "round_trip"}, "Input should be"),
        ({"nationality": "ZZ"}, "ISO 3166"),
    ],
)
def test_passenger_errors(change, fragment):
    payload = copy.deepcopy(PASSENGER) | change
    errors = _errors(PassengerRecord, payload)
    assert any(fragment in msg for msg in errors.values()), errors


def test_well_formed_unknown_codes_are_accepted():
    """A new office or carrier is not an error: the model scores it as an unseen category."""
    CargoDeclaration.model_validate(CARGO | {"office_id": "999", "tax_type": "NEWCODE"})
    PassengerRecord.model_validate(PASSENGER | {"carrier": "Z9", "flight_number": "Z91234"})
