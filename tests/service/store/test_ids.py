"""Ledger record ids: RFC 9562 version 7 UUIDs, ordered by the millisecond they were made."""

from __future__ import annotations

import time
import uuid

from service.store.ids import new_record_id


def test_ids_are_version_7_uuids_carrying_their_millisecond():
    before = time.time_ns() // 1_000_000
    text = new_record_id()
    after = time.time_ns() // 1_000_000
    value = uuid.UUID(text)
    assert str(value) == text  # canonical text form, as the store keeps it
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert before <= value.int >> 80 <= after


def test_ids_made_in_later_milliseconds_sort_after_earlier_ones():
    ids = []
    for _ in range(5):
        ids.append(new_record_id())
        time.sleep(0.002)
    assert ids == sorted(ids)  # as text, as the indexes compare them


def test_ids_made_in_one_millisecond_differ_in_their_random_bits():
    ids = [new_record_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    low_bits = {uuid.UUID(i).int & ((1 << 62) - 1) for i in ids}
    assert len(low_bits) == len(ids)
