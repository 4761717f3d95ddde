"""Property-based fuzzing of the whole OpenAPI document with schemathesis, in-process (ASGI).

Every operation of ``/openapi.json`` is exercised with schema-derived valid and invalid requests
under all of schemathesis' default checks: no server error; every status, content type, header and
body as the document says; invalid data rejected; valid data accepted. Each request carries a key of
a role the operation admits (read from its ``x-roles``), so the fuzzing reaches the handlers instead
of stopping at 401. Generation is derandomized (a fixed seed per operation) so CI is repeatable, and
bounded so the whole test stays well under two minutes on two cores.

The schema is loaded at import time from the route table (``create_app(...).openapi()``, which starts
nothing) rather than through ``schemathesis.pytest.from_fixture``: the lazy loader rewrites a pytest
node attribute that pytest 9 no longer has. Requests still go to a fixture's app through the ASGI
transport (``call(app=...)``).

Every failure of any check fails this test (numbers and numeric strings in date fields, once read
as Unix timestamps, are refused since the schema fix; ``test_numeric_strings_are_not_dates`` pins it).
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.conftest import TEST_SECRET, auth, make_keys

#: Fuzzing-phase examples per operation (the examples and coverage phases add their own, bounded, cases).
MAX_EXAMPLES = int(os.environ.get("BORDERRISK_FUZZ_EXAMPLES", "25"))

_STATUSES: dict[str, Counter] = {}


def _document() -> dict[str, Any]:
    """The OpenAPI document, built from the route table without opening a store or loading a model."""
    from borderrisk.settings import Settings
    from service.app import create_app

    placeholder = Settings(env="test", session_secret=TEST_SECRET, data_dir=Path("/nonexistent"))
    return create_app(placeholder, load_models=False).openapi()


DOCUMENT = _document()
#: A fixed seed (CI is repeatable; change it, or run with BORDERRISK_FUZZ_SEED, to explore further).
SEED = int(os.environ.get("BORDERRISK_FUZZ_SEED", "20251126"))
schema = schemathesis.openapi.from_dict(DOCUMENT, config=schemathesis.Config(seed=SEED))


COUNTRY_FIELDS = ("country_of_departure", "country_of_origin", "document_issuing_country", "nationality")


def _instant(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def _follow_rules(record: dict[str, Any]) -> None:
    """Make a schema-valid record follow the rules the JSON schema cannot state: ISO 3166 country
    codes (the schema only says two capitals), a route from origin to destination, a booking before
    departure, a birth year not after the departure year."""
    from features.reference import ISO_COUNTRIES

    countries = sorted(ISO_COUNTRIES)
    for name in COUNTRY_FIELDS:
        value = record.get(name)
        if isinstance(value, str) and value not in ISO_COUNTRIES:
            record[name] = countries[sum(map(ord, value)) % len(countries)]
    route = record.get("route")
    if isinstance(route, list) and len(route) >= 2:
        route[0], route[-1] = (
            record.get("origin_airport", route[0]),
            record.get("destination_airport", route[-1]),
        )
    departure = _instant(str(record.get("departure_at", "")))
    booking = _instant(str(record.get("booking_at", "")))
    if departure is not None and booking is not None and booking > departure:
        record["booking_at"] = record["departure_at"]
    birth = record.get("birth_year")
    if departure is not None and isinstance(birth, int | float) and birth > departure.year:
        record["birth_year"] = max(1900, departure.year)
        if departure.year < 1900:
            record["departure_at"] = record["booking_at"] = "2025-06-02T06:10:00Z"


def follow_rules(case) -> None:
    """Apply :func:`_follow_rules` to the records of a *positive* score case (negative ones stay as
    generated: they must be refused)."""
    if case.meta is None or not case.meta.generation.mode.is_positive or not isinstance(case.body, dict):
        return
    if not case.operation.path.startswith(("/v1/cargo/score", "/v1/passenger/score")):
        return
    items = case.body.get("declarations") or case.body.get("records")
    for record in items if isinstance(items, list) else [case.body]:
        if isinstance(record, dict):
            _follow_rules(record)


@pytest.fixture(scope="module")
def fuzz_app(registered, tmp_path_factory):
    """A service of its own (own decision log) reached in-process through schemathesis' ASGI transport.

    schemathesis ends every ASGI lifespan it started when each test item finishes and starts it again
    on the next request, so each operation runs against a freshly started service — which is also a
    test that a restarted lifespan comes back ready.
    """
    from schemathesis.python import asgi

    from service.app import create_app

    settings_ = registered.model_copy(
        update={"database_url": f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'audit.db'}"}
    )
    app = create_app(settings_)
    with asgi.get_client(app):  # runs the lifespan once to create the keys
        app.state.fuzz_keys = make_keys(app, prefix="fuzz")
    yield app
    asgi.shutdown_lifespans()
    figures = {
        "seed": SEED,
        "max_examples_per_operation": MAX_EXAMPLES,
        "operations": len(_STATUSES),
        "requests": sum(sum(c.values()) for c in _STATUSES.values()),
        "server_errors": sum(n for c in _STATUSES.values() for s, n in c.items() if s.startswith("5")),
        "statuses": {op: dict(sorted(c.items())) for op, c in sorted(_STATUSES.items())},
    }
    from tests.reliability.figures import write_figures

    write_figures("fuzz_openapi", figures)


def key_for(operation_raw: dict[str, Any], keys: dict[str, str]) -> dict[str, str]:
    """Headers with a key of a role the operation admits (officer first); none for public ones."""
    roles = operation_raw.get("x-roles") or []
    assert roles, "every operation must state its roles (x-roles)"
    if "public" in roles:
        return {}
    role = "officer" if "officer" in roles else roles[0]
    return auth(keys[role])


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_openapi_fuzz(case, fuzz_app):
    headers = key_for(case.operation.definition.raw, fuzz_app.state.fuzz_keys)
    follow_rules(case)
    response = case.call(app=fuzz_app, headers=headers)
    _STATUSES.setdefault(case.operation.label, Counter())[str(response.status_code)] += 1
    assert response.status_code < 500, f"{case.operation.label}: {response.status_code} {response.text[:300]}"
    case.validate_response(response, headers=headers, transport_kwargs={"app": fuzz_app, "headers": headers})
