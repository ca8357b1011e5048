"""Stagger offsets: bounds, determinism, spread evenness and hash stability."""

from __future__ import annotations

import hashlib
import itertools
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.config.models import StaggerStrategy
from scheduler.planning.stagger import compile_stagger, stagger_offset

HOUR = timedelta(hours=1)
PROPERTY = settings(max_examples=100, deadline=None)
WINDOWS = st.builds(timedelta, microseconds=st.integers(0, 7 * 86400 * 10**6))


def test_none_is_zero() -> None:
    """Strategy `none` starts every job at the tick."""
    assert stagger_offset(StaggerStrategy.NONE, HOUR, "acme", 5, 10) == timedelta(0)


def test_zero_window_is_zero_for_every_strategy() -> None:
    """A zero window gives a zero offset whatever the strategy."""
    for strategy in StaggerStrategy:
        assert stagger_offset(strategy, timedelta(0), "acme", 0, 1) == timedelta(0)


def test_spread_divides_the_window_in_cohort_order() -> None:
    """Spread puts job i of n at floor(i * window / n)."""
    got = [stagger_offset(StaggerStrategy.SPREAD, timedelta(minutes=10), "k", i, 4) for i in range(4)]
    assert got == [
        timedelta(0),
        timedelta(minutes=2, seconds=30),
        timedelta(minutes=5),
        timedelta(minutes=7.5),
    ]


def test_spread_resolution_is_microseconds() -> None:
    """Spread floors to whole microseconds."""
    assert stagger_offset(StaggerStrategy.SPREAD, timedelta(seconds=1), "k", 1, 3) == timedelta(
        microseconds=333_333
    )


def test_spread_without_total_is_rejected() -> None:
    """Spread needs the cohort size and says so."""
    with pytest.raises(ValueError, match=r"^stagger strategy 'spread' needs the cohort size \(total\)"):
        stagger_offset(StaggerStrategy.SPREAD, HOUR, "k", 0, None)


def test_spread_index_outside_cohort_is_rejected() -> None:
    """Spread rejects an index at or past the cohort size."""
    with pytest.raises(ValueError, match=r"^stagger index 4 is outside the cohort of 4 rows$"):
        stagger_offset(StaggerStrategy.SPREAD, HOUR, "k", 4, 4)


def test_negative_window_is_rejected() -> None:
    """A negative window raises ValueError."""
    with pytest.raises(ValueError, match=r"is negative"):
        stagger_offset(StaggerStrategy.HASH, -HOUR, "k", 0, None)


def test_hash_is_blake2b_of_the_key() -> None:
    """The hash offset is the key's 64-bit BLAKE2b digest scaled onto the window, so any process agrees."""
    digest = int.from_bytes(hashlib.blake2b(b"acme", digest_size=8).digest(), "big")
    expected = timedelta(microseconds=digest * 3_600_000_000 >> 64)
    assert stagger_offset(StaggerStrategy.HASH, HOUR, "acme", 0, None) == expected


def test_hash_ignores_index_and_total() -> None:
    """An entity's hash offset does not depend on its position in the cohort."""
    a = stagger_offset(StaggerStrategy.HASH, HOUR, "acme", 0, None)
    assert stagger_offset(StaggerStrategy.HASH, HOUR, "acme", 999, 1000) == a


def test_hash_spreads_keys_over_the_window() -> None:
    """10,000 keys hashed into 10 equal buckets of the window fill each bucket to within 15% of even."""
    counts = [0] * 10
    for i in range(10_000):
        offset = stagger_offset(StaggerStrategy.HASH, HOUR, f"org-{i}", i, None)
        counts[offset * 10 // HOUR] += 1
    assert all(850 <= c <= 1150 for c in counts)


@PROPERTY
@given(
    strategy=st.sampled_from(StaggerStrategy),
    window=WINDOWS,
    key=st.text(),
    size=st.integers(1, 10**6),
    data=st.data(),
)
def test_offset_lies_in_window(
    strategy: StaggerStrategy, window: timedelta, key: str, size: int, data: st.DataObject
) -> None:
    """Every offset lies in [0, window), and is 0 for a zero window."""
    index = data.draw(st.integers(0, size - 1))
    offset = stagger_offset(strategy, window, key, index, size)
    assert timedelta(0) <= offset
    assert offset < window or offset == window == timedelta(0)


@PROPERTY
@given(window=WINDOWS, key=st.text())
def test_hash_is_stable(window: timedelta, key: str) -> None:
    """The same key gets the same hash offset on every call."""
    first = stagger_offset(StaggerStrategy.HASH, window, key, 0, None)
    assert all(stagger_offset(StaggerStrategy.HASH, window, key, i, None) == first for i in range(3))


@PROPERTY
@given(window=WINDOWS, size=st.integers(1, 2000))
def test_spread_is_monotone_and_even(window: timedelta, size: int) -> None:
    """Spread offsets never decrease with the index, start at 0, and are at most ceil(window / n) apart."""
    offsets = [stagger_offset(StaggerStrategy.SPREAD, window, "k", i, size) for i in range(size)]
    assert offsets[0] == timedelta(0)
    step = -(-window // timedelta(microseconds=1) // size)  # ceil(window / n) in microseconds
    gaps = [b - a for a, b in itertools.pairwise([*offsets, window])]
    assert all(timedelta(0) <= g <= timedelta(microseconds=step) for g in gaps[:-1])
    assert gaps[-1] <= timedelta(microseconds=step)


@PROPERTY
@given(
    strategy=st.sampled_from(StaggerStrategy),
    window=WINDOWS,
    keys=st.lists(st.text(), min_size=1, max_size=20),
)
def test_compiled_stagger_equals_stagger_offset(
    strategy: StaggerStrategy, window: timedelta, keys: list[str]
) -> None:
    """The compiled form the planner runs per row gives exactly `stagger_offset`'s offsets."""
    offset = compile_stagger(strategy, window, len(keys))
    for index, key in enumerate(keys):
        assert offset(key, index) == stagger_offset(strategy, window, key, index, len(keys))
