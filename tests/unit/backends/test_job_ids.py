"""pg-boss job ids: RFC 9562 version-7 UUIDs that grow within a generator (the job table's primary key is
then appended to, not scattered over)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from hypothesis import given
from hypothesis import strategies as st

from scheduler.backends.pgboss.ids import JobIds

if TYPE_CHECKING:
    from collections.abc import Callable

MS = int(datetime(2026, 11, 24, 14, 0, tzinfo=UTC).timestamp() * 1000)


def fixed_random(byte: int) -> Callable[[int], bytes]:
    """A random source returning the same byte over and over."""
    return lambda n: bytes([byte]) * n


@given(st.lists(st.integers(min_value=0, max_value=300), max_size=20))
def test_ids_of_one_generator_grow_across_takes_as_text_and_as_uuids(sizes: list[int]) -> None:
    ids = JobIds(clock_ms=lambda: MS)
    taken = [i for n in sizes for i in ids.take(n)]
    assert len(taken) == sum(sizes)
    assert taken == sorted(taken)
    assert len(set(taken)) == len(taken)
    assert [uuid.UUID(i).int for i in taken] == sorted(uuid.UUID(i).int for i in taken)


def test_ids_are_version_7_with_the_rfc_variant_and_the_generators_millisecond() -> None:
    for job_id in JobIds(clock_ms=lambda: MS).take(1000):
        parsed = uuid.UUID(job_id)
        assert str(parsed) == job_id  # canonical lowercase text, as PostgreSQL prints a uuid
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert parsed.int >> 80 == MS


def test_the_last_32_bits_are_fresh_randomness_per_id() -> None:
    tails = {uuid.UUID(i).int & 0xFFFFFFFF for i in JobIds(clock_ms=lambda: MS).take(1000)}
    assert len(tails) > 990  # 1,000 draws from 2**32 values: a repeat or two at most


def test_a_counter_that_would_run_out_moves_the_timestamp_on_and_keeps_growing() -> None:
    ids = JobIds(clock_ms=lambda: MS, random_bytes=fixed_random(0xFF))
    ids._counter = (1 << 42) - 2  # two ids before the 42-bit counter runs out
    before = ids.take(2)
    after = ids.take(3)
    assert before + after == sorted(before + after)
    assert {uuid.UUID(i).int >> 80 for i in before} == {MS}
    assert {uuid.UUID(i).int >> 80 for i in after} == {MS + 1}


def test_nothing_taken_is_nothing() -> None:
    assert JobIds().take(0) == []


def test_a_take_across_the_counters_high_part_still_grows() -> None:
    # The counter's high 12 bits are the 3rd group; a take that crosses 2**30 changes it midway.
    ids = JobIds(clock_ms=lambda: MS)
    ids._counter = (1 << 30) - 2
    taken = ids.take(4)
    assert taken == sorted(taken)
    assert [i.split("-")[2] for i in taken] == ["7000", "7000", "7001", "7001"]
    assert [_counter(i) for i in taken] == [(1 << 30) - 2 + k for k in range(4)]


def _counter(job_id: str) -> int:
    """The 42-bit counter of an id: 12 bits after the version, 30 after the variant."""
    value = uuid.UUID(job_id).int
    return ((value >> 64) & 0xFFF) << 30 | ((value >> 32) & 0x3FFFFFFF)
