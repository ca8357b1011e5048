"""Cron fire instants: cron + time zone + interval in, UTC instants out. Pure: the clock is an argument.

A cron expression has five fields (minute, hour, day of month, month, day of week), or one of the macros
`@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`. It is matched against the
local wall clock of an IANA time zone; every instant returned is timezone-aware and in UTC.

DST rule. The hour field decides how a schedule treats wall times that a DST change skips or repeats:

- **Fixed hour**: the hour field has neither `*` nor a `/` step (`30 1 * * *`, `0 9,17 * * *`,
  `0 1-3 * * *`). Each matching wall time fires exactly once per matching day:
  - *skipped* (spring forward): it fires at the first valid instant after the gap, i.e. at the transition
    itself (`30 2 * * *` in America/New_York fires at 03:00 local on the spring-forward day);
  - *repeated* (fall back): it fires once, at the first occurrence (`30 1 * * *` fires at 01:30 EDT only;
    croniter alone fires it twice).
  Several skipped wall times of one day therefore collapse into a single fire at the transition.
- **Wildcard hour**: the hour field contains `*` or a `/` step (`30 * * * *`, `0 */2 * * *`,
  `0 0-23/3 * * *`). It fires at every real instant whose local wall time matches: a repeated wall time
  fires twice (they are distinct instants), and a skipped wall time does not fire (it never happens).

The rule is read from the text of the hour field, not from its expansion: `0-23/1` is "every hour" (wildcard)
although it lists every hour, and `1-3` is three fixed hours.

Ticks are a function of the schedule alone. Every matching wall time maps to its instant(s) by the rule above,
whatever window is asked for; a window only filters: for any window and any split of it, the ticks of the
whole are the ticks of the parts, and `next_tick`/`previous_tick` agree with `ticks`. In particular a window
that starts exactly at a spring-forward transition holds the fires moved there (`30 2 * * *` in New York on
2026-03-08 fires at 07:00Z, in `[07:00Z, 08:00Z)` as in `[06:00Z, 08:00Z)`).

croniter parses and expands a cron; the wall clock is walked here, day by day over the expanded times (croniter
walks the extensions it alone knows: `L`, `W`, `#`), which is an order of magnitude faster than croniter's
`get_next` (benchmarks/ticks_cost.py).
"""

from __future__ import annotations

import bisect
import functools
import itertools
from collections import deque
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from scheduler.config.models import Schedule

__all__ = ["min_interval", "next_tick", "previous_tick", "schedule_ticks", "ticks", "wall_instant"]

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MINUTE = timedelta(minutes=1)
_SECOND = timedelta(seconds=1)
_DAY = timedelta(days=1)
# _first_wall probes the zone's offset every 12 hours over the two days after a window's start.
_PROBE = timedelta(hours=12)
_PROBES = 5
# A plain cron that matches no day in this many years never matches (Feb 29 recurs within 8).
_NEVER_YEARS = 30
# previous_tick looks back through growing windows; the last one is "about a year" (a yearly cron's
# previous fire is at most 366 days plus a DST hour away).
_LOOKBACK = (timedelta(hours=1), timedelta(days=1), timedelta(days=32), timedelta(days=367))
# min_interval measures DST effects at the transitions of this year, in the schedule's zone.
_ANCHOR_YEAR = 2025
# Wall-clock day patterns repeat within a leap cycle for practical purposes (Feb 29 included).
_DAY_SPAN_YEARS = 4
# Longest fold or gap measured around a transition (real ones are 30 min to 2 h).
_TRANSITION_MARGIN = timedelta(hours=4)


@dataclass(frozen=True)
class _Days:
    """Which calendar days a standard cron matches (croniter's rule: day of month OR day of week when both
    are restricted). `None` is `*`; days of week count from Sunday = 0."""

    months: frozenset[int]
    month_days: frozenset[int] | None
    week_days: frozenset[int] | None

    def match(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        if self.month_days is None:
            return self.week_days is None or (day.weekday() + 1) % 7 in self.week_days
        if self.week_days is None:
            return day.day in self.month_days
        return day.day in self.month_days or (day.weekday() + 1) % 7 in self.week_days


@dataclass(frozen=True)
class _Cron:
    expr: str
    fields: tuple[str, str, str, str, str]
    fixed_hour: bool
    # The wall times of a matching day (ascending) and the matching days, for crons of plain numbers, ranges,
    # lists and steps; None for croniter's extensions (L, W, #), which croniter itself walks.
    times: tuple[timedelta, ...] | None = None
    days: _Days | None = None


def _plain(values: Sequence[object], low: int, high: int) -> frozenset[int] | None:
    """A field's expansion as a set of numbers (all of low..high for `*`); None when it is not plain."""
    if list(values) == ["*"]:
        return frozenset(range(low, high + 1))
    if not all(isinstance(v, int) for v in values):
        return None
    return frozenset(int(str(v)) for v in values)


def _walk_plan(expr: str) -> tuple[tuple[timedelta, ...], _Days] | None:
    """The times and days of a cron of plain fields, or None when croniter must walk it."""
    walker = croniter(expr)
    if walker.nth_weekday_of_month or getattr(walker, "nearest_weekday", None):
        return None
    minute, hour, dom, month, dow = walker.expanded
    minutes, hours = _plain(minute, 0, 59), _plain(hour, 0, 23)
    month_days, months, week_days = _plain(dom, 1, 31), _plain(month, 1, 12), _plain(dow, 0, 6)
    if minutes is None or hours is None or month_days is None or months is None or week_days is None:
        return None
    times = tuple(timedelta(hours=h, minutes=m) for h in sorted(hours) for m in sorted(minutes))
    days = _Days(
        months=months,
        month_days=None if list(dom) == ["*"] else month_days,
        week_days=None if list(dow) == ["*"] else week_days,
    )
    return times, days


@functools.lru_cache(maxsize=16384)  # one entry per distinct cron text: 10,000 schedules stay parsed
def _parse(cron: str) -> _Cron:
    text = " ".join(cron.split())
    expr = _MACROS.get(text.lower(), text)
    parts = expr.split(" ")
    if len(parts) != 5:
        raise ValueError(
            f"cron {cron!r} has {len(parts)} fields; write 5 (minute hour day-of-month month day-of-week), "
            "e.g. '30 2 * * *', or a macro (@hourly, @daily, @weekly, @monthly, @yearly)"
        )
    try:
        plan = _walk_plan(expr)
    except CroniterError as exc:
        raise ValueError(f"cron {cron!r} does not parse: {exc}") from None
    minute, hour, dom, month, dow = parts
    times, days = plan if plan is not None else (None, None)
    fixed_hour = "*" not in hour and "/" not in hour
    return _Cron(expr, (minute, hour, dom, month, dow), fixed_hour=fixed_hour, times=times, days=days)


@functools.lru_cache(maxsize=1024)
def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"time zone {timezone!r} is unknown; use an IANA name such as UTC, Europe/Berlin, America/New_York"
        ) from None


def _require_aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name}={value.isoformat()} is naive; pass a timezone-aware datetime")
    return value.astimezone(UTC)


def _offset(instant: datetime, zone: ZoneInfo) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always has an offset
    return offset


def _transition_after_gap(zone: ZoneInfo, wall: datetime, before: timedelta, after: timedelta) -> datetime:
    """The instant a gap ends (first valid instant after it), for a wall time `wall` inside the gap."""
    # `wall - after` reads `wall` with the new offset and lands before the transition; `wall - before`
    # reads it with the old offset and lands at or after it. Transitions fall on whole seconds.
    lo = (wall - after).replace(tzinfo=UTC)
    hi = (wall - before).replace(tzinfo=UTC)
    while hi - lo > _SECOND:
        mid = lo + timedelta(seconds=(hi - lo) // _SECOND // 2)
        if _offset(mid, zone) == after:
            hi = mid
        else:
            lo = mid
    return hi


def _first_wall(zone: ZoneInfo, start: datetime) -> datetime:
    """A wall time (tagged UTC) at or before every matching wall time whose fire instant is at or after `start`.

    A wall time `w` fires at an instant `t` with `w = t + offset(t)`, or, when `w` is skipped, at the end of
    the gap `t`, with `w >= t' + offset(t')` for the instant `t'` just before it. So `w` is at least the
    lowest wall reading of any instant from just before `start` on. Past `start + 2 days` no reading can be
    lower than the one at `start` (offsets of one zone differ by less than two days), and before that the
    offset takes at most two values (tzdata's offset changes are more than three days apart; the probes
    every 12 hours would still see a change that lasts longer than that). The walk starting here sees
    every wall time that can fire inside any window that begins at `start`: where a window starts never
    changes what is in it.
    """
    just_before = start - _SECOND
    low = min(_offset(just_before + _PROBE * i, zone) for i in range(_PROBES))
    return (just_before + low).replace(second=0, microsecond=0)  # a wall time, tagged UTC


def _walls(spec: _Cron, first: datetime) -> Iterator[datetime]:
    """Every matching wall time from `first` (a whole minute) on, ascending: the wall clock walked as if it had
    no DST, each wall time tagged UTC (so that `wall - offset` is its instant). Stops past `_NEVER_YEARS`
    without a match (a cron such as `0 0 30 2 *`)."""
    if spec.times is None or spec.days is None:
        walker = croniter(spec.expr, first - _MINUTE)  # strictly after its start
        while True:
            try:
                yield walker.get_next(datetime)
            except CroniterBadDateError:
                return
    times, days = spec.times, spec.days
    day = first.date()
    index = bisect.bisect_left(times, first - datetime(day.year, day.month, day.day, tzinfo=UTC))
    give_up = min(day.year + _NEVER_YEARS, date.max.year)
    while day.year < give_up:
        if day.month not in days.months:  # the whole month is out: jump to the first of the next one
            day = date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)
            index = 0
            continue
        if days.match(day):
            midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
            while index < len(times):
                yield midnight + times[index]
                index += 1
            give_up = min(day.year + _NEVER_YEARS, date.max.year)
        day += _DAY
        index = 0


def _stream(spec: _Cron, zone: ZoneInfo, start: datetime) -> Iterator[datetime]:
    """Every fire instant from `start` on, in UTC, strictly increasing (may begin with some before it)."""
    first: list[datetime] = []  # first occurrences of repeated wall times, held until the fold ends
    second: list[datetime] = []  # their second occurrences (wildcard hour only)
    last: datetime | None = None
    utcoffset = zone.utcoffset  # reads a datetime's wall fields and fold, whatever its tzinfo
    for wall in _walls(spec, _first_wall(zone, start)):
        before = utcoffset(wall)  # fold=0: for a skipped or repeated wall time, the offset before the change
        assert before is not None
        if before == utcoffset(wall + _DAY) and not first:
            # The common case, without the slow fold=1 read: a skipped or repeated wall time reads another
            # offset a day later (the change ends its gap or fold, at most a day long, and the next change
            # is days away), so this one is plain.
            instant = wall - before
            if last is None or instant > last:
                last = instant
                yield instant
            continue
        after = utcoffset(wall.replace(fold=1))
        assert after is not None
        if before > after:
            # Repeated wall time (fall back): every first occurrence precedes every second one, so
            # the fold is emitted as two runs once it is over.
            first.append(wall - before)
            if not spec.fixed_hour:
                second.append(wall - after)
            continue
        out = [*first, *second]
        first.clear()
        second.clear()
        if before == after:
            out.append(wall - before)
        elif spec.fixed_hour:
            # Skipped wall time (spring forward): fire when the gap ends.
            out.append(_transition_after_gap(zone, wall, before, after))
        for instant in out:
            # Several skipped wall times map to one transition instant, which may also match itself.
            if last is None or instant > last:
                last = instant
                yield instant
    yield from (instant for instant in [*first, *second] if last is None or instant > last)


def ticks(cron: str, timezone: str, start: datetime, end: datetime) -> Iterator[datetime]:
    """Fire instants `t` with `start <= t < end`, in UTC, strictly increasing (DST rule: module docstring).

    Raises ValueError for a naive `start`/`end`, an unknown time zone or a cron that does not parse.
    """
    spec = _parse(cron)
    zone = _zone(timezone)
    lo = _require_aware("start", start)
    hi = _require_aware("end", end)
    return _between(spec, zone, lo, hi)


def _between(spec: _Cron, zone: ZoneInfo, start: datetime, end: datetime) -> Iterator[datetime]:
    if start >= end:
        return
    for instant in _stream(spec, zone, start):
        if instant >= end:
            return
        if instant >= start:
            yield instant


def next_tick(cron: str, timezone: str, after: datetime) -> datetime:
    """The first fire instant strictly after `after`, in UTC.

    Raises ValueError as `ticks` does, and when the cron never fires again (e.g. `0 0 30 2 *`).
    """
    spec = _parse(cron)
    zone = _zone(timezone)
    at = _require_aware("after", after)
    for instant in _stream(spec, zone, at):
        if instant > at:
            return instant
    raise ValueError(f"cron {cron!r} never fires after {at.isoformat()}")


def previous_tick(cron: str, timezone: str, before: datetime) -> datetime | None:
    """The last fire instant strictly before `before`, in UTC; None when there is none within about a year."""
    spec = _parse(cron)
    zone = _zone(timezone)
    at = _require_aware("before", before)
    for span in _LOOKBACK:
        last = deque(_between(spec, zone, at - span, at), maxlen=1)
        if last:
            return last[0]
    return None


def wall_instant(wall: datetime, timezone: str) -> datetime:
    """The first instant, in UTC, at which the wall clock of `timezone` reads `wall` (naive) or later.

    The instant itself for an ordinary wall time, its first occurrence when a fall-back repeats it, the end of
    the gap (the first valid instant after it) when a spring-forward skips it: the fixed-hour DST rule. So the
    local hour `[wall_instant(02:00), wall_instant(03:00))` is empty on a day that skips it, and a fire moved
    out of it lies in the hour it happens. Raises ValueError for an unknown time zone.
    """
    zone = _zone(timezone)
    naive = wall.replace(tzinfo=None)
    before = naive.replace(tzinfo=zone, fold=0).utcoffset()
    after = naive.replace(tzinfo=zone, fold=1).utcoffset()
    assert before is not None
    assert after is not None
    if before >= after:  # exists once, or twice (first occurrence: read with the offset before the change)
        return (naive - before).replace(tzinfo=UTC)
    return _transition_after_gap(zone, naive, before, after)


def schedule_ticks(schedule: Schedule, start: datetime, end: datetime) -> Iterator[datetime]:
    """`ticks` over a schedule's cron and time zone."""
    return ticks(schedule.cron, schedule.timezone, start, end)


def _expand(values: Sequence[object], low: int, high: int) -> list[int]:
    if "*" in [str(v) for v in values]:
        return list(range(low, high + 1))
    return sorted({int(str(v)) for v in values})


def _wall_min_interval(spec: _Cron) -> timedelta:
    """The shortest gap between consecutive matching wall times (the clock of a zone without DST)."""
    expanded = croniter(spec.expr).expanded
    minutes = _expand(expanded[0], 0, 59)
    hours = _expand(expanded[1], 0, 23)
    times = sorted(h * 60 + m for h in hours for m in minutes)
    best: int | None = min((b - a for a, b in itertools.pairwise(times)), default=None)
    # Day-level: the fewest days between two matching days (day-of-month, month and day-of-week fields),
    # measured over a leap cycle and stopped early at one day, the least there can be.
    days_expr = f"0 0 {spec.fields[2]} {spec.fields[3]} {spec.fields[4]}"
    anchor = datetime(_ANCHOR_YEAR, 1, 1, tzinfo=UTC)
    stop = anchor.replace(year=_ANCHOR_YEAR + _DAY_SPAN_YEARS)
    walker = croniter(days_expr, anchor - _MINUTE)
    previous: datetime | None = None
    fewest_days: int | None = None
    try:
        while fewest_days != 1:
            day = walker.get_next(datetime)
            if previous is not None:
                gap = (day - previous).days
                fewest_days = gap if fewest_days is None else min(fewest_days, gap)
                if day >= stop:
                    break
            previous = day
    except CroniterBadDateError:
        pass
    if fewest_days is not None:
        across = fewest_days * 1440 - (times[-1] - times[0])
        best = across if best is None else min(best, across)
    if best is None:
        raise ValueError(f"cron {spec.expr!r} fires at most once; it has no interval")
    return timedelta(minutes=best)


def _transitions(zone: ZoneInfo, year: int) -> list[datetime]:
    """The instants (UTC) at which the zone's offset changes during `year`."""
    found: list[datetime] = []
    day = datetime(year, 1, 1, tzinfo=UTC)
    end = day.replace(year=year + 1)
    while day < end:
        lo, hi = day, day + _DAY
        if _offset(lo, zone) != _offset(hi, zone):
            while hi - lo > _SECOND:
                mid = lo + timedelta(seconds=(hi - lo) // _SECOND // 2)
                if _offset(mid, zone) == _offset(lo, zone):
                    lo = mid
                else:
                    hi = mid
            found.append(hi)
        day += _DAY
    return found


@functools.lru_cache(maxsize=1024)
def _min_interval(cron: str, timezone: str) -> timedelta:
    spec = _parse(cron)
    zone = _zone(timezone)
    best = _wall_min_interval(spec)
    # A DST change moves fires only near the transition: measure the real gaps there.
    for transition in _transitions(zone, _ANCHOR_YEAR):
        lo = transition - _TRANSITION_MARGIN
        hi = transition + _TRANSITION_MARGIN
        around = list(_between(spec, zone, lo, hi))
        earlier = previous_tick(cron, timezone, lo)
        if earlier is not None:
            around.insert(0, earlier)
        around.append(next_tick(cron, timezone, around[-1] if around else lo - _SECOND))
        for a, b in itertools.pairwise(around):
            best = min(best, b - a)
    return best


def min_interval(cron: str, timezone: str) -> timedelta:
    """The shortest gap between two consecutive fire instants of `cron` in `timezone`. Pure and cached.

    Wall-clock gaps come from the cron fields (days measured over the leap cycle from 2025-01-01); DST
    effects are measured at the zone's transitions of 2025, e.g. `45 * * * *` in Australia/Lord_Howe
    gives 30 minutes (01:45 repeats half an hour later on the fall-back day). Raises ValueError for a cron
    that fires at most once or does not parse, or an unknown zone.
    """
    return _min_interval(cron, timezone)
