"""Building blocks shared by the cargo and passenger feature builders.

Every function here takes *columns* (a mapping of field name to a sequence of values) rather than a
DataFrame. Training passes whole columns of a history file; the service passes columns of length one
built straight from a validated record. One code path serves both, and no 1-row DataFrame (≈ 7 ms)
is ever built on the request path.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

Columns = Mapping[str, Any]  # field -> 1-D array-like of equal length

#: Code of the category that stands for "rare in training or never seen": LightGBM learns a split
#: for it from the rare training categories, so an unseen value at serving time is scored as such,
#: explicitly, instead of being silently remapped.
OTHER = "__other__"

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def is_missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def as_str_array(values: Any) -> np.ndarray:
    """Object array of str or None, whatever came in (pandas str/object columns, lists, NumPy).

    Whole columns take a vectorised path; a request's columns of length one take the plain loop.
    """
    if isinstance(values, pd.Series):
        if not pd.api.types.is_string_dtype(values.dtype):
            values = values.astype("str")  # pandas 3: missing values stay missing
        return values.to_numpy(dtype=object, na_value=None)
    arr = np.asarray(values, dtype=object)
    out = np.empty(arr.shape[0], dtype=object)
    for i, v in enumerate(arr):
        out[i] = None if is_missing(v) else str(v)
    return out


def as_float_array(values: Any) -> np.ndarray:
    if isinstance(values, pd.Series):
        return values.astype("float64").to_numpy(na_value=np.nan)
    arr = np.asarray(values, dtype=object)
    return np.array([np.nan if is_missing(v) else float(v) for v in arr], dtype=np.float64)


def as_datetime_array(values: Any) -> np.ndarray:
    """datetime64[us] array; inputs are naive UTC (the schemas normalise aware instants)."""
    if isinstance(values, pd.Series):
        return values.to_numpy(dtype="datetime64[us]")
    return np.asarray(values, dtype="datetime64[us]")


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


@dataclass
class Vocabulary:
    """A fixed, versioned category list. Codes are positions; ``OTHER`` is the last code."""

    categories: list[str]

    @classmethod
    def fit(cls, values: np.ndarray, min_count: int) -> Vocabulary:
        counts = pd.Series([v for v in values if v is not None], dtype=object).value_counts()
        kept = sorted(str(k) for k, n in counts.items() if n >= min_count)
        return cls(categories=[*kept, OTHER])

    def __post_init__(self) -> None:
        self._index = {c: i for i, c in enumerate(self.categories)}
        self.other_code = self._index[OTHER]

    def encode(self, values: np.ndarray) -> np.ndarray:
        """Codes as float (LightGBM's input type); None → NaN (missing); unseen → OTHER."""
        index, other = self._index, self.other_code
        return np.array([np.nan if v is None else index.get(v, other) for v in values], dtype=np.float64)

    def decode(self, code: float) -> str | None:
        if math.isnan(code):
            return None
        return self.categories[int(code)]


def entity_key(cols: Columns, fields: Sequence[str]) -> np.ndarray:
    """Key of an entity (one field) or of a pair of fields, None when any part is missing."""
    parts = [as_str_array(cols[f]) for f in fields]
    if len(parts) == 1:
        return parts[0]
    if len(parts[0]) < 256:  # a request's few rows: plain Python beats building pandas Series
        out = np.empty(len(parts[0]), dtype=object)
        for i, items in enumerate(zip(*parts, strict=True)):
            out[i] = None if any(p is None for p in items) else "|".join(items)
        return out
    joined = pd.Series(parts[0], dtype="str")
    for part in parts[1:]:
        joined = joined + "|" + pd.Series(part, dtype="str")  # a missing part makes the key missing
    return joined.to_numpy(dtype=object, na_value=None)


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


def history_as_of(
    keys: np.ndarray,
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


def lookup_totals(history: EntityHistory, keys: np.ndarray) -> np.ndarray:
    """(seen, inspected, hits) as of the cut-off; a new entity has zeros, a missing key NaNs."""
    zero = (0, 0, 0)
    nan = (np.nan, np.nan, np.nan)
    get = history.totals.get
    return np.array([nan if k is None else get(k, zero) for k in keys], dtype=np.float64).reshape(-1, 3)


def smoothed_rate(counts: np.ndarray, prior: float, strength: float) -> np.ndarray:
    """Hit rate shrunk toward the overall rate: (hits + m·p) / (inspections + m)."""
    return (counts[:, 2] + strength * prior) / (counts[:, 1] + strength)


def digest(obj: Any) -> str:
    """SHA-256 of the canonical JSON of ``obj`` (a vocabulary version, a state fingerprint)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()
