"""Ticks are a function of the schedule alone: where a window starts or is split never changes its ticks.

Random standard 5-field crons, random IANA zones (every zone in tzdata, and a curated list of odd ones) and
windows around the zones' offset changes, with split points drawn anywhere, exactly at a transition, exactly
at a tick, or a microsecond either side of one.
"""

from __future__ import annotations

import functools
import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.planning.ticks import next_tick, previous_tick, ticks

CURATED = (
    "America/New_York",  # spring forward 02:00 → 03:00, fall back 02:00 → 01:00
    "Europe/Dublin",  # negative DST in tzdata: summer (IST) is standard time, winter (GMT) saves -1 h
    "Australia/Lord_Howe",  # 30-minute DST, southern hemisphere
    "Australia/Sydney",  # southern hemisphere
    "America/Sao_Paulo",  # southern hemisphere, changes at midnight, DST abolished in 2019
    "America/Santiago",  # changes at midnight
    "Pacific/Apia",  # skipped 2011-12-30 whole (-10 → +14)
    "Asia/Kathmandu",  # +05:30 → +05:45 in 1986
    "Pacific/Chatham",  # +12:45 / +13:45
    "America/St_Johns",  # -03:30 / -02:30
    "Antarctica/Troll",  # two-hour DST
    "Africa/Casablanca",  # DST suspended for Ramadan (negative DST in tzdata)
    "Europe/Moscow",  # permanent DST in 2011, back in 2014
    "UTC",
)
ALL_ZONES = tuple(sorted(available_timezones()))
_STEP = timedelta(days=1)
_SECOND = timedelta(seconds=1)
_MICRO = timedelta(microseconds=1)


def _offset(instant: datetime, zone: ZoneInfo) -> timedelta | None:
    return instant.astimezone(zone).utcoffset()


@functools.lru_cache(maxsize=4096)
def transitions(zone: str, year: int) -> tuple[datetime, ...]:
    """The instants (UTC, to the second) at which `zone` changes its UTC offset during `year`."""
    tz = ZoneInfo(zone)
    found: list[datetime] = []
    day = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    while day < end:
        lo, hi = day, day + _STEP
        if _offset(lo, tz) != _offset(hi, tz):
            while hi - lo > _SECOND:  # transitions fall on whole seconds
                mid = lo + _SECOND * ((hi - lo) // _SECOND // 2)
                lo, hi = (mid, hi) if _offset(mid, tz) == _offset(lo, tz) else (lo, mid)
            found.append(hi)
        day += _STEP
    return tuple(found)


def _field(low: int, high: int) -> st.SearchStrategy[str]:
    """One standard cron field over low..high: *, n, a-b, a,b,c, */s, a-b/s."""
    value = st.integers(low, high)
    span = st.tuples(value, value).map(sorted)
    return st.one_of(
        st.just("*"),
        value.map(str),
        span.map(lambda ab: f"{ab[0]}-{ab[1]}"),
        st.lists(value, min_size=2, max_size=4, unique=True).map(lambda vs: ",".join(map(str, sorted(vs)))),
        st.integers(2, max(2, (high - low) // 2)).map(lambda s: f"*/{s}"),
        st.tuples(span, st.integers(1, 5)).map(lambda x: f"{x[0][0]}-{x[0][1]}/{x[1]}"),
    )


def _sparse(low: int, high: int) -> st.SearchStrategy[str]:
    """A day field: mostly `*`, so that a window of a few days usually holds ticks."""
    return st.one_of(st.just("*"), st.just("*"), st.just("*"), _field(low, high))


def crons(near: datetime | None, zone: str) -> st.SearchStrategy[str]:
    """Standard crons; when `near` is a transition, often at the local hour (and minute) it skips or repeats."""
    hours = _field(0, 23)
    minutes = st.one_of(st.integers(0, 59).map(str), _field(0, 59).filter(lambda f: f not in ("*", "*/2")))
    if near is not None:
        wall = (near - _SECOND).astimezone(ZoneInfo(zone))  # the last wall time before the change
        hours = st.one_of(st.just(str(wall.hour)), st.just(f"{wall.hour},{(wall.hour + 1) % 24}"), hours)
        minutes = st.one_of(st.sampled_from(["0", "15", "30", "45", "0,30"]), minutes)
    return st.builds(
        lambda *fields: " ".join(fields),
        minutes,  # not every minute of days on end: the test would be slow, not stronger
        hours,
        _sparse(1, 28),  # 29-31 would let a cron never fire in some months: legal, but nothing to test
        _sparse(1, 12),
        _sparse(0, 6),
    )


@st.composite
def windows(draw: st.DrawFn) -> tuple[str, datetime, datetime, datetime | None]:
    """(zone, start, end, a transition inside or near the window if the zone has one that year)."""
    zone = draw(st.one_of(st.sampled_from(CURATED), st.sampled_from(ALL_ZONES)))
    year = draw(st.one_of(st.integers(2024, 2028), st.integers(1880, 2040)))
    changes = transitions(zone, year)
    if changes:
        anchor: datetime | None = draw(st.sampled_from(changes))
        assert anchor is not None
        base = anchor
    else:
        anchor = None
        base = datetime(year, 1, 1, tzinfo=UTC) + timedelta(seconds=draw(st.integers(0, 365 * 86400)))
    lead = draw(
        st.one_of(
            st.sampled_from([timedelta(0), -_MICRO, _MICRO, -timedelta(minutes=30), timedelta(minutes=30)]),
            st.integers(-2 * 86400 * 10**6, 86400 * 10**6).map(lambda us: timedelta(microseconds=us)),
        )
    )
    start = base + lead
    hours = draw(st.one_of(st.integers(0, 2), st.integers(3, 48)))
    length = timedelta(hours=hours, seconds=draw(st.integers(0, 3599)))
    return zone, start, start + length, anchor


@settings(max_examples=300, deadline=None)
@given(window=windows(), data=st.data())
def test_splitting_a_window_anywhere_changes_nothing(
    window: tuple[str, datetime, datetime, datetime | None], data: st.DataObject
) -> None:
    """ticks(a, c) == ticks(a, b) + ticks(b, c) for every b in [a, c], and next_tick/previous_tick agree."""
    zone, a, c, anchor = window
    cron = data.draw(crons(anchor, zone), label="cron")
    whole = list(ticks(cron, zone, a, c))
    exact = [t + d for t in whole for d in (timedelta(0), -_MICRO, _MICRO)]
    if anchor is not None:
        exact.append(anchor)
    inside = [p for p in exact if a <= p <= c]
    fraction = st.floats(0, 1).map(lambda f: a + (c - a) * f)
    chosen = data.draw(
        st.lists(
            st.one_of(fraction, st.sampled_from(inside)) if inside else fraction, min_size=1, max_size=3
        ),
        label="cuts",
    )
    cuts = sorted({a, *chosen, c})
    parts = [t for lo, hi in itertools.pairwise(cuts) for t in ticks(cron, zone, lo, hi)]
    assert parts == whole
    for point in cuts[:-1]:
        later = [t for t in whole if t > point]
        following = next_tick(cron, zone, point)
        assert following == later[0] if later else following >= c
        earlier = [t for t in whole if t < point]
        if earlier:
            assert previous_tick(cron, zone, point) == earlier[-1]


def _croniter_walk(cron: str, start: datetime, end: datetime) -> list[datetime]:
    """croniter's own walk of [start, end) in UTC (no DST): the reference for the wall-clock walk."""
    walker = croniter(cron, start - _MICRO)
    found: list[datetime] = []
    while (t := walker.get_next(datetime)) < end:
        found.append(t)
    return found


@settings(max_examples=200, deadline=None)
@given(
    cron=st.builds(
        lambda *fields: " ".join(fields),
        _field(0, 59).filter(lambda f: f not in ("*", "*/2")),
        _field(0, 23),
        _sparse(1, 31),
        _sparse(1, 12),
        st.one_of(_sparse(0, 6), st.just("7"), st.just("5-7")),
    ),
    start=st.datetimes(datetime(1990, 1, 1), datetime(2060, 1, 1), timezones=st.just(UTC)),
    days=st.integers(1, 40),
)
def test_wall_clock_walk_matches_croniter(cron: str, start: datetime, days: int) -> None:
    """In UTC (no DST) the ticks are exactly croniter's matches: same day-of-month OR day-of-week rule."""
    end = start + timedelta(days=days)
    assert list(ticks(cron, "UTC", start, end)) == _croniter_walk(cron, start, end)


@pytest.mark.parametrize("cron", ["0 0 L * *", "30 9 * * 1#2", "0 0 15W * *"])
def test_croniter_extensions_are_walked_by_croniter(cron: str) -> None:
    """Crons outside plain numbers (last day, nth weekday, nearest weekday) still tick as croniter says."""
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC)
    assert list(ticks(cron, "UTC", start, end)) == _croniter_walk(cron, start, end)
