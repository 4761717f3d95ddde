"""Shared, fully vectorised helpers for the synthetic inspection-history generators.

Nothing in here loops over rows in Python: every helper works on whole NumPy arrays so that the
generators scale to millions of rows in a few seconds.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa

MICROS_PER_SECOND = 1_000_000
MICROS_PER_DAY = 86_400 * MICROS_PER_SECOND

SELECTION_RANDOM = "random"
SELECTION_TARGETED = "targeted"
SELECTION_NONE = "none"


def check_args(rows: int, days: int, random_share: float) -> None:
    """Validate the arguments shared by both generators."""
    if int(rows) != rows or rows < 1:
        raise ValueError(f"rows must be a positive integer, got {rows!r}")
    if int(days) != days or days < 1:
        raise ValueError(f"days must be a positive integer, got {days!r}")
    if not 0.0 <= random_share <= 1.0:
        raise ValueError(f"random_share must lie in [0, 1], got {random_share!r}")


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically safe logistic function."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))


def or_combine(*probabilities: np.ndarray) -> np.ndarray:
    """Probability that at least one of several independent triggers fires."""
    keep = np.ones_like(np.asarray(probabilities[0], dtype=np.float64))
    for p in probabilities:
        keep = keep * (1.0 - np.asarray(p, dtype=np.float64))
    return 1.0 - keep


def normalise(weights: np.ndarray) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    return w / w.sum()


def zipf_weights(n: int, exponent: float, offset: float = 0.0) -> np.ndarray:
    """Zipf-Mandelbrot activity weights ``1 / (rank + offset) ** exponent`` for ranks 1..n."""
    ranks = np.arange(1, n + 1, dtype=np.float64)
    return normalise(1.0 / (ranks + offset) ** exponent)


def weighted_choice(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    """Indices drawn with probability proportional to ``weights`` (inverse-CDF, O(size log n))."""
    cdf = np.cumsum(np.asarray(weights, dtype=np.float64))
    cdf /= cdf[-1]
    idx = np.searchsorted(cdf, rng.random(size), side="right")
    return np.minimum(idx, len(cdf) - 1)


def weighted_choice_rows(rng: np.random.Generator, prob_rows: np.ndarray) -> np.ndarray:
    """One draw per row from a row-specific categorical distribution (rows of ``prob_rows``)."""
    cdf = np.cumsum(prob_rows, axis=1)
    cdf /= cdf[:, -1:]
    u = np.asarray(rng.random(prob_rows.shape[0]))[:, None]
    idx = (u >= cdf).sum(axis=1)
    return np.minimum(idx, prob_rows.shape[1] - 1)


def day_weights(
    start: dt.date,
    days: int,
    weekday: tuple[float, ...],
    season_amplitude: float = 0.0,
    season_peak_doy: int = 300,
    yearly_growth: float = 0.0,
    extra_peaks: tuple[tuple[int, int, float], ...] = (),
) -> np.ndarray:
    """Relative activity per calendar day.

    ``weekday`` holds seven factors (Monday first); a cosine season peaks on day-of-year
    ``season_peak_doy``; ``extra_peaks`` are (first_doy, last_doy, factor) windows such as
    the Christmas travel peak; ``yearly_growth`` adds a mild linear trend.
    """
    dates = np.datetime64(start, "D") + np.arange(days)
    dow = (dates.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    years = dates.astype("datetime64[Y]")
    doy = (dates - years.astype("datetime64[D]")).astype(np.int64) + 1
    w = np.asarray(weekday, dtype=np.float64)[dow]
    w = w * (1.0 + season_amplitude * np.cos(2 * np.pi * (doy - season_peak_doy) / 365.25))
    for first, last, factor in extra_peaks:
        w = np.where((doy >= first) & (doy <= last), w * factor, w)
    w = w * (1.0 + yearly_growth * np.arange(days) / 365.25)
    return w


def sample_days_in_windows(
    rng: np.random.Generator, weights: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """For each row draw a day index in ``[lo, hi)`` with probability proportional to ``weights``.

    Inverse-CDF sampling restricted to a per-row window, so the global weekday/season profile is
    preserved while every entity stays inside its own active period.
    """
    cdf = np.concatenate([[0.0], np.cumsum(weights)])
    a = cdf[lo]
    b = cdf[hi]
    target = a + rng.random(len(lo)) * (b - a)
    day = np.searchsorted(cdf, target, side="right") - 1
    return np.clip(day, lo, hi - 1)


def group_rank(keys: np.ndarray) -> np.ndarray:
    """0-based position of every element among the elements with the same key, in array order."""
    n = len(keys)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.ones(n, dtype=bool)
    starts[1:] = sorted_keys[1:] != sorted_keys[:-1]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - group_start
    return rank


def format_ids(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """``prefix`` + zero-padded decimal numbers, as a NumPy unicode array (vectorised)."""
    digits = np.strings.zfill(np.asarray(numbers, dtype=np.int64).astype("U"), width)
    return np.strings.add(prefix, digits)


def str_series(values: np.ndarray, missing: np.ndarray | None = None) -> pd.Series:
    """A pandas ``str`` column from a NumPy unicode array; ``missing`` positions become missing."""
    mask = None if missing is None or not missing.any() else np.asarray(missing, dtype=bool)
    return _arrow_to_str(pa.array(np.asarray(values), type=pa.string(), mask=mask))


def str_from_codes(vocab: np.ndarray, codes: np.ndarray, missing: np.ndarray | None = None) -> pd.Series:
    """A pandas ``str`` column ``vocab[codes]`` built without materialising Python strings per row."""
    mask = None if missing is None or not missing.any() else np.asarray(missing, dtype=bool)
    taken = pa.array(np.asarray(vocab), type=pa.string()).take(pa.array(np.asarray(codes), mask=mask))
    return _arrow_to_str(taken)


def _arrow_to_str(arr: pa.Array) -> pd.Series:
    series = arr.to_pandas()
    if series.dtype != "str":
        series = series.astype("str")
    return series


def timestamps(start: dt.date, micros: np.ndarray) -> np.ndarray:
    """Naive UTC ``datetime64[us]`` values ``start + micros``."""
    base = np.datetime64(start, "us")
    return base + np.asarray(micros, dtype=np.int64).astype("timedelta64[us]")


def select_for_inspection(
    rng: np.random.Generator, p_targeted: np.ndarray, random_share: float
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the selection process: random sampling first, then the legacy targeting rule.

    Returns ``(inspected, selection)``. A row picked by the random sample is labelled ``random``
    even when the legacy rule would also have picked it, so the random rows are an unbiased
    sample of all traffic.
    """
    n = len(p_targeted)
    is_random = rng.random(n) < random_share
    is_targeted = ~is_random & (rng.random(n) < p_targeted)
    selection = np.full(n, SELECTION_NONE, dtype=object)
    selection[is_targeted] = SELECTION_TARGETED
    selection[is_random] = SELECTION_RANDOM
    inspected = is_random | is_targeted
    return inspected, selection.astype("U8")


def revealed_int8(inspected: np.ndarray, outcome: np.ndarray) -> pd.arrays.IntegerArray:
    """Outcome as nullable ``Int8``: the value where inspected, ``<NA>`` elsewhere."""
    return pd.arrays.IntegerArray(np.asarray(outcome, dtype=np.int8), ~np.asarray(inspected, dtype=bool))


def revealed_float64(inspected: np.ndarray, values: np.ndarray) -> pd.arrays.FloatingArray:
    """Nullable ``Float64``: the value where inspected, ``<NA>`` elsewhere."""
    return pd.arrays.FloatingArray(np.asarray(values, dtype=np.float64), ~np.asarray(inspected, dtype=bool))
