"""The pure catch-up decision: which ticks to fire, which to record as skipped, where the horizon goes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.config.models import Schedule
from scheduler.runtime.catchup import Backoff, LedgerRow, Outcome, SkipReason, decide

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def schedule(cron: str = "* * * * *", window: str = "5m", policy: str = "all", tz: str = "UTC") -> Schedule:
    return Schedule.model_validate(
        {
            "cron": cron,
            "timezone": tz,
            "cohort": {"static": [{"key": "a"}]},
            "queue": "q",
            "catch_up": {"window": window, "policy": policy},
        }
    )


def done(*ticks: datetime) -> dict[datetime, LedgerRow]:
    return {t: LedgerRow(t, Outcome.DONE) for t in ticks}


def test_due_tick_fires() -> None:
    """The tick at `now` fires when the ledger has no row for it."""
    d = decide(schedule(), now=T0, since=T0 - 30 * timedelta(seconds=1), rows={})
    assert d.fire == (T0,)
    assert d.skip == ()


def test_done_tick_does_not_fire_again() -> None:
    """A tick the ledger shows done is never fired again."""
    d = decide(schedule(), now=T0 + 10 * timedelta(seconds=1), since=T0, rows=done(T0))
    assert d.fire == ()
    assert d.horizon == T0 + 10 * timedelta(seconds=1)


def test_new_schedule_does_not_flood_its_past() -> None:
    """A schedule first seen now has no past ticks to catch up (since = first sighting)."""
    now = T0 + 30 * timedelta(seconds=1)
    d = decide(schedule(window="1d"), now=now, since=now, rows={})
    assert d.fire == ()
    assert d.skip == ()


def test_missed_ticks_inside_window_fire_in_order() -> None:
    """Policy all fans out every missed tick inside the window, oldest first."""
    d = decide(schedule(window="10m"), now=T0 + 3 * MIN, since=T0, rows=done(T0))
    assert d.fire == (T0 + MIN, T0 + 2 * MIN, T0 + 3 * MIN)


def test_ticks_older_than_window_are_skipped_too_old() -> None:
    """Missed ticks before the window are recorded as skipped (too old), the rest fire."""
    d = decide(schedule(window="2m"), now=T0 + 5 * MIN, since=T0, rows={})
    assert d.skip == tuple((T0 + i * MIN, SkipReason.TOO_OLD) for i in range(3))
    assert d.fire == (T0 + 3 * MIN, T0 + 4 * MIN, T0 + 5 * MIN)


def test_policy_latest_fires_only_the_newest_missed() -> None:
    """Policy latest fans out the newest missed tick and records the others as skipped by policy."""
    d = decide(
        schedule(window="10m", policy="latest"),
        now=T0 + 3 * MIN + timedelta(seconds=5),
        since=T0,
        rows=done(T0),
    )
    assert d.fire == (T0 + 3 * MIN,)
    assert d.skip == ((T0 + MIN, SkipReason.POLICY), (T0 + 2 * MIN, SkipReason.POLICY))


def test_policy_none_fires_only_an_on_time_tick() -> None:
    """Policy none skips every missed tick, but a tick that is simply due (on time) still fires."""
    d = decide(
        schedule(window="10m", policy="none"),
        now=T0 + 3 * MIN + timedelta(seconds=5),
        since=T0,
        rows=done(T0),
    )
    assert d.fire == (T0 + 3 * MIN,)
    assert [r for _, r in d.skip] == [SkipReason.POLICY, SkipReason.POLICY]


def test_policy_none_skips_a_late_newest_tick() -> None:
    """Policy none records even the newest tick as skipped when it is later than `on_time`."""
    d = decide(
        schedule(cron="0 * * * *", window="2h", policy="none"),
        now=T0 + 20 * MIN,
        since=T0 - MIN,
        rows={},
        on_time=timedelta(seconds=60),
    )
    assert d.fire == ()
    assert d.skip == ((T0, SkipReason.POLICY),)


def test_failed_tick_waits_for_backoff() -> None:
    """A failed tick is not retried before its backoff has elapsed, and holds the horizon."""
    rows = {T0: LedgerRow(T0, Outcome.FAILED, attempts=2, finished_at=T0 + timedelta(seconds=1))}
    d = decide(
        schedule(),
        now=T0 + timedelta(seconds=10),
        since=T0,
        rows=rows,
        backoff=Backoff(timedelta(seconds=10)),
    )
    assert d.fire == ()
    assert d.horizon == T0


def test_failed_tick_retried_after_backoff() -> None:
    """A failed tick inside the window is retried once its backoff (doubling per attempt) has elapsed."""
    rows = {T0: LedgerRow(T0, Outcome.FAILED, attempts=2, finished_at=T0 + timedelta(seconds=1))}
    d = decide(
        schedule(),
        now=T0 + timedelta(seconds=21),
        since=T0,
        rows=rows,
        backoff=Backoff(timedelta(seconds=10)),
    )
    assert d.fire == (T0,)


def test_failed_tick_outside_window_is_given_up() -> None:
    """A failed tick older than the window is neither retried nor re-recorded, and stops holding the horizon."""
    rows = {T0: LedgerRow(T0, Outcome.FAILED, finished_at=T0)} | done(*(T0 + i * MIN for i in range(1, 11)))
    now = T0 + 10 * MIN
    d = decide(schedule(window="5m"), now=now, since=T0, rows=rows)
    assert (d.fire, d.skip, d.horizon) == ((), (), now)


def test_backoff_is_capped() -> None:
    """The retry wait doubles per attempt up to the cap."""
    backoff = Backoff(timedelta(seconds=10), timedelta(seconds=60))
    assert [backoff.delay(n).total_seconds() for n in (1, 2, 3, 4, 50)] == [10, 20, 40, 60, 60]


def test_clock_going_backwards_fires_nothing_twice() -> None:
    """A clock that jumps back behind ticks the ledger shows done fires none of them again."""
    rows = done(T0, T0 + MIN, T0 + 2 * MIN)
    d = decide(schedule(), now=T0 + MIN + timedelta(seconds=30), since=T0, rows=rows)
    assert d.fire == ()


def test_clock_behind_the_horizon_keeps_the_horizon() -> None:
    """A `now` before the horizon decides nothing and never moves the horizon back."""
    d = decide(schedule(), now=T0 - 5 * MIN, since=T0, rows={})
    assert (d.fire, d.skip, d.horizon) == ((), (), T0)


def test_dst_spring_forward_catch_up_fires_the_skipped_local_time_once() -> None:
    """Catching up across a spring-forward day fires `30 2 * * *` Berlin once, at the transition (03:00 CEST)."""
    since = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    now = datetime(2026, 3, 30, 0, 0, tzinfo=UTC)
    d = decide(schedule(cron="30 2 * * *", window="3d", tz="Europe/Berlin"), now=now, since=since, rows={})
    assert d.fire == (datetime(2026, 3, 29, 1, 0, tzinfo=UTC),)


def test_dst_fall_back_catch_up_fires_the_repeated_local_time_once() -> None:
    """Catching up across a fall-back day fires `30 1 * * *` New York once, at the first occurrence."""
    since = datetime(2026, 10, 31, 12, 0, tzinfo=UTC)
    now = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
    d = decide(schedule(cron="30 1 * * *", window="3d", tz="America/New_York"), now=now, since=since, rows={})
    assert d.fire == (datetime(2026, 11, 1, 5, 30, tzinfo=UTC),)


@given(
    done_mask=st.lists(st.booleans(), min_size=0, max_size=30),
    now_offset=st.integers(min_value=-120, max_value=40 * 60),
    window=st.integers(min_value=1, max_value=40),
)
def test_every_tick_is_settled_once(done_mask: list[bool], now_offset: int, window: int) -> None:
    """Property: no tick is both fired and skipped, none already done is fired, and the horizon never goes back."""
    rows = done(*(T0 + i * MIN for i, d in enumerate(done_mask) if d))
    now = T0 + timedelta(seconds=now_offset)
    d = decide(schedule(window=f"{window}m"), now=now, since=T0, rows=rows)
    skipped = {t for t, _ in d.skip}
    assert not skipped & set(d.fire)
    assert not set(d.fire) & set(rows)
    assert not skipped & set(rows)
    assert list(d.fire) == sorted(set(d.fire))
    assert d.horizon >= T0
    assert all(t >= d.horizon for t in d.fire)


@pytest.mark.parametrize(
    ("cron", "tick"),
    [
        # 02:30 is skipped in New York on 2026-03-08: the tick is the transition itself, 03:00 EDT = 07:00Z
        pytest.param("30 2 * * *", datetime(2026, 3, 8, 7, 0, tzinfo=UTC), id="at-the-transition"),
        pytest.param("30 1 * * *", datetime(2026, 3, 8, 6, 30, tzinfo=UTC), id="half-an-hour-earlier"),
    ],
)
def test_failed_tick_at_a_dst_transition_is_retried_like_any_other(cron: str, tick: datetime) -> None:
    """Passes as the service runs them (each starts at the horizon the last one returned): the tick fires,
    fails, is retried after its backoff and succeeds, whether or not it sits on a DST transition. The
    transition tick used to be lost: the retry pass's window starts at the failed tick, and a window that
    started at the transition did not hold the fire moved there."""
    sched = schedule(cron=cron, window="1h", tz="America/New_York")
    backoff = Backoff(timedelta(seconds=10))
    rows: dict[datetime, LedgerRow] = {}
    since = tick - timedelta(minutes=5)
    fired: list[datetime] = []
    for seconds in range(0, 120, 5):
        now = tick + timedelta(seconds=seconds)
        d = decide(sched, now=now, since=since, rows=rows, backoff=backoff)
        for t in d.fire:
            fired.append(t)
            attempts = rows[t].attempts + 1 if t in rows else 1
            outcome = Outcome.FAILED if attempts == 1 else Outcome.DONE  # the first attempt fails
            rows[t] = LedgerRow(t, outcome, attempts=attempts, finished_at=now + timedelta(seconds=1))
        since = d.horizon
    assert fired == [tick, tick]
    assert rows[tick].outcome is Outcome.DONE
    assert since > tick
