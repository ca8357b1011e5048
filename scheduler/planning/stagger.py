"""Stagger offsets: where in `[tick, tick + window)` each job of a fan-out may start. Pure and deterministic.

Offsets have microsecond resolution (the resolution of `timedelta`) and always lie in `[0, window)`;
a zero window gives zero.

- `none`: every job starts at the tick.
- `spread`: job `index` of `total` (cohort order) starts at `floor(index * window / total)`, so the cohort is
  spread evenly and consecutive jobs are at most `ceil(window / total)` apart.
- `hash`: the offset is a fixed point of the window chosen by the BLAKE2b digest of the entity key (never
  Python's `hash()`, which is salted per process), so an entity starts at the same offset at every tick, in
  every process and on every replica.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import TYPE_CHECKING

from scheduler.config.models import StaggerStrategy

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["compile_stagger", "stagger_offset"]

_HASH_BITS = 64


def _hash_fraction(key: str) -> int:
    """A stable 64-bit number for `key` (BLAKE2b, 8-byte digest, big-endian)."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=_HASH_BITS // 8).digest(), "big")


_ZERO = timedelta(0)
_MICROSECOND = timedelta(microseconds=1)


def stagger_offset(
    strategy: StaggerStrategy, window: timedelta, key: str, index: int, total: int | None
) -> timedelta:
    """The offset from the tick at which job `index` of `total` (entity `key`) may start: in `[0, window)`.

    Raises ValueError for a negative window, and for `spread` without `total` or with `index` outside
    `[0, total)`.
    """
    if window < timedelta(0):
        raise ValueError(f"stagger window {window} is negative; use a window of 0 or more")
    if strategy is StaggerStrategy.SPREAD:
        # Checked even for a zero window, so a caller that forgot the total finds out on the first tick.
        if total is None:
            raise ValueError(
                "stagger strategy 'spread' needs the cohort size (total); count the cohort first"
            )
        if not 0 <= index < total:
            raise ValueError(f"stagger index {index} is outside the cohort of {total} rows")
    span = window // _MICROSECOND
    if span == 0 or strategy is StaggerStrategy.NONE:
        return timedelta(0)
    if strategy is StaggerStrategy.SPREAD:
        assert total is not None  # checked above
        return timedelta(microseconds=index * span // total)
    return timedelta(microseconds=_hash_fraction(key) * span >> _HASH_BITS)


def compile_stagger(
    strategy: StaggerStrategy, window: timedelta, total: int | None
) -> Callable[[str, int], timedelta]:
    """`stagger_offset` with the strategy, window and total checked once: the result maps (key, index) to
    the same offset `stagger_offset(strategy, window, key, index, total)` gives, for a whole cohort."""
    if window < _ZERO or strategy is StaggerStrategy.SPREAD:  # checked per row, exactly as before
        return lambda key, index: stagger_offset(strategy, window, key, index, total)
    span = window // _MICROSECOND
    if span == 0 or strategy is StaggerStrategy.NONE:
        return lambda key, index: _ZERO
    blake2b, from_bytes, size, micro = hashlib.blake2b, int.from_bytes, _HASH_BITS // 8, _MICROSECOND

    def hashed(key: str, index: int) -> timedelta:
        digest = blake2b(key.encode(), digest_size=size).digest()
        # `micro * n` is the same timedelta as `timedelta(microseconds=n)`, built without keyword parsing.
        return micro * (from_bytes(digest, "big") * span >> _HASH_BITS)

    return hashed
