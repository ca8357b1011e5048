"""Cron ticks: DST gaps and folds, boundaries, errors, and properties over random ranges."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.config.models import Cohort, Schedule
from scheduler.planning.ticks import (
    min_interval,
    next_tick,
    previous_tick,
    schedule_ticks,
    ticks,
    wall_instant,
)
from tests.unit.planning.helpers import ZONES, transition_days

NY = "America/New_York"
LORD_HOWE = "Australia/Lord_Howe"


def local(instants: list[datetime], zone: str) -> list[str]:
    """Instants as local ISO strings, for readable assertions."""
    return [t.astimezone(ZoneInfo(zone)).isoformat() for t in instants]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A UTC instant."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# -- named DST cases --------------------------------------------------------------------------


def test_spring_forward_gap_fires_at_end_of_gap() -> None:
    """A fixed-hour schedule whose local time is skipped fires once, at the first instant after the gap."""
    got = list(ticks("30 2 * * *", NY, utc(2025, 3, 8), utc(2025, 3, 11)))
    assert local(got, NY) == [
        "2025-03-08T02:30:00-05:00",
        "2025-03-09T03:00:00-04:00",
        "2025-03-10T02:30:00-04:00",
    ]


def test_spring_forward_collapses_skipped_times_into_one_fire() -> None:
    """Several skipped wall times of one fixed-hour schedule fire once, together, at the transition."""
    got = list(ticks("0,20,40 2,3 * * *", NY, utc(2025, 3, 9, 5), utc(2025, 3, 9, 9)))
    assert local(got, NY) == [
        "2025-03-09T03:00:00-04:00",
        "2025-03-09T03:20:00-04:00",
        "2025-03-09T03:40:00-04:00",
    ]


def test_fall_back_fold_fires_fixed_hour_once_at_first_occurrence() -> None:
    """A fixed-hour schedule whose local time repeats fires once, at the first (daylight) occurrence."""
    got = list(ticks("30 1 * * *", NY, utc(2025, 11, 1), utc(2025, 11, 4)))
    assert local(got, NY) == [
        "2025-11-01T01:30:00-04:00",
        "2025-11-02T01:30:00-04:00",
        "2025-11-03T01:30:00-05:00",
    ]


def test_fall_back_fold_fires_wildcard_hour_twice() -> None:
    """A wildcard-hour schedule fires at both real instants of a repeated wall time, in order."""
    got = list(ticks("*/30 * * * *", NY, utc(2025, 11, 2, 5), utc(2025, 11, 2, 7)))
    assert local(got, NY) == [
        "2025-11-02T01:00:00-04:00",
        "2025-11-02T01:30:00-04:00",
        "2025-11-02T01:00:00-05:00",
        "2025-11-02T01:30:00-05:00",
    ]


def test_spring_forward_gap_skips_wildcard_hour() -> None:
    """A wildcard-hour schedule does not fire at a wall time that never happens."""
    got = list(ticks("30 * * * *", NY, utc(2025, 3, 9, 5), utc(2025, 3, 9, 9)))
    assert local(got, NY) == [
        "2025-03-09T00:30:00-05:00",
        "2025-03-09T01:30:00-05:00",
        "2025-03-09T03:30:00-04:00",
        "2025-03-09T04:30:00-04:00",
    ]


def test_stepped_hour_counts_as_wildcard() -> None:
    """An hour field with a `/` step follows the wildcard rule, so a repeated 01:00 fires twice."""
    got = list(ticks("0 0-23/1 * * *", NY, utc(2025, 11, 2, 5), utc(2025, 11, 2, 7)))
    assert local(got, NY) == ["2025-11-02T01:00:00-04:00", "2025-11-02T01:00:00-05:00"]


def test_lord_howe_half_hour_gap_fires_at_half_past() -> None:
    """In Australia/Lord_Howe the spring gap is 02:00–02:30, so a 02:15 schedule fires at 02:30 that day."""
    got = list(ticks("15 2 * * *", LORD_HOWE, utc(2025, 10, 3), utc(2025, 10, 7)))
    assert local(got, LORD_HOWE) == [
        "2025-10-04T02:15:00+10:30",
        "2025-10-05T02:30:00+11:00",
        "2025-10-06T02:15:00+11:00",
        "2025-10-07T02:15:00+11:00",
    ]


def test_lord_howe_half_hour_fold_repeats_thirty_minutes_later() -> None:
    """In Australia/Lord_Howe 01:30–02:00 repeats, so an hourly :45 schedule fires twice 30 minutes apart."""
    got = list(ticks("45 * * * *", LORD_HOWE, utc(2025, 4, 5, 13), utc(2025, 4, 5, 17)))
    assert local(got, LORD_HOWE) == [
        "2025-04-06T00:45:00+11:00",
        "2025-04-06T01:45:00+11:00",
        "2025-04-06T01:45:00+10:30",
        "2025-04-06T02:45:00+10:30",
    ]


def test_lord_howe_fold_fixed_hour_fires_once() -> None:
    """In Australia/Lord_Howe a fixed 01:45 schedule fires once on the fall-back day."""
    got = list(ticks("45 1 * * *", LORD_HOWE, utc(2025, 4, 5), utc(2025, 4, 6)))
    assert local(got, LORD_HOWE) == ["2025-04-06T01:45:00+11:00"]


def test_london_gap_moves_one_am_to_two_am() -> None:
    """Europe/London skips 01:00–02:00 in spring, so a 01:30 schedule fires at 02:00 BST."""
    got = list(ticks("30 1 * * *", "Europe/London", utc(2025, 3, 30), utc(2025, 3, 31)))
    assert local(got, "Europe/London") == ["2025-03-30T02:00:00+01:00"]


def test_berlin_fold_fires_once() -> None:
    """Europe/Berlin repeats 02:00–03:00 in autumn, and a 02:15 schedule fires once, in summer time."""
    got = list(ticks("15 2 * * *", "Europe/Berlin", utc(2025, 10, 26), utc(2025, 10, 27)))
    assert local(got, "Europe/Berlin") == ["2025-10-26T02:15:00+02:00"]


def test_zone_without_dst_fires_every_24_hours() -> None:
    """In a zone without DST a daily schedule fires exactly 24 hours apart all year."""
    got = list(ticks("30 2 * * *", "Asia/Kolkata", utc(2025, 1, 1), utc(2026, 1, 1)))
    assert len(got) == 365
    assert {b - a for a, b in itertools.pairwise(got)} == {timedelta(days=1)}


# -- windows that start at a transition: ticks are a function of the schedule alone ---------------------


def windows_around(instant: datetime) -> list[tuple[datetime, datetime]]:
    """Windows that hold `instant`: starting a day before, half an hour before, a microsecond before, at it."""
    end = instant + timedelta(hours=12)
    return [(instant - delta, end) for delta in (timedelta(days=1), timedelta(minutes=30), MICRO, ZERO)]


MICRO = timedelta(microseconds=1)
ZERO = timedelta(0)

TRANSITION_CASES = [
    # (cron, zone, transition instant, local wall time of the fire at that instant)
    pytest.param("30 2 * * *", NY, utc(2026, 3, 8, 7), "2026-03-08T03:00:00-04:00", id="new-york-spring"),
    pytest.param("0 2 * * *", NY, utc(2026, 3, 8, 7), "2026-03-08T03:00:00-04:00", id="new-york-at-02"),
    pytest.param(
        "30 1 * * *",
        "Europe/Dublin",
        utc(2026, 3, 29, 1),
        "2026-03-29T02:00:00+01:00",
        id="dublin-negative-dst",
    ),
    pytest.param(
        "15 2 * * *", LORD_HOWE, utc(2026, 10, 3, 15, 30), "2026-10-04T02:30:00+11:00", id="lord-howe-30-min"
    ),
    pytest.param(
        "15 2 * * *",
        "Europe/Berlin",
        utc(2026, 3, 29, 1),
        "2026-03-29T03:00:00+02:00",
        id="berlin-billing-rollup",
    ),
    pytest.param(
        "30 0 * * *",
        "America/Sao_Paulo",
        utc(2018, 11, 4, 3),
        "2018-11-04T01:00:00-02:00",
        id="sao-paulo-midnight",
    ),
    pytest.param(
        "5 0 * * *",
        "Asia/Kathmandu",
        utc(1985, 12, 31, 18, 30),
        "1986-01-01T00:15:00+05:45",
        id="kathmandu-1986",
    ),
    pytest.param(
        "0 12 * * *",
        "Pacific/Apia",
        utc(2011, 12, 30, 10),
        "2011-12-31T00:00:00+14:00",
        id="apia-skipped-day",
    ),
]


@pytest.mark.parametrize(("cron", "zone", "transition", "fire"), TRANSITION_CASES)
def test_skipped_time_fires_at_the_transition_whatever_the_window(
    cron: str, zone: str, transition: datetime, fire: str
) -> None:
    """A fixed-hour fire moved to the end of a gap is in every window that holds that instant, also in one
    that starts exactly at it (the issue: a window starting at 07:00Z lost New York's 03:00 fire)."""
    for start, end in windows_around(transition):
        got = [t for t in ticks(cron, zone, start, end) if t < transition + timedelta(minutes=1)]
        assert local(got, zone)[-1:] == [fire], start
        assert got[-1] == transition
    assert next_tick(cron, zone, transition - MICRO) == transition
    assert next_tick(cron, zone, transition - timedelta(hours=1)) == transition
    assert previous_tick(cron, zone, transition + MICRO) == transition


def test_new_york_split_at_the_transition_keeps_the_fire() -> None:
    """ticks(06:00Z, 08:00Z) == ticks(06:00Z, 07:00Z) + ticks(07:00Z, 08:00Z) on 2026-03-08 in New York."""
    a, b, c = utc(2026, 3, 8, 6), utc(2026, 3, 8, 7), utc(2026, 3, 8, 8)
    whole = list(ticks("30 2 * * *", NY, a, c))
    assert whole == [b]
    assert list(ticks("30 2 * * *", NY, a, b)) + list(ticks("30 2 * * *", NY, b, c)) == whole


def test_dublin_fall_back_fires_fixed_hour_once_and_wildcard_twice() -> None:
    """Europe/Dublin's winter time is a negative DST in tzdata; the fold still behaves like any other:
    01:30 repeats, a fixed 01:30 fires at the first (IST) one, a :30 wildcard at both."""
    window = (utc(2026, 10, 25, 1), utc(2026, 10, 25, 2))  # starts at the transition
    assert list(ticks("30 1 * * *", "Europe/Dublin", *window)) == []
    assert local(
        list(ticks("30 1 * * *", "Europe/Dublin", utc(2026, 10, 24), utc(2026, 10, 26))), "Europe/Dublin"
    ) == [
        "2026-10-24T01:30:00+01:00",
        "2026-10-25T01:30:00+01:00",
    ]
    assert local(list(ticks("30 * * * *", "Europe/Dublin", *window)), "Europe/Dublin") == [
        "2026-10-25T01:30:00+00:00"
    ]
    assert local(
        list(ticks("30 * * * *", "Europe/Dublin", utc(2026, 10, 25, 0), utc(2026, 10, 25, 1))),
        "Europe/Dublin",
    ) == ["2026-10-25T01:30:00+01:00"]


def test_lord_howe_fall_back_window_at_the_transition() -> None:
    """Lord Howe repeats 01:30–02:00: a window starting at the change holds the second :45, not a fixed one."""
    transition = utc(2026, 4, 4, 15)  # 02:00 +11:00 becomes 01:30 +10:30
    assert local(
        list(ticks("45 * * * *", LORD_HOWE, transition, transition + timedelta(hours=1))), LORD_HOWE
    ) == ["2026-04-05T01:45:00+10:30"]
    assert list(ticks("45 1 * * *", LORD_HOWE, transition, transition + timedelta(hours=1))) == []


def test_sao_paulo_fires_every_day_once_dst_is_abolished() -> None:
    """Brazil abolished DST in 2019: the first Sunday of November 2019 has no gap, 00:30 fires at 00:30."""
    got = list(ticks("30 0 * * *", "America/Sao_Paulo", utc(2019, 11, 2), utc(2019, 11, 5)))
    assert local(got, "America/Sao_Paulo") == [
        "2019-11-02T00:30:00-03:00",
        "2019-11-03T00:30:00-03:00",
        "2019-11-04T00:30:00-03:00",
    ]


def test_apia_fires_once_for_the_day_that_never_happened() -> None:
    """Samoa skipped 2011-12-30: a daily noon schedule fires once for it, when the next day begins."""
    got = list(ticks("0 12 * * *", "Pacific/Apia", utc(2011, 12, 29), utc(2012, 1, 1)))
    assert local(got, "Pacific/Apia") == [
        "2011-12-29T12:00:00-10:00",
        "2011-12-31T00:00:00+14:00",
        "2011-12-31T12:00:00+14:00",
        "2012-01-01T12:00:00+14:00",
    ]


@pytest.mark.parametrize(
    ("wall", "zone", "instant"),
    [
        pytest.param(datetime(2026, 3, 8, 2, 30), NY, utc(2026, 3, 8, 7), id="skipped-end-of-gap"),
        pytest.param(datetime(2026, 3, 8, 3, 0), NY, utc(2026, 3, 8, 7), id="first-after-gap"),
        pytest.param(datetime(2026, 11, 1, 1, 30), NY, utc(2026, 11, 1, 5, 30), id="repeated-first"),
        pytest.param(datetime(2026, 6, 1, 9, 0), NY, utc(2026, 6, 1, 13), id="ordinary"),
        pytest.param(datetime(2011, 12, 30, 5, 0), "Pacific/Apia", utc(2011, 12, 30, 10), id="apia-day"),
    ],
)
def test_wall_instant_follows_the_fixed_hour_rule(wall: datetime, zone: str, instant: datetime) -> None:
    """wall_instant: the instant a wall time happens, its first occurrence, or the end of its gap."""
    assert wall_instant(wall, zone) == instant


# -- boundaries ---------------------------------------------------------------------------------


def test_start_is_inclusive_and_end_exclusive() -> None:
    """A tick exactly at `start` is returned and a tick exactly at `end` is not."""
    got = list(ticks("0 * * * *", "UTC", utc(2025, 1, 1, 10), utc(2025, 1, 1, 12)))
    assert got == [utc(2025, 1, 1, 10), utc(2025, 1, 1, 11)]


def test_empty_or_reversed_range_yields_nothing() -> None:
    """A range whose end is not after its start has no ticks."""
    assert list(ticks("* * * * *", "UTC", utc(2025, 1, 1), utc(2025, 1, 1))) == []
    assert list(ticks("* * * * *", "UTC", utc(2025, 1, 2), utc(2025, 1, 1))) == []


def test_ticks_are_returned_in_utc() -> None:
    """Every tick carries the UTC time zone, whatever zone the inputs use."""
    berlin = ZoneInfo("Europe/Berlin")
    got = list(ticks("0 9 * * *", "Europe/Berlin", datetime(2025, 6, 1, tzinfo=berlin), utc(2025, 6, 3)))
    assert got == [utc(2025, 6, 1, 7), utc(2025, 6, 2, 7)]
    assert all(t.tzinfo is UTC for t in got)


def test_next_tick_at_exact_tick_returns_the_following_one() -> None:
    """next_tick is strictly after its argument, even when the argument is itself a tick."""
    assert next_tick("0 * * * *", "UTC", utc(2025, 1, 1, 10)) == utc(2025, 1, 1, 11)


def test_previous_tick_at_exact_tick_returns_the_one_before() -> None:
    """previous_tick is strictly before its argument, even when the argument is itself a tick."""
    assert previous_tick("0 * * * *", "UTC", utc(2025, 1, 1, 10)) == utc(2025, 1, 1, 9)


def test_previous_tick_finds_a_yearly_tick() -> None:
    """previous_tick looks back far enough to find a yearly schedule's last fire."""
    assert previous_tick("@yearly", "UTC", utc(2025, 12, 31)) == utc(2025, 1, 1)


def test_previous_tick_is_none_beyond_a_year() -> None:
    """previous_tick gives None when the schedule did not fire within about a year."""
    assert previous_tick("0 0 29 2 *", "UTC", utc(2027, 1, 1)) is None


def test_schedule_ticks_uses_the_schedules_cron_and_zone() -> None:
    """schedule_ticks reads the cron and the time zone from the schedule."""
    schedule = Schedule(cron="15 2 * * *", timezone="Europe/Berlin", cohort=Cohort(static=[]), queue="q")
    assert list(schedule_ticks(schedule, utc(2025, 1, 1), utc(2025, 1, 2))) == [utc(2025, 1, 1, 1, 15)]


# -- errors -------------------------------------------------------------------------------------


def test_naive_start_is_rejected() -> None:
    """A naive datetime raises ValueError naming the argument."""
    with pytest.raises(
        ValueError, match=r"^start=2025-01-01T00:00:00 is naive; pass a timezone-aware datetime$"
    ):
        list(ticks("* * * * *", "UTC", datetime(2025, 1, 1), utc(2025, 1, 2)))


def test_naive_after_is_rejected() -> None:
    """next_tick rejects a naive datetime too."""
    with pytest.raises(ValueError, match=r"^after=.* is naive"):
        next_tick("* * * * *", "UTC", datetime(2025, 1, 1))


def test_unknown_zone_is_rejected() -> None:
    """An unknown time zone raises ValueError with an example of a valid one."""
    with pytest.raises(ValueError, match=r"^time zone 'Mars/Olympus' is unknown; use an IANA name"):
        list(ticks("* * * * *", "Mars/Olympus", utc(2025, 1, 1), utc(2025, 1, 2)))


def test_cron_with_six_fields_is_rejected() -> None:
    """A cron with seconds (six fields) raises ValueError asking for five."""
    with pytest.raises(ValueError, match=r"^cron '0 \* \* \* \* \*' has 6 fields; write 5"):
        min_interval("0 * * * * *", "UTC")


def test_unparsable_cron_is_rejected() -> None:
    """A cron field out of range raises ValueError naming the cron."""
    with pytest.raises(ValueError, match=r"^cron '61 \* \* \* \*' does not parse"):
        next_tick("61 * * * *", "UTC", utc(2025, 1, 1))


# -- min_interval ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "zone", "expected"),
    [
        ("* * * * *", "UTC", timedelta(minutes=1)),
        ("*/5 * * * *", "Europe/Berlin", timedelta(minutes=5)),
        ("0 9 * * *", "Asia/Kolkata", timedelta(days=1)),
        ("0 9 * * mon-fri", "UTC", timedelta(days=1)),
        ("0 9 * * 1", "UTC", timedelta(days=7)),
        ("0 22,2 * * *", "UTC", timedelta(hours=4)),
        ("@monthly", "UTC", timedelta(days=28)),
        ("0 0 29 2 *", "UTC", timedelta(days=1461)),
    ],
)
def test_min_interval_of_wall_clock(cron: str, zone: str, expected: timedelta) -> None:
    """min_interval is the shortest wall-clock gap when DST does not shorten it."""
    assert min_interval(cron, zone) == expected


def test_min_interval_sees_lord_howe_fold() -> None:
    """An hourly :45 schedule in Australia/Lord_Howe fires 30 minutes apart once a year."""
    assert min_interval("45 * * * *", LORD_HOWE) == timedelta(minutes=30)


def test_min_interval_sees_spring_forward_gap() -> None:
    """A 01:30 and 02:30 schedule in New York fires 30 minutes apart when 02:30 is skipped."""
    assert min_interval("30 1,2 * * *", NY) == timedelta(minutes=30)


def test_min_interval_sees_weekly_shortened_by_dst() -> None:
    """A weekly Sunday-midnight schedule in Berlin is one hour short of a week across spring forward."""
    assert min_interval("0 0 * * 0", "Europe/Berlin") == timedelta(days=7) - timedelta(hours=1)


def test_min_interval_of_single_fire_cron_is_rejected() -> None:
    """A cron that matches no day at all raises ValueError."""
    with pytest.raises(ValueError, match=r"^cron '0 0 30 2 \*'"):
        min_interval("0 0 30 2 *", "UTC")


# -- properties ---------------------------------------------------------------------------------

FIXED_HOUR_CRONS = st.builds(
    lambda minute, hour: f"{minute} {hour} * * *", st.integers(0, 59), st.integers(0, 23)
)
ANY_CRONS = st.sampled_from(
    [
        "30 * * * *",
        "*/20 * * * *",
        "0 */2 * * *",
        "15,45 1-3 * * *",
        "*/7 2 * * *",
        "30 1 * * *",
        "30 2 * * *",
        "0 0 * * *",
        "45 1 * * 0",
    ]
)
_TRANSITIONS = {zone: transition_days(zone, range(2024, 2028)) for zone in ZONES}


@st.composite
def near_transition(draw: st.DrawFn, zone: str) -> datetime:
    """An instant within a few days of one of the zone's DST transitions (any day for a zone without)."""
    days = _TRANSITIONS[zone] or [utc(2025, 3, 30), utc(2026, 10, 25)]
    base = draw(st.sampled_from(days))
    return base + timedelta(seconds=draw(st.integers(-3 * 86400, 2 * 86400)))


@st.composite
def zone_and_start(draw: st.DrawFn) -> tuple[str, datetime]:
    zone = draw(st.sampled_from(ZONES))
    return zone, draw(near_transition(zone))


PROPERTY = settings(max_examples=60, deadline=None)


@PROPERTY
@given(cron=FIXED_HOUR_CRONS, where=zone_and_start(), days=st.integers(2, 20))
def test_fixed_hour_fires_once_per_local_day(cron: str, where: tuple[str, datetime], days: int) -> None:
    """A fixed-hour daily schedule fires exactly once on every whole local day of a range."""
    zone, start = where
    tz = ZoneInfo(zone)
    got = list(ticks(cron, zone, start, start + timedelta(days=days)))
    per_day = Counter(t.astimezone(tz).date() for t in got)
    first, last = start.astimezone(tz).date(), (start + timedelta(days=days)).astimezone(tz).date()
    inner = [first + timedelta(days=i) for i in range(1, (last - first).days)]
    assert all(per_day[day] == 1 for day in inner)
    assert max(per_day.values(), default=1) == 1


@PROPERTY
@given(cron=ANY_CRONS, where=zone_and_start(), hours=st.integers(1, 96))
def test_ticks_strictly_increase_in_utc(cron: str, where: tuple[str, datetime], hours: int) -> None:
    """Ticks are UTC, strictly increasing, and inside [start, end)."""
    zone, start = where
    end = start + timedelta(hours=hours)
    got = list(ticks(cron, zone, start, end))
    assert all(a < b for a, b in itertools.pairwise(got))
    assert all(start <= t < end and t.tzinfo is UTC for t in got)


@PROPERTY
@given(cron=ANY_CRONS, where=zone_and_start(), first=st.integers(0, 72 * 60), second=st.integers(0, 72 * 60))
def test_adjacent_ranges_concatenate(cron: str, where: tuple[str, datetime], first: int, second: int) -> None:
    """ticks(a, b) followed by ticks(b, c) equals ticks(a, c): nothing lost, nothing repeated."""
    zone, a = where
    b = a + timedelta(minutes=first)
    c = b + timedelta(minutes=second)
    assert list(ticks(cron, zone, a, b)) + list(ticks(cron, zone, b, c)) == list(ticks(cron, zone, a, c))


@PROPERTY
@given(cron=ANY_CRONS, where=zone_and_start())
def test_next_tick_agrees_with_ticks(cron: str, where: tuple[str, datetime]) -> None:
    """next_tick(t) is the first of ticks after t, and next_tick of a tick is the tick after it."""
    zone, at = where
    following = list(ticks(cron, zone, at, at + timedelta(days=15)))
    strictly_after = [t for t in following if t > at]
    assert next_tick(cron, zone, at) == strictly_after[0]
    assert next_tick(cron, zone, strictly_after[0]) == strictly_after[1]


@PROPERTY
@given(cron=ANY_CRONS, where=zone_and_start())
def test_previous_tick_agrees_with_ticks(cron: str, where: tuple[str, datetime]) -> None:
    """previous_tick(t) is the last of ticks before t."""
    zone, at = where
    preceding = list(ticks(cron, zone, at - timedelta(days=8), at))
    assert previous_tick(cron, zone, at) == preceding[-1]


@PROPERTY
@given(cron=ANY_CRONS, zone=st.sampled_from(ZONES))
def test_min_interval_bounds_every_gap(cron: str, zone: str) -> None:
    """No two consecutive ticks around the 2025 transitions are closer than min_interval."""
    shortest = min_interval(cron, zone)
    for day in _TRANSITIONS[zone] or [utc(2025, 6, 1)]:
        got = list(ticks(cron, zone, day - timedelta(days=8), day + timedelta(days=8)))
        assert all(b - a >= shortest for a, b in itertools.pairwise(got))
