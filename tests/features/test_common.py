"""The helpers' small branches (plain Python, for a request's few rows) equal their large ones."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest

from features.common import (
    NAT,
    OTHER,
    SMALL,
    EntityHistory,
    PreparedColumns,
    Vocabulary,
    as_datetime_array,
    as_float_array,
    as_str_array,
    as_text_column,
    calendar,
    day_number,
    entity_key,
    history_features,
    map_distinct,
)

REPEAT = SMALL + 1  # repeating a few values this often sends them down the large branch


def _bits(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64).view(np.uint64)


INSTANTS = [
    datetime(1969, 12, 31, 23, 30),
    datetime(1970, 1, 1),
    datetime(2024, 2, 29, 23, 59, 59, 999_999),
    datetime(2025, 6, 2, 9, 30, 0, 123),
    datetime(1, 1, 1),
    datetime(9999, 12, 31, 23, 59),
]


def test_instants_of_a_request_convert_as_numpy_converts_them():
    expected = np.asarray(INSTANTS, dtype="datetime64[us]")
    np.testing.assert_array_equal(as_datetime_array(list(INSTANTS)), expected)
    days = [date(1969, 12, 31), date(2025, 7, 15)]
    np.testing.assert_array_equal(as_datetime_array(days), np.asarray(days, dtype="datetime64[us]"))
    np.testing.assert_array_equal(as_datetime_array(pd.Series(INSTANTS)), expected)
    strings = ["2025-06-02T09:30:00", "1969-12-31T23:00:00"]  # not datetimes: NumPy parses them
    np.testing.assert_array_equal(as_datetime_array(strings), np.asarray(strings, dtype="datetime64[us]"))


def test_calendar_of_a_few_instants_equals_that_of_many():
    few = np.asarray(INSTANTS, dtype="datetime64[us]")
    many = np.tile(few, REPEAT)
    small, large = calendar(few), calendar(many)
    for part_small, part_large in zip(small, large, strict=True):
        assert part_small.dtype == part_large.dtype
        np.testing.assert_array_equal(np.tile(part_small, REPEAT), part_large)
    np.testing.assert_array_equal(np.tile(day_number(few), REPEAT), day_number(many))
    # the reference: NumPy's own calendar arithmetic
    days = few.astype("datetime64[D]")
    np.testing.assert_array_equal(small[0], days.astype(np.int64))
    np.testing.assert_array_equal(small[1], ((days.astype(np.int64) + 3) % 7).astype(np.float64))
    np.testing.assert_array_equal(small[2], (few - days).astype("timedelta64[h]").astype(np.float64))
    assert [d.weekday() for d in INSTANTS] == small[1].astype(int).tolist()


def test_a_missing_instant_takes_numpys_arithmetic_in_both_branches():
    few = np.array([NAT, 0], dtype=np.int64).view("datetime64[us]")
    small, large = calendar(few), calendar(np.tile(few, REPEAT))
    for part_small, part_large in zip(small, large, strict=True):
        np.testing.assert_array_equal(_bits(np.tile(part_small, REPEAT)), _bits(part_large))


def test_text_and_number_columns_are_the_same_whatever_the_container():
    values = ["a", None, float("nan"), pd.NA, 7, 1.5, "b"]
    expected = ["a", None, None, None, "7", "1.5", "b"]
    assert as_text_column(values) == expected
    assert as_str_array(values).tolist() == expected
    assert as_str_array(np.array(values, dtype=object)).tolist() == expected
    assert as_text_column(values * REPEAT).tolist() == expected * REPEAT
    numbers = [1.5, None, float("nan"), 3, np.float64(2.5), True]
    expected_numbers = np.array([1.5, np.nan, np.nan, 3.0, 2.5, 1.0])
    np.testing.assert_array_equal(_bits(as_float_array(numbers)), _bits(expected_numbers))
    np.testing.assert_array_equal(
        _bits(as_float_array(np.array([1.5, -np.nan, 3.0]))), _bits([1.5, np.nan, 3.0])
    )
    np.testing.assert_array_equal(_bits(as_float_array(pd.Series([1.5, None, 3]))), _bits([1.5, np.nan, 3.0]))


def test_category_codes_of_a_few_values_equal_those_of_many():
    vocab = Vocabulary(["a", "b", OTHER])
    few = ["b", None, "unseen", "a", OTHER]
    expected = np.array([1.0, np.nan, 2.0, 0.0, 2.0])
    np.testing.assert_array_equal(_bits(vocab.encode(few)), _bits(expected))
    many = np.array(few * REPEAT, dtype=object)
    np.testing.assert_array_equal(_bits(vocab.encode(many)), _bits(np.tile(expected, REPEAT)))
    odd = np.array([1, "a", float("nan"), None] * REPEAT, dtype=object)  # not all text: value by value
    np.testing.assert_array_equal(_bits(vocab.encode(odd)), _bits(np.tile([2.0, 0.0, 2.0, np.nan], REPEAT)))


def test_history_lookups_and_features_of_a_few_rows_equal_those_of_many():
    history = EntityHistory(("importer_id",), {"IMP1": [10, 4, 1], "IMP2": [3, 0, 0]})
    keys = ["IMP1", None, "NEW", "IMP2"]
    expected = np.array([[10, 4, 1], [np.nan] * 3, [0, 0, 0], [3, 0, 0]], dtype=np.float64)
    np.testing.assert_array_equal(_bits(history.lookup(keys)), _bits(expected))
    np.testing.assert_array_equal(
        _bits(history.lookup(np.array(keys * REPEAT, dtype=object))), _bits(np.tile(expected, (REPEAT, 1)))
    )
    counts = np.hstack([expected, expected[::-1]])
    small = history_features(counts, 0.0173, 20.0)
    large = history_features(np.tile(counts, (REPEAT, 1)), 0.0173, 20.0)
    np.testing.assert_array_equal(_bits(np.tile(small, (REPEAT, 1))), _bits(large))
    for j in (0, 1):  # the reference: column by column
        block = counts[:, 3 * j : 3 * j + 3]
        rate = (block[:, 2] + 20.0 * 0.0173) / (block[:, 1] + 20.0)
        np.testing.assert_array_equal(_bits(small[:, 3 * j + 2]), _bits(rate))
        np.testing.assert_array_equal(_bits(small[:, 3 * j : 3 * j + 2]), _bits(block[:, :2]))


def test_entity_keys_of_a_few_rows_equal_those_of_many():
    cols = {"a": ["x", None, "y", "z"], "b": ["1", "2", None, "3"]}
    expected = ["x|1", None, None, "z|3"]
    assert entity_key(cols, ("a", "b")) == expected
    many = {k: pd.Series(v * REPEAT, dtype="str") for k, v in cols.items()}
    assert entity_key(many, ("a", "b")).tolist() == expected * REPEAT
    assert entity_key(PreparedColumns(many), ("a", "b")).tolist() == expected * REPEAT


@pytest.mark.parametrize("n", [5, 5 * REPEAT])
def test_map_distinct_equals_calling_the_function_on_every_row(n):
    rng = np.random.default_rng(3)
    a = np.array(rng.choice(["x", "y", None, "z"], size=n), dtype=object)
    b = np.array(rng.choice(["1", None, "2"], size=n), dtype=object)
    calls = []

    def fn(p, q):
        calls.append((p, q))
        return f"{p}/{q}"

    assert map_distinct(fn, a, b) == [f"{p}/{q}" for p, q in zip(a, b, strict=True)]
    if n > SMALL:
        assert len(calls) == len(set(calls)) <= 12  # once per distinct pair


def test_an_object_column_of_numbers_is_looked_up_the_same_for_few_rows_and_many():
    """A text field that arrives as numbers in an object column keeps the dict's semantics (1 is not
    the key "1"); a pair's key is joined from the values' text, as a pandas str column writes them."""
    from features.common import lookup_keys

    history = EntityHistory(("a",), {"1": [5, 1, 0], "x": [2, 0, 0], "1|x": [7, 2, 1]})
    few = [1, "x", None, "1"]
    expected = np.array([[0, 0, 0], [2, 0, 0], [np.nan] * 3, [5, 1, 0]], dtype=np.float64)
    many = PreparedColumns({"a": pd.Series(np.array(few * REPEAT, dtype=object)), "b": ["x"] * (4 * REPEAT)})
    small = PreparedColumns({"a": pd.Series(np.array(few, dtype=object))})
    np.testing.assert_array_equal(_bits(history.lookup(small.text("a"))), _bits(expected))
    np.testing.assert_array_equal(
        _bits(history.lookup(lookup_keys(many, ("a",)))), _bits(np.tile(expected, (REPEAT, 1)))
    )
    assert lookup_keys(many, ("a", "b")).to_pylist()[:4] == ["1|x", "x|x", None, "1|x"]
