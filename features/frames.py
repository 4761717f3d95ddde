"""pandera schemas of history frames: the DataFrame boundary of training and batch scoring.

They mirror the pydantic record schemas (same fields, same ranges) for whole columns, and add the
outcome columns a training history carries. Validation is lazy so that every failing row and column
is reported at once, never only the first.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from features.reference import ISO_COUNTRIES

_ID = r"^[A-Za-z0-9._:/-]{1,64}$"
_CODE = r"^[A-Za-z0-9_-]{1,16}$"


def _text(pattern: str, nullable: bool = False) -> pa.Column:
    return pa.Column(None, pa.Check.str_matches(pattern), nullable=nullable, coerce=False)


def _country() -> pa.Column:
    return pa.Column(None, pa.Check.isin(sorted(ISO_COUNTRIES)), nullable=False)


def _number(lo: float, hi: float, *, strictly_above: bool = False) -> pa.Column:
    low = pa.Check.gt(lo) if strictly_above else pa.Check.ge(lo)
    return pa.Column("float64", [low, pa.Check.le(hi)], nullable=False, coerce=True)


def _instant() -> pa.Column:
    return pa.Column("datetime64[us]", nullable=False, coerce=True)


#: A recorded outcome cannot be dated later than now; a day's slack absorbs clocks and time zones.
FUTURE_SLACK = pd.Timedelta(days=1)


def _not_in_future(series: pd.Series) -> pd.Series:
    now = pd.Timestamp.now(tz="UTC").tz_localize(None)
    return series <= now + FUTURE_SLACK


def _past_instant() -> pa.Column:
    return pa.Column(
        "datetime64[us]",
        pa.Check(_not_in_future, name="not in the future", error="date is in the future"),
        nullable=False,
        coerce=True,
    )


CARGO_INPUT = {
    "declaration_id": _text(_ID),
    "declared_at": _instant(),
    "office_id": _text(_CODE),
    "process_type": _text(_CODE),
    "import_type": _text(_CODE),
    "import_use": _text(_CODE),
    "payment_type": _text(_CODE),
    "transport_mode": _text(_CODE),
    "declarant_id": _text(_ID),
    "importer_id": _text(_ID),
    "seller_id": _text(_ID, nullable=True),
    "courier_id": _text(_ID, nullable=True),
    "hs_code": _text(r"^\d{6,10}$"),
    "country_of_departure": _country(),
    "country_of_origin": _country(),
    "origin_indicator": _text(_CODE),
    "tax_type": _text(_CODE),
    "tax_rate": _number(0, 1000),
    "net_mass_kg": _number(0, 1e8, strictly_above=True),
    "declared_value": _number(0, 1e13),
}

PASSENGER_INPUT = {
    "record_id": _text(_ID),
    "carrier": _text(r"^[A-Z0-9]{2}$"),
    "flight_number": _text(r"^[A-Z0-9]{2}\d{1,4}[A-Z]?$"),
    "departure_at": _instant(),
    "origin_airport": _text(r"^[A-Z]{3}$"),
    "destination_airport": _text(r"^[A-Z]{3}$"),
    "route": pa.Column(None, nullable=False),
    "booking_at": _instant(),
    "ticket_type": pa.Column(None, pa.Check.isin(["one_way", "return"])),
    "payment_method": pa.Column(None, pa.Check.isin(["cash", "card", "transfer", "voucher"])),
    "travel_class": pa.Column(None, pa.Check.isin(["economy", "premium_economy", "business", "first"])),
    "party_size": _number(1, 99),
    "checked_bags": _number(0, 20),
    "bag_weight_kg": _number(0, 500),
    "document_type": pa.Column(None, pa.Check.isin(["passport", "id_card", "residence_permit"])),
    "document_issuing_country": _country(),
    "document_expiry": _instant(),
    "travel_agency_id": _text(_ID, nullable=True),
    "trips_last_12m": _number(0, 366),
    "nationality": _country(),
    "sex": pa.Column(None, pa.Check.isin(["F", "M", "X"])),
    "birth_year": _number(1900, 2100),
}

LABELS = {"cargo": "fraud", "passenger": "finding"}
TIME_FIELDS = {"cargo": "declared_at", "passenger": "departure_at"}


#: Row-level checks that involve several columns -> the columns they are about (for reports).
ROW_CHECK_COLUMNS: dict[str, str] = {}


def _row_check(columns: tuple[str, ...], name: str, rule) -> pa.Check:  # type: ignore[no-untyped-def]
    """A check across ``columns`` of each row; passes when a column is absent (reported on its own)."""
    ROW_CHECK_COLUMNS[name] = ", ".join(columns)

    def check(df: pd.DataFrame) -> pd.Series | bool:
        if any(c not in df.columns for c in columns):
            return True
        return rule(df)

    return pa.Check(check, name=name, element_wise=False)


def _outcome_checks(label: str) -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            "inspected": pa.Column(bool, coerce=True),
            "selection": pa.Column(None, pa.Check.isin(["random", "targeted", "none"])),
            label: pa.Column("Int8", pa.Check.isin([0, 1]), nullable=True, coerce=True),
        },
        checks=[
            _row_check(
                (label, "inspected"),
                f"{label} is given exactly for inspected rows",
                lambda df: df[label].notna() == df["inspected"].astype(bool),
            ),
            _row_check(
                ("selection", "inspected"),
                "selection is 'none' exactly for rows not inspected",
                lambda df: (df["selection"] == "none") == ~df["inspected"].astype(bool),
            ),
        ],
    )


def input_schema(domain: str) -> pa.DataFrameSchema:
    columns = CARGO_INPUT if domain == "cargo" else PASSENGER_INPUT
    return pa.DataFrameSchema(dict(columns), strict=False, name=f"{domain} declarations")


def history_schema(domain: str) -> pa.DataFrameSchema:
    base = input_schema(domain)
    outcome = _outcome_checks(LABELS[domain])
    # A history is of the past: its declarations (departures) cannot be dated in the future.
    past = {TIME_FIELDS[domain]: _past_instant()}
    return pa.DataFrameSchema(
        {**base.columns, **past, **outcome.columns},
        checks=outcome.checks,
        strict=False,
        name=f"{domain} inspection history",
    )


class FrameValidationError(ValueError):
    """A frame failed validation; ``failures`` lists every failing column/row with its reason."""

    def __init__(self, schema_name: str, failures: pd.DataFrame) -> None:
        self.failures = failures
        lines = [
            f"  column {r.column!s:<24} row {r.index!s:<8} {r.check!s} (value: {r.failure_case!r})"
            for r in failures.head(20).itertuples()
        ]
        more = f"\n  … and {len(failures) - 20} more" if len(failures) > 20 else ""
        super().__init__(f"{schema_name}: {len(failures)} problem(s)\n" + "\n".join(lines) + more)


def failure_table(exc: SchemaErrors) -> pd.DataFrame:
    """pandera's failure cases as one row per (column, row, reason).

    A check across a row's columns is reported once for the row (pandera lists it under every
    column), and a missing column is reported under its own name.
    """
    cases = exc.failure_cases
    rows = []
    seen_row_checks: set[tuple[object, str]] = set()
    for r in cases.itertuples(index=False):
        check, index, column, value = str(r.check), r.index, r.column, r.failure_case
        if index is not None and index == index and check in ROW_CHECK_COLUMNS:
            if (index, check) in seen_row_checks:
                continue
            seen_row_checks.add((index, check))
            column, value = ROW_CHECK_COLUMNS[check], None
        elif check == "column_in_dataframe":
            column, check, value = value, "column missing", None
        rows.append({"column": column, "index": index, "check": check, "failure_case": value})
    return pd.DataFrame(rows, columns=["column", "index", "check", "failure_case"], dtype=object)


def validate(df: pd.DataFrame, schema: pa.DataFrameSchema) -> pd.DataFrame:
    """Validate lazily; raise :class:`FrameValidationError` listing every failure, else the coerced frame."""
    try:
        return schema.validate(df, lazy=True)
    except SchemaErrors as exc:
        raise FrameValidationError(schema.name or "frame", failure_table(exc)) from None
