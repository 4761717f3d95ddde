"""Mapping files: an administration's own columns, units and codes onto borderrisk's schema.

A mapping is a YAML file validated by frozen pydantic models (unknown keys are refused, so a typo is
an error rather than a silently ignored option). For each field of the domain's schema it names the
source column — or a constant for a column the administration does not have — and how to convert it:
a unit multiplier (a value in thousands, a mass in tonnes), a date format and time zone, zero-padding
of codes that lost their leading zeros in a spreadsheet (HS codes), value recoding. It also says
which column is the label and which of its values mean a finding, whether rows were inspected and
how they were selected (random or targeted), an optional revenue column, and rows to *exclude on
purpose* (each rule with a reason; excluded rows are counted and reported, never dropped silently).

Conversion never guesses: a value that cannot be converted (a number that is not one, a date not in
the stated format, a label value the mapping does not list) is a failure naming the row, the field,
the source column and the value. The frame that comes out is then validated by the pandera schemas.

With no mapping file, :meth:`Mapping.identity` maps a file that already uses the schema's names.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from features.frames import CARGO_INPUT, LABELS, PASSENGER_INPUT
from features.schemas import ID_FIELDS

Kind = Literal["text", "number", "instant", "route"]
Scalar = str | int | float | bool
FAILURE_COLUMNS = ["row", "id", "field", "source_column", "check", "value"]
EXCLUDED_COLUMNS = ["row", "id", "reason"]


class MappingError(ValueError):
    """The mapping file itself is wrong (unreadable, unknown keys, fields missing or misused)."""


def schema_fields(domain: str) -> dict[str, pd.api.extensions.ExtensionDtype | Any]:
    return dict(CARGO_INPUT if domain == "cargo" else PASSENGER_INPUT)


def field_kind(domain: str, name: str) -> Kind:
    """How a schema field is converted: text codes, numbers, instants, or a route (list of airports)."""
    if name == "route":
        return "route"
    dtype = str(schema_fields(domain)[name].dtype)
    if dtype.startswith("datetime64"):
        return "instant"
    if dtype == "float64":
        return "number"
    return "text"


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FieldSpec(_Spec):
    """Where one schema field comes from and how it is converted."""

    column: str | None = Field(None, description="source column")
    constant: Scalar | None = Field(None, description="value for every row (null: missing)")
    missing: tuple[str, ...] = Field((), description="values meaning 'not given' (empty is always)")
    values: dict[str, str | None] | None = Field(None, description="recode source values (text)")
    upper: bool = Field(False, description="upper-case the text")
    pad: int | None = Field(None, ge=1, le=16, description="zero-pad digit codes to this width")
    multiply: float | None = Field(None, description="multiply numbers (unit conversion)")
    decimal: str = Field(".", min_length=1, max_length=1, description="decimal separator in text")
    date_format: str | None = Field(None, description="strptime format, e.g. %d/%m/%Y %H:%M")
    timezone: str | None = Field(None, description="time zone of local times (converted to UTC)")

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        has_constant = "constant" in self.model_fields_set
        if (self.column is None) == (not has_constant):
            raise ValueError("give exactly one of 'column' and 'constant'")
        return self

    @property
    def is_constant(self) -> bool:
        return "constant" in self.model_fields_set


class LabelSpec(_Spec):
    """The outcome column: which values are a finding (1) and which are not (0)."""

    column: str
    positive: tuple[Scalar, ...] = Field(min_length=1)
    negative: tuple[Scalar, ...] = Field(min_length=1)
    missing: tuple[str, ...] = Field((), description="values meaning 'no outcome' (empty is always)")

    @model_validator(mode="after")
    def _disjoint(self) -> LabelSpec:
        both = {_token(v) for v in self.positive} & {_token(v) for v in self.negative}
        if both:
            raise ValueError(f"values {sorted(both)} are both positive and negative")
        return self


class InspectedSpec(_Spec):
    """Whether a row was inspected. Default (no spec): inspected exactly when the label is given."""

    column: str | None = None
    true_values: tuple[Scalar, ...] = (True, 1, "yes", "y", "true")
    false_values: tuple[Scalar, ...] = (False, 0, "no", "n", "false")
    constant: bool | None = None

    @model_validator(mode="after")
    def _one_source(self) -> InspectedSpec:
        if (self.column is None) == (self.constant is None):
            raise ValueError("give exactly one of 'column' and 'constant'")
        return self


class SelectionSpec(_Spec):
    """How inspected rows were selected: at random (unbiased) or targeted (by a rule or an officer)."""

    column: str | None = None
    random: tuple[Scalar, ...] = ()
    targeted: tuple[Scalar, ...] = ()
    constant: Literal["random", "targeted"] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SelectionSpec:
        if (self.column is None) == (self.constant is None):
            raise ValueError("give exactly one of 'column' and 'constant'")
        if self.column is not None and not (self.random or self.targeted):
            raise ValueError("with 'column', list its 'random' and/or 'targeted' values")
        return self


class RevenueSpec(_Spec):
    """Revenue recovered by an inspection (duties and fines), for revenue captured at a budget."""

    column: str
    multiply: float | None = None
    decimal: str = "."


_OPERATORS = ("eq", "ne", "in_", "not_in", "lt", "le", "gt", "ge", "missing")


class ExcludeRule(_Spec):
    """Rows to leave out on purpose, on a converted field; counted and reported with ``reason``."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    field: str
    reason: str = Field(min_length=3)
    eq: Scalar | None = None
    ne: Scalar | None = None
    in_: tuple[Scalar, ...] | None = Field(None, alias="in")
    not_in: tuple[Scalar, ...] | None = None
    lt: float | None = None
    le: float | None = None
    gt: float | None = None
    ge: float | None = None
    missing: bool | None = None

    @model_validator(mode="after")
    def _one_operator(self) -> ExcludeRule:
        given = [op for op in _OPERATORS if getattr(self, op) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one condition of {', '.join(o.rstrip('_') for o in _OPERATORS)}")
        return self

    @property
    def operator(self) -> str:
        return next(op for op in _OPERATORS if getattr(self, op) is not None)


class Mapping(_Spec):
    """A whole mapping file."""

    domain: Literal["cargo", "passenger"]
    description: str = ""
    fields: dict[str, FieldSpec]
    label: LabelSpec | None = None
    inspected: InspectedSpec | None = None
    selection: SelectionSpec = SelectionSpec(constant="targeted")
    revenue: RevenueSpec | None = None
    exclude: tuple[ExcludeRule, ...] = ()

    @model_validator(mode="after")
    def _fields_match_schema(self) -> Mapping:
        schema = schema_fields(self.domain)
        unknown = sorted(set(self.fields) - set(schema))
        missing = [f for f in schema if f not in self.fields]
        problems = []
        if unknown:
            problems.append(
                f"unknown field(s) {', '.join(unknown)} (the {self.domain} schema has no such field)"
            )
        if missing:
            problems.append(
                f"field(s) {', '.join(missing)} not mapped (map each to a column, or to a constant — "
                "null for an optional field the data does not have)"
            )
        for name, spec in self.fields.items():
            if name not in schema:
                continue
            kind = field_kind(self.domain, name)
            misuse = {
                "multiply": spec.multiply is not None and kind != "number",
                "decimal": spec.decimal != "." and kind != "number",
                "date_format": spec.date_format is not None and kind != "instant",
                "timezone": spec.timezone is not None and kind != "instant",
                "pad": spec.pad is not None and kind != "text",
                "upper": spec.upper and kind != "text",
                "values": spec.values is not None and kind != "text",
            }
            bad = [k for k, v in misuse.items() if v]
            if bad:
                problems.append(f"fields.{name}: {', '.join(bad)} does not apply to a {kind} field")
        outputs = set(schema) | {"inspected", "selection", LABELS[self.domain], "revenue_recovered"}
        for i, rule in enumerate(self.exclude):
            if rule.field not in outputs:
                problems.append(f"exclude[{i}].field: {rule.field!r} is not a mapped field")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # -- construction -----------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path) -> tuple[Mapping, str]:
        """The mapping of a YAML file and the SHA-256 of its bytes; :class:`MappingError` if wrong."""
        path = Path(path)
        if not path.is_file():
            raise MappingError(f"--mapping {path}: no such file")
        blob = path.read_bytes()
        try:
            data = yaml.safe_load(blob)
        except yaml.YAMLError as exc:
            raise MappingError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(data, dict):
            raise MappingError(f"{path}: expected a mapping of keys (domain, fields, label, …)")
        try:
            return cls.model_validate(data), hashlib.sha256(blob).hexdigest()
        except ValidationError as exc:
            lines = [
                f"  {'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in exc.errors()
            ]
            raise MappingError(f"{path}: invalid mapping\n" + "\n".join(lines)) from None

    @classmethod
    def identity(cls, domain: str, columns: list[str] | None = None) -> Mapping:
        """The mapping of a file that already has the schema's column names and outcome columns."""
        columns = list(columns or [])
        label = LABELS[domain]
        fields = {name: FieldSpec(column=name) for name in schema_fields(domain)}
        data: dict[str, Any] = {"domain": domain, "fields": fields}
        if label in columns:
            data["label"] = LabelSpec(column=label, positive=(1, True), negative=(0, False))
        if "inspected" in columns:
            data["inspected"] = InspectedSpec(column="inspected")
        if "selection" in columns:
            data["selection"] = SelectionSpec(
                column="selection", random=("random",), targeted=("targeted", "none")
            )
        if "revenue_recovered" in columns:
            data["revenue"] = RevenueSpec(column="revenue_recovered")
        return cls(**data)

    # -- what it reads ----------------------------------------------------------------------------
    def source_columns(self, with_outcome: bool = True) -> list[str]:
        """Columns of the input file that the mapping reads (model inputs, and outcomes if asked)."""
        cols = [s.column for s in self.fields.values() if s.column is not None]
        if with_outcome:
            for spec in (self.label, self.inspected, self.selection, self.revenue):
                column = getattr(spec, "column", None) if spec is not None else None
                if column is not None:
                    cols.append(column)
        return list(dict.fromkeys(cols))

    @property
    def id_field(self) -> str:
        return ID_FIELDS[self.domain]


@dataclass
class Mapped:
    """One converted chunk: the frame (indexed by source row number), what failed, what was excluded."""

    frame: pd.DataFrame
    failures: pd.DataFrame
    excluded: pd.DataFrame
    rows: int  # rows read


# --------------------------------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------------------------------


def _token(value: object) -> str:
    """Normalised text of a label/selection value: '1', '1.0', 1 and True all read as '1'."""
    if isinstance(value, bool | np.bool_):
        return "1" if value else "0"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        value = float(value)
        return str(int(value)) if value.is_integer() else repr(value)
    text = str(value).strip().lower()
    if text in ("true", "false"):
        return "1" if text == "true" else "0"
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number):
        return text
    return str(int(number)) if number.is_integer() else repr(number)


def _is_blank(values: pd.Series, extra: tuple[str, ...]) -> np.ndarray:
    """Missing: null, empty or whitespace, or one of ``extra`` tokens."""
    blank = values.isna().to_numpy(dtype=bool).copy()
    if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
        text = values.astype("str").str.strip()
        blank |= (text == "").fillna(True).to_numpy(dtype=bool)
        if extra:
            blank |= text.isin(list(extra)).fillna(False).to_numpy(dtype=bool)
    return blank


def _text_of(values: pd.Series) -> pd.Series:
    """Text of each value; integral floats (a code read as a number) lose their '.0'."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("str")
    if pd.api.types.is_integer_dtype(values.dtype):
        return values.astype("Int64").astype("str")
    if pd.api.types.is_float_dtype(values.dtype):
        out = np.empty(len(values), dtype=object)
        for i, v in enumerate(values.to_numpy(dtype=np.float64, na_value=np.nan)):
            out[i] = None if v != v else (str(int(v)) if float(v).is_integer() else repr(float(v)))
        return pd.Series(out, index=values.index, dtype="str")
    return values.astype("str").str.strip()


class _Failures:
    def __init__(self, ids: pd.Series) -> None:
        self.ids = ids
        self.rows: list[dict[str, Any]] = []

    def add(self, mask: np.ndarray, field: str, column: str | None, check: str, values: pd.Series | None):
        idx = np.flatnonzero(mask)
        for i in idx:
            row = self.ids.index[i]
            value = None if values is None else values.iloc[i]
            self.rows.append(
                {
                    "row": row,
                    "id": self.ids.iloc[i],
                    "field": field,
                    "source_column": column,
                    "check": check,
                    "value": None
                    if value is None or (isinstance(value, float) and value != value)
                    else value,
                }
            )

    def add_dataset(self, field: str, column: str | None, check: str) -> None:
        self.rows.append(
            {"row": None, "id": None, "field": field, "source_column": column, "check": check, "value": None}
        )

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=FAILURE_COLUMNS, dtype=object)


def _convert(
    domain: str, name: str, spec: FieldSpec, raw: pd.DataFrame, fails: _Failures, kind: Kind | None = None
) -> pd.Series | None:
    kind = kind or field_kind(domain, name)
    n = len(raw)
    if spec.is_constant:
        source = pd.Series([spec.constant] * n, index=raw.index, dtype=object)
        column = None
    else:
        column = spec.column
        if column not in raw.columns:
            return None  # reported once per file by the caller
        source = raw[column]
    blank = _is_blank(source, spec.missing)

    if kind == "text":
        text = _text_of(source)
        text = text.where(~blank, None)
        if spec.values:
            recode = {str(k): v for k, v in spec.values.items()}
            hit = text.isin(list(recode)).fillna(False).to_numpy(dtype=bool)
            text = text.where(~hit, text.map(recode))
        if spec.upper:
            text = text.str.upper()
        if spec.pad:
            width = spec.pad
            short = (text.str.fullmatch(r"\d+") & (text.str.len() < width)).fillna(False).to_numpy(dtype=bool)
            text = text.where(~short, text.str.zfill(width))
        return text.astype("str")

    if kind == "number":
        if pd.api.types.is_numeric_dtype(source.dtype) and not pd.api.types.is_bool_dtype(source.dtype):
            number = source.astype("float64")
            bad = np.zeros(n, dtype=bool)
        else:
            text = source.astype("str").str.strip()
            if spec.decimal != ".":
                text = text.str.replace(".", "", regex=False).str.replace(spec.decimal, ".", regex=False)
            number = pd.to_numeric(text.where(~blank, None), errors="coerce").astype("float64")
            bad = ~blank & number.isna().to_numpy()
        if bad.any():
            fails.add(bad, name, column, "not a number", source)
        if spec.multiply is not None:
            number = number * spec.multiply
        number[blank] = np.nan
        return number

    if kind == "instant":
        return _instants(name, spec, source, blank, column, fails)

    # route: a list of airport codes
    out = np.empty(n, dtype=object)
    bad = np.zeros(n, dtype=bool)
    for i, v in enumerate(source.tolist()):
        if blank[i]:
            out[i] = None
        elif isinstance(v, list | tuple | np.ndarray):
            out[i] = [str(x).strip().upper() for x in v]
        else:
            # "LOS-IST-FRA", "LOS IST FRA", "['LOS' 'IST' 'FRA']": the codes, whatever the separators
            parts = re.findall(r"[A-Z0-9]+", str(v).upper())
            out[i] = parts
            bad[i] = not parts
    if bad.any():
        fails.add(bad, name, column, "not a list of airports", source)
    return pd.Series(out, index=raw.index, dtype=object)


def _instants(
    name: str, spec: FieldSpec, source: pd.Series, blank: np.ndarray, column: str | None, fails: _Failures
) -> pd.Series:
    if isinstance(source.dtype, pd.DatetimeTZDtype):
        parsed = source.dt.tz_convert("UTC").dt.tz_localize(None)
        bad = np.zeros(len(source), dtype=bool)
    elif pd.api.types.is_datetime64_dtype(source.dtype):
        parsed = source
        if spec.timezone:
            parsed = parsed.dt.tz_localize(spec.timezone, ambiguous="NaT", nonexistent="NaT")
            parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
        bad = np.zeros(len(source), dtype=bool)
    else:
        text = source.astype("str").str.strip().where(~blank, None)
        fmt = spec.date_format or "ISO8601"
        try:
            if spec.timezone:
                parsed = pd.to_datetime(text, format=fmt, errors="coerce")
                if isinstance(parsed.dtype, pd.DatetimeTZDtype):
                    parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
                else:
                    parsed = parsed.dt.tz_localize(spec.timezone, ambiguous="NaT", nonexistent="NaT")
                    parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
            else:
                parsed = pd.to_datetime(text, format=fmt, errors="coerce", utc=True).dt.tz_localize(None)
        except (ValueError, TypeError) as exc:  # an unusable format string
            fails.add_dataset(name, column, f"cannot parse dates with format {fmt!r} ({exc})")
            parsed = pd.Series(pd.NaT, index=source.index)
        bad = ~blank & parsed.isna().to_numpy()
        if bad.any():
            what = f"format {spec.date_format!r}" if spec.date_format else "ISO 8601"
            fails.add(bad, name, column, f"not a date/time in {what}", source)
    return parsed.astype("datetime64[us]")


def _outcomes(mapping: Mapping, raw: pd.DataFrame, fails: _Failures, out: pd.DataFrame) -> None:
    label = LABELS[mapping.domain]
    spec = mapping.label
    assert spec is not None
    source = raw[spec.column]
    blank = _is_blank(source, spec.missing)
    tokens = pd.Series(
        [None if b else _token(v) for v, b in zip(source.tolist(), blank, strict=True)], index=raw.index
    )
    positive = {_token(v) for v in spec.positive}
    negative = {_token(v) for v in spec.negative}
    value = pd.array([pd.NA] * len(raw), dtype="Int8")
    is_pos = tokens.isin(positive).to_numpy()
    is_neg = tokens.isin(negative).to_numpy()
    value[is_pos] = 1
    value[is_neg] = 0
    unknown = ~blank & ~is_pos & ~is_neg
    if unknown.any():
        accepted = f"positive {list(spec.positive)}, negative {list(spec.negative)}"
        fails.add(unknown, label, spec.column, f"label value not accepted ({accepted})", source)
    out[label] = value
    has_label = ~blank & (is_pos | is_neg)

    ins = mapping.inspected
    if ins is None:
        inspected = has_label | unknown  # an unknown value is still an outcome: reported above
    elif ins.constant is not None:
        inspected = np.full(len(raw), ins.constant, dtype=bool)
    else:
        if ins.column not in raw.columns:
            inspected = has_label
        else:
            src = raw[ins.column]
            t = pd.Series([_token(v) for v in src.tolist()], index=raw.index)
            yes = t.isin({_token(v) for v in ins.true_values}).to_numpy()
            no = t.isin({_token(v) for v in ins.false_values}).to_numpy()
            bad = ~yes & ~no
            if bad.any():
                fails.add(bad, "inspected", ins.column, "not a yes/no value", src)
            inspected = yes
    out["inspected"] = inspected

    sel = mapping.selection
    if sel.constant is not None:
        selection = np.where(inspected, sel.constant, "none").astype(object)
    elif sel.column not in raw.columns:
        selection = np.where(inspected, "targeted", "none").astype(object)
    else:
        src = raw[sel.column]
        t = pd.Series([_token(v) for v in src.tolist()], index=raw.index)
        rnd = t.isin({_token(v) for v in sel.random}).to_numpy()
        tgt = t.isin({_token(v) for v in sel.targeted}).to_numpy()
        bad = inspected & ~rnd & ~tgt
        if bad.any():
            accepted = f"random {list(sel.random)}, targeted {list(sel.targeted)}"
            fails.add(bad, "selection", sel.column, f"selection value not accepted ({accepted})", src)
        selection = np.where(~inspected, "none", np.where(rnd, "random", "targeted")).astype(object)
    out["selection"] = pd.Series(selection, index=raw.index, dtype="str")

    if mapping.revenue is not None and mapping.revenue.column in raw.columns:
        rev_spec = FieldSpec(
            column=mapping.revenue.column, multiply=mapping.revenue.multiply, decimal=mapping.revenue.decimal
        )
        rev = _convert(mapping.domain, "revenue_recovered", rev_spec, raw, fails, kind="number")
        if rev is not None:
            out["revenue_recovered"] = rev.where(out["inspected"].to_numpy())


def _excluded(mapping: Mapping, frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Rows an exclude rule matches, and each matched row's reason (the first rule that matched)."""
    hit = np.zeros(len(frame), dtype=bool)
    reasons = np.empty(len(frame), dtype=object)
    for rule in mapping.exclude:
        col = frame[rule.field]
        op = rule.operator
        arg = getattr(rule, op)
        if op == "missing":
            m = col.isna().to_numpy() == bool(arg)
        elif op in ("lt", "le", "gt", "ge"):
            values = pd.to_numeric(col, errors="coerce")
            m = getattr(values, op)(arg).fillna(False).to_numpy(dtype=bool)
        else:
            choices = [arg] if op in ("eq", "ne") else list(arg)
            if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
                isin = col.isin([float(c) for c in choices])
            else:
                isin = col.astype("str").isin([str(c) for c in choices])
            m = isin.fillna(False).to_numpy(dtype=bool)
            if op in ("ne", "not_in"):
                m = ~m & col.notna().to_numpy()
        new = m & ~hit
        reasons[new] = rule.reason
        hit |= m
    return hit, reasons[hit].tolist()


def apply_mapping(
    mapping: Mapping, raw: pd.DataFrame, *, with_outcome: bool, report_missing_columns: bool = True
) -> Mapped:
    """Convert a chunk of the input file (indexed by source row number) to the schema.

    ``with_outcome``: training or evaluation (the label, inspection and selection are mapped too);
    scoring maps the model inputs only. Missing source columns are reported (once, with no row).
    """
    ids_col = mapping.fields[mapping.id_field]
    ids = (
        _text_of(raw[ids_col.column])
        if ids_col.column in raw.columns
        else pd.Series([None] * len(raw), index=raw.index, dtype=object)
    )
    fails = _Failures(ids)
    needed = mapping.source_columns(with_outcome=with_outcome)
    if with_outcome and mapping.label is None:
        raise MappingError(
            "the mapping has no 'label': it can score files but not train or evaluate "
            "(add label: {column: …, positive: […], negative: […]})"
        )
    absent = [c for c in needed if c not in raw.columns]
    if report_missing_columns:
        for column in absent:
            fields = [n for n, s in mapping.fields.items() if s.column == column] or [
                k
                for k, s in (
                    ("label", mapping.label),
                    ("inspected", mapping.inspected),
                    ("selection", mapping.selection),
                    ("revenue_recovered", mapping.revenue),
                )
                if s is not None and getattr(s, "column", None) == column
            ]
            fails.add_dataset(", ".join(fields), column, "column missing from the file")

    out = pd.DataFrame(index=raw.index)
    for name, spec in mapping.fields.items():
        converted = _convert(mapping.domain, name, spec, raw, fails)
        if converted is not None:
            out[name] = converted
    if with_outcome and mapping.label is not None and mapping.label.column in raw.columns:
        _outcomes(mapping, raw, fails, out)

    failures = fails.frame()
    rules = [r for r in mapping.exclude if r.field in out.columns]
    if rules:
        hit, reasons = _excluded(mapping.model_copy(update={"exclude": tuple(rules)}), out)
    else:
        hit, reasons = np.zeros(len(out), dtype=bool), []
    excluded = pd.DataFrame(
        {"row": out.index[hit].to_numpy(), "id": ids[hit].to_numpy(dtype=object), "reason": reasons},
        columns=EXCLUDED_COLUMNS,
    )
    if hit.any() and not failures.empty:  # an excluded row's conversion problems do not matter
        gone = set(out.index[hit].tolist())
        failures = failures[~failures["row"].isin(gone)].reset_index(drop=True)
    return Mapped(frame=out[~hit], failures=failures, excluded=excluded, rows=len(raw))
