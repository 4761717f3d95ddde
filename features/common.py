"""Building blocks shared by the cargo and passenger feature builders.

Every function here takes *columns* (a mapping of field name to a sequence of values) rather than a
DataFrame. Training passes whole columns of a history file; the service passes columns of length one
built straight from a validated record. One code path serves both, and no 1-row DataFrame (≈ 7 ms)
is ever built on the request path.

Below :data:`SMALL` rows (a request, a batch of a few records) the helpers take plain Python loops:
building NumPy or pandas machinery costs microseconds per call, more than the work itself. There a
column is a Python list (:data:`TextColumn`, :data:`FloatColumn`, :data:`InstantColumn`), the helpers
take and give lists, and a block of features becomes one array only once all its columns are
computed. The small and the large branch of a helper compute the same values with the same
floating-point operations (IEEE arithmetic, which Python floats and NumPy's float64 share, or the
same NumPy function: ``math.log1p`` is not ``np.log1p`` to the last bit), so a row's features never
depend on how many rows came with it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

Columns = Mapping[str, Any]  # field -> 1-D array-like of equal length
#: Values of a text field, str or None: a list below :data:`SMALL` rows, an object array from there on
#: (both iterate and index alike; a list is several times cheaper to build for a request's one row).
TextColumn = list[str | None] | np.ndarray
#: Values of a number field as float (NaN where missing): a list below :data:`SMALL` rows, a float64
#: array from there on. A helper takes the list branch when its columns are lists.
FloatColumn = list[float] | np.ndarray
#: Naive UTC instants as microseconds since 1970-01-01: a list of int below :data:`SMALL` rows (NaT,
#: which only NumPy's arithmetic handles, as :data:`NAT`), a datetime64[us] array from there on.
InstantColumn = list[int] | np.ndarray

#: Code of the category that stands for "rare in training or never seen": LightGBM learns a split
#: for it from the rare training categories, so an unseen value at serving time is scored as such,
#: explicitly, instead of being silently remapped.
OTHER = "__other__"

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

#: Below this many rows plain Python loops beat vectorised NumPy/pandas (whose per-call cost is
#: microseconds): the request path and small batches take the loops.
SMALL = 256

_NAN3 = (math.nan, math.nan, math.nan)
_ZERO3 = (0, 0, 0)
_EPOCH = datetime(1970, 1, 1)
_EPOCH_DAY = date(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)
_US_PER_DAY = 86_400_000_000
_US_PER_HOUR = 3_600_000_000
#: NaT's integer value: a small branch meeting it leaves the instants to NumPy's NaT arithmetic.
NAT = np.iinfo(np.int64).min


def is_missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def as_str_array(values: Any) -> np.ndarray:
    """Object array of str or None, whatever came in (pandas str/object columns, lists, NumPy).

    Whole columns take a vectorised path; a request's columns take the plain loop, in which a value
    that already is a ``str`` skips the missing-value test.
    """
    if isinstance(values, pd.Series):
        if not pd.api.types.is_string_dtype(values.dtype):
            values = values.astype("str")  # pandas 3: missing values stay missing
        return values.to_numpy(dtype=object, na_value=None)
    if isinstance(values, np.ndarray):
        items = list(values) if values.dtype == object else values.tolist()
    elif isinstance(values, list):
        items = values
    else:
        items = list(np.asarray(values, dtype=object))
    out = np.empty(len(items), dtype=object)
    out[:] = [v if type(v) is str else None if is_missing(v) else str(v) for v in items]
    return out


def text_column(items: list[str | None]) -> TextColumn:
    """A list of str / None as a :data:`TextColumn`: kept as it is below :data:`SMALL` rows."""
    if len(items) < SMALL:
        return items
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def as_text_column(values: Any) -> TextColumn:
    """:func:`as_str_array` as a :data:`TextColumn` (a request's short list is never made an array)."""
    if isinstance(values, list) and len(values) < SMALL:
        return [v if type(v) is str else None if is_missing(v) else str(v) for v in values]
    out = as_str_array(values)
    return out.tolist() if len(out) < SMALL else out


def float_column(items: list[float]) -> FloatColumn:
    """A list of float as a :data:`FloatColumn`: kept as it is below :data:`SMALL` rows."""
    return items if len(items) < SMALL else np.array(items, dtype=np.float64)


def as_float_column(values: Any) -> FloatColumn:
    """:func:`as_float_array` as a :data:`FloatColumn` (a request's short list is never made an array)."""
    if isinstance(values, list) and len(values) < SMALL:  # as_float_array's list branch, kept a list
        return _floats(values)
    out = as_float_array(values)
    return out.tolist() if len(out) < SMALL else out


def as_float_array(values: Any) -> np.ndarray:
    """float64 array; a missing value (None, NA, NaN) is NaN."""
    if isinstance(values, pd.Series):
        return values.astype("float64").to_numpy(na_value=np.nan)
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":
        out = values.astype(np.float64)  # a copy; every NaN made the canonical one, as below
        out[np.isnan(out)] = np.nan
        return out
    items = values if isinstance(values, list) else list(np.asarray(values, dtype=object))
    return np.array(_floats(items), dtype=np.float64)


def _floats(items: list[Any]) -> list[float]:
    """Values as Python floats, a missing one as NaN (the canonical NaN; an int is never missing)."""
    return [
        v
        if type(v) is float and v == v
        else float(v)
        if type(v) is int
        else np.nan
        if is_missing(v)
        else float(v)
        for v in items
    ]


def as_datetime_array(values: Any) -> np.ndarray:
    """datetime64[us] array; inputs are naive UTC (the schemas normalise aware instants)."""
    out = as_instant_column(values)
    return np.array(out, dtype=np.int64).view("datetime64[us]") if isinstance(out, list) else out


def as_instant_column(values: Any) -> InstantColumn:
    """Instants as an :data:`InstantColumn`; inputs are naive UTC (the schemas normalise aware ones).

    A list of naive ``datetime`` / ``date`` values (a request's, a batch of records') is converted
    with integer arithmetic: exact, as NumPy's conversion is, and several times faster than NumPy's
    conversion of Python objects. Anything else goes through NumPy.
    """
    if isinstance(values, list):
        micros = [_micros(v) for v in values]
        if None not in micros:
            if len(micros) < SMALL:
                return micros  # type: ignore[return-value]
            return np.array(micros, dtype=np.int64).view("datetime64[us]")
    if isinstance(values, pd.Series):
        out = values.to_numpy(dtype="datetime64[us]")
    else:
        out = np.asarray(values, dtype="datetime64[us]")
    return out.astype(np.int64).tolist() if len(out) < SMALL else out


def _micros(value: object) -> int | None:
    """Microseconds since 1970-01-01 of a naive datetime or a date; None for anything else."""
    kind = type(value)
    if kind is datetime and value.tzinfo is None:  # type: ignore[attr-defined]
        return (value - _EPOCH) // _MICROSECOND  # type: ignore[operator,no-any-return]
    if kind is date:
        return (value - _EPOCH_DAY).days * _US_PER_DAY  # type: ignore[operator,no-any-return]
    return None


def instants(when: InstantColumn) -> np.ndarray:
    """An :data:`InstantColumn` as a datetime64[us] array (a list's NaT, NAT, becomes NaT)."""
    return np.array(when, dtype=np.int64).view("datetime64[us]") if isinstance(when, list) else when


def day_number(when: InstantColumn) -> list[int] | np.ndarray:
    """Days since 1970-01-01 (floored, as NumPy's ``datetime64[D]``): a list of int for a list, else
    int64; NaT stays NaT's value."""
    if isinstance(when, list) and NAT not in when:
        return [m // _US_PER_DAY for m in when]
    day = instants(when).astype("datetime64[D]").astype(np.int64)
    return day.tolist() if isinstance(when, list) else day


def calendar(when: InstantColumn) -> tuple[list[int] | np.ndarray, FloatColumn, FloatColumn]:
    """(day number since 1970-01-01, weekday as float with Monday = 0, hour as float) of instants:
    lists for a list, else arrays (day numbers int64).

    Days are floored (an instant before 1970 belongs to its calendar day), as NumPy's conversion to
    ``datetime64[D]`` floors; 1970-01-01 was a Thursday. A few instants without NaT take Python
    integers, the same integer arithmetic.
    """
    if isinstance(when, list) and NAT not in when:
        days = [m // _US_PER_DAY for m in when]
        weekday = [float((d + 3) % 7) for d in days]
        hour = [float((m - d * _US_PER_DAY) // _US_PER_HOUR) for m, d in zip(when, days, strict=True)]
        return days, weekday, hour
    instant = instants(when)
    days64 = instant.astype("datetime64[D]")
    day = days64.astype(np.int64)
    weekday_array = ((day + 3) % 7).astype(np.float64)
    hour_array = (instant - days64).astype("timedelta64[h]").astype(np.int64).astype(np.float64)
    if isinstance(when, list):
        return day.tolist(), weekday_array.tolist(), hour_array.tolist()
    return day, weekday_array, hour_array


def stack_columns(columns: Sequence[Any], n_rows: int) -> np.ndarray:
    """(n_rows, len(columns)) float64 matrix of 1-D columns (lists or arrays; bools and ints become
    floats): one array built, not one per column.

    A few rows are built from their row tuples (NumPy converts a short row faster than many short
    columns); many from the columns, transposed.
    """
    if not columns:
        return np.empty((n_rows, 0))
    if n_rows < SMALL:
        return np.array(list(zip(*columns, strict=True)), dtype=np.float64).reshape(n_rows, len(columns))
    return np.array(columns, dtype=np.float64).T


def _few(a: Any, b: Any) -> bool:
    """Whether both columns are lists: the rows of a request or a small batch (see :data:`FloatColumn`)."""
    return type(a) is list and type(b) is list


def divide(numerator: FloatColumn, denominator: FloatColumn) -> FloatColumn:
    """``numerator / denominator``; a few rows take the same IEEE division in Python floats, unless a
    denominator is zero (Python raises where NumPy gives ±inf or NaN)."""
    few = _few(numerator, denominator)
    if few and 0.0 not in denominator:
        return [n / d for n, d in zip(numerator, denominator, strict=True)]
    out = np.asarray(numerator, dtype=np.float64) / np.asarray(denominator, dtype=np.float64)
    return out.tolist() if few else out


def subtract(minuend: FloatColumn, subtrahend: FloatColumn) -> FloatColumn:
    """``minuend - subtrahend``; a few rows take the same IEEE subtraction in Python floats."""
    if _few(minuend, subtrahend):
        return [a - b for a, b in zip(minuend, subtrahend, strict=True)]
    return np.asarray(minuend, dtype=np.float64) - np.asarray(subtrahend, dtype=np.float64)


def log1p(*columns: FloatColumn) -> list[FloatColumn]:
    """NumPy's ``log1p`` of each column. A few rows' columns go through NumPy too (``math.log1p``
    differs in the last bit), all in one call."""
    if all(type(c) is list for c in columns):
        return np.log1p(np.array(columns, dtype=np.float64)).tolist()  # type: ignore[no-any-return]
    return [np.log1p(np.asarray(c, dtype=np.float64)) for c in columns]


@dataclass(frozen=True)
class FeatureDef:
    """One model input column.

    ``sources`` names the declaration fields the feature is derived from, so that a feature policy
    can tell which raw attributes a model really uses.
    """

    name: str
    label: str
    kind: Literal["numeric", "categorical"]
    sources: tuple[str, ...]


class PreparedColumns(dict):  # type: ignore[type-arg]
    """Columns (with their derived fields) whose text and number forms are converted once.

    A transform reads the same field many times (an HS code feeds features, categories and seven
    entity keys); converting it each time was most of the cost of a whole-file transform. The cached
    arrays are shared: callers must not modify them.
    """

    def __init__(self, cols: Columns) -> None:
        super().__init__(cols)
        self.derived: tuple[str, ...] = ()  # the names of the derived fields among the columns
        self._text: dict[str, TextColumn] = {}
        self._number: dict[str, FloatColumn] = {}
        self._arrow: dict[str, pa.Array] = {}

    def arrow(self, name: str) -> pa.Array:
        """The text form of a field as an Arrow array (see :func:`as_arrow_text`), converted once."""
        if (out := self._arrow.get(name)) is None:
            values = self[name]
            # an Arrow-backed column as it is; anything else from its text form (already converted)
            out = as_arrow_text(values) if _is_arrow_text(values) else _arrow_of_text(self.text(name))
            self._arrow[name] = out
        return out

    @property
    def n_rows(self) -> int:
        return len(next(iter(self.values()))) if self else 0

    def text(self, name: str) -> TextColumn:
        if (out := self._text.get(name)) is None:
            values = self[name]
            if type(values) is list and len(values) < SMALL:  # a request's: as_text_column, inlined
                out = [v if type(v) is str else None if is_missing(v) else str(v) for v in values]
            else:
                out = as_text_column(values)
            self._text[name] = out
        return out

    def number(self, name: str) -> FloatColumn:
        if (out := self._number.get(name)) is None:
            out = self._number[name] = as_float_column(self[name])
        return out


def per_positive(numerator: FloatColumn, denominator: FloatColumn) -> FloatColumn:
    """``numerator / denominator`` where the denominator is positive, else NaN (a unit value per kg,
    a weight per bag); a few rows take the same IEEE division without NumPy's per-call cost."""
    if _few(numerator, denominator):
        return [n / d if d > 0 else np.nan for n, d in zip(numerator, denominator, strict=True)]
    numerator, denominator = np.asarray(numerator), np.asarray(denominator)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def text_of(cols: Columns, name: str) -> TextColumn:
    """``as_text_column(cols[name])``, converted once per prepared batch."""
    if isinstance(cols, PreparedColumns):
        return cols.text(name)
    return as_text_column(cols[name])


def number_of(cols: Columns, name: str) -> FloatColumn:
    """``as_float_column(cols[name])``, converted once per prepared batch."""
    if isinstance(cols, PreparedColumns):
        return cols.number(name)
    return as_float_column(cols[name])


def map_distinct(fn: Callable[..., Any], *columns: TextColumn) -> list[Any]:
    """``[fn(*values) for values in zip(*columns)]``, calling ``fn`` once per distinct combination.

    For text columns (str / None) of a big batch, which repeat few values: an HS code and origin map
    to one reference unit value however many declarations carry them. A dict of the combinations
    seen is as fast as factorising the columns at every size, and simpler.
    """
    rows = zip(*columns, strict=True)
    if (len(columns[0]) if columns else 0) < SMALL:
        return [fn(*values) for values in rows]
    seen: dict[tuple[Any, ...], Any] = {}
    out = []
    for values in rows:
        if values not in seen:
            seen[values] = fn(*values)
        out.append(seen[values])
    return out


@dataclass
class Vocabulary:
    """A fixed, versioned category list. Codes are positions; ``OTHER`` is the last code."""

    categories: list[str]

    @classmethod
    def fit(cls, values: TextColumn, min_count: int) -> Vocabulary:
        counts = pd.Series([v for v in values if v is not None], dtype=object).value_counts()
        kept = sorted(str(k) for k, n in counts.items() if n >= min_count)
        return cls(categories=[*kept, OTHER])

    def __post_init__(self) -> None:
        self._index = {c: i for i, c in enumerate(self.categories)}
        self.other_code = self._index[OTHER]

    @cached_property
    def _arrow(self) -> pa.Array:
        return pa.array(self.categories, type=pa.large_string())

    def __contains__(self, value: object) -> bool:
        return value in self._index

    def code(self, value: str | None) -> float:
        """The code of one value (see :meth:`encode`)."""
        return math.nan if value is None else self._index.get(value, self.other_code)

    def codes(self, values: TextColumn) -> list[float]:
        """The codes of a few values (see :meth:`encode`), as a list."""
        return list(map(self.code, values))

    def encode(self, values: TextColumn) -> np.ndarray:
        """Codes as float (LightGBM's input type); None → NaN (missing); unseen → OTHER.

        ``values`` are str or None (as :func:`as_str_array` gives them); a big batch is looked up in
        one hash-table pass instead of value by value.
        """
        if len(values) < SMALL:
            return np.array(self.codes(values), dtype=np.float64)
        try:
            text = _strict_arrow_text(values)
        except (pa.ArrowTypeError, pa.ArrowInvalid):  # not all str / None: value by value
            return np.array(self.codes(values), dtype=np.float64)
        codes = (
            pc.index_in(text, value_set=self._arrow).fill_null(self.other_code).to_numpy().astype(np.float64)
        )
        codes[text.is_null().to_numpy(zero_copy_only=False)] = np.nan
        return codes

    def decode(self, code: float) -> str | None:
        if math.isnan(code):
            return None
        return self.categories[int(code)]


def as_arrow_text(values: Any) -> pa.Array:
    """A text column (see :func:`as_str_array`) as an Arrow large_string array, None → null.

    A pandas column already stored as Arrow strings is taken as it is (no copy).
    """
    if _is_arrow_text(values):
        out = pa.array(values).cast(pa.large_string())
        return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out
    return _arrow_of_text(as_str_array(values))


def _arrow_of_text(text: TextColumn) -> pa.Array:
    """Arrow large_string array of a text column's values (None → null).

    A value that is not a str (an object column of numbers passes through :func:`as_str_array` as it
    is) is written as its ``str()``, as a pandas ``str`` column would store it.
    """
    try:
        return _strict_arrow_text(text)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return pa.array([None if v is None else str(v) for v in text], type=pa.large_string())


def _strict_arrow_text(text: TextColumn) -> pa.Array:
    """Arrow large_string array of values that are str / None (anything else raises)."""
    return pa.array(np.asarray(text, dtype=object), type=pa.large_string())


def _is_arrow_text(values: Any) -> bool:
    """A pandas column of strings stored by Arrow (pandas' ``str`` dtype)."""
    dtype = getattr(values, "dtype", None)
    return isinstance(values, pd.Series) and isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"


def join_key(parts: Sequence[str | None]) -> str | None:
    """The key of one entity from its parts (str / None): None when any part is missing."""
    return None if None in parts else "|".join(parts)  # type: ignore[arg-type]


def entity_key(cols: Columns, fields: Sequence[str]) -> TextColumn:
    """Key of an entity (one field) or of a pair of fields, None when any part is missing."""
    parts = [text_of(cols, f) for f in fields]
    if len(parts) == 1:
        return parts[0]
    if len(parts[0]) < SMALL:  # a request's few rows: plain Python beats building Arrow arrays
        return [join_key(items) for items in zip(*parts, strict=True)]
    return arrow_key(cols, fields).to_numpy(zero_copy_only=False)


_SEPARATOR = pa.scalar("|", pa.large_string())


def lookup_keys(cols: PreparedColumns, fields: Sequence[str]) -> TextColumn | pa.Array:
    """An entity's keys for :meth:`EntityHistory.lookup` of a big batch: Arrow where that is exact
    (a pair's joined key; a field stored as Arrow strings), else the field's text column."""
    if len(fields) > 1:
        return arrow_key(cols, fields)
    name = fields[0]
    return cols.arrow(name) if _is_arrow_text(cols[name]) else cols.text(name)


def arrow_key(cols: Columns, fields: Sequence[str]) -> pa.Array:
    """:func:`entity_key` of a big batch as an Arrow array (a missing part makes the key null)."""
    if isinstance(cols, PreparedColumns):
        parts = [cols.arrow(f) for f in fields]
    else:
        parts = [as_arrow_text(cols[f]) for f in fields]
    if len(parts) == 1:
        return parts[0]
    return pc.binary_join_element_wise(*parts, _SEPARATOR)


@dataclass
class EntityHistory:
    """Past declarations, inspections and findings of one kind of entity (importer, agency, pair…).

    At serving time the totals as of the training cut-off are looked up; in training every row gets
    the totals of strictly earlier days (see :func:`history_as_of`), so no row sees its own or any
    later outcome.
    """

    fields: tuple[str, ...]
    totals: dict[str, list[int]] = field(default_factory=dict)  # key -> [seen, inspected, hits]
    alias: str = ""  # a short name for a long key ("lane", "consignment")

    @property
    def name(self) -> str:
        return self.alias or "_".join(f.removesuffix("_id") for f in self.fields)

    def counts_of(self, key: str | None) -> Sequence[float]:
        """(seen, inspected, hits) of one key: zeros for a new entity, NaNs for a missing key."""
        return _NAN3 if key is None else self.totals.get(key, _ZERO3)

    def _counts(self, keys: TextColumn) -> np.ndarray:
        """(n, 3) counts of ``keys``, key by key."""
        counts_of = self.counts_of
        return np.array([counts_of(k) for k in keys], dtype=np.float64).reshape(-1, 3)

    @cached_property
    def _table(self) -> tuple[pa.Array, np.ndarray]:
        """The totals' keys (Arrow) and a (keys + 1, 3) matrix whose last row is the new entity's."""
        counts = np.zeros((len(self.totals) + 1, 3), dtype=np.float64)
        if self.totals:
            counts[:-1] = np.array(list(self.totals.values()), dtype=np.float64)
        return pa.array(list(self.totals), type=pa.large_string()), counts

    def lookup(self, keys: TextColumn | pa.Array) -> np.ndarray:
        """(n, 3) counts of ``keys`` (str or None) as of the cut-off; see :meth:`counts_of`.

        A batch with more keys than the history knows is looked up in one hash-table pass (Arrow's
        ``index_in``; strings compare as Python's do). That pass first hashes every known key, on
        every call (≈ 7 ms for 100,000 of them): a smaller batch is looked up key by key in the dict.
        """
        if len(keys) < SMALL or len(keys) < len(self.totals):
            if isinstance(keys, pa.Array):
                keys = keys.to_numpy(zero_copy_only=False)  # str, and None for null
            return self._counts(keys)
        known, counts = self._table
        if not isinstance(keys, pa.Array):
            try:
                keys = _strict_arrow_text(keys)
            except (pa.ArrowTypeError, pa.ArrowInvalid):  # not all str / None: key by key, as a dict
                return self._counts(keys)
        positions = pc.index_in(keys, value_set=known).fill_null(len(counts) - 1).to_numpy()
        out = counts[positions]
        out[keys.is_null().to_numpy(zero_copy_only=False)] = np.nan
        return out


def history_as_of(
    keys: TextColumn,
    day: np.ndarray,
    inspected: np.ndarray,
    hit: np.ndarray,
    freeze_from: int | None = None,
) -> tuple[np.ndarray, dict[str, list[int]]]:
    """Per row: (seen, inspected, hits) of the same key on *earlier* days; and the final totals.

    ``freeze_from`` (a day number) freezes the history on that day, as a released model is frozen at
    its cut-off: rows from that day on add nothing, so each of them sees exactly the totals of the
    days before ``freeze_from``. Training uses it to give the validation period the features that the
    model would have had in production, not the outcomes of earlier validation days.
    """
    live = np.ones(len(keys), dtype=np.int64) if freeze_from is None else (day < freeze_from).astype(np.int64)
    frame = pd.DataFrame(
        {
            "k": pd.Series(keys, dtype=object),
            "d": day,
            "n": live,
            "i": inspected.astype(np.int64) * live,
            "h": hit.astype(np.int64) * live,
        }
    )
    present = frame["k"].notna().to_numpy()
    out = np.zeros((len(frame), 3), dtype=np.float64)
    out[~present] = np.nan
    known = frame[present]
    if known.empty:
        return out, {}
    daily = known.groupby(["k", "d"], sort=True)[["n", "i", "h"]].sum()
    prior = daily.groupby(level=0).cumsum() - daily
    index = pd.MultiIndex.from_arrays([known["k"].to_numpy(), known["d"].to_numpy()])
    out[present] = prior.reindex(index).to_numpy(dtype=np.float64)
    totals_frame = daily.groupby(level=0).sum()
    totals = {
        str(k): [int(n), int(i), int(h)]
        for k, (n, i, h) in zip(totals_frame.index, totals_frame.to_numpy(), strict=True)
    }
    return out, totals


def history_features(counts: np.ndarray | list[list[float]], prior: float, strength: float) -> np.ndarray:
    """(seen, inspected, smoothed hit rate) per entity from its (seen, inspected, hits) counts.

    ``counts`` is (n, 3·entities): an array, or a list of a few rows' counts (at least one row; the
    lists are modified). The rate is shrunk toward the overall rate ``prior``: (hits + m·p) /
    (inspections + m) with m = ``strength``; all entities' rates are computed at once.
    """
    shift = strength * prior
    if len(counts) < SMALL and strength > 0:  # the same IEEE arithmetic on Python floats (and ints)
        rows = counts if isinstance(counts, list) else counts.tolist()
        for row in rows:
            for k in range(2, len(row), 3):
                row[k] = (row[k] + shift) / (row[k - 1] + strength)
        out = np.array(rows, dtype=np.float64)
        return out if isinstance(counts, list) else out.reshape(counts.shape)
    counts = np.asarray(counts, dtype=np.float64)
    out = np.array(counts, dtype=np.float64)
    out[:, 2::3] = (counts[:, 2::3] + shift) / (counts[:, 1::3] + strength)
    return out


def digest(obj: Any) -> str:
    """SHA-256 of the canonical JSON of ``obj`` (a vocabulary version, a state fingerprint)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()
