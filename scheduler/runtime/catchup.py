"""Which ticks of a schedule to fan out now, and which to record as skipped. Pure: the ledger's rows, the
schedule and `now` go in, a `Decision` comes out; nothing here reads the clock or the database.

The ledger keeps, per schedule, a *horizon*: every tick before it is settled (done, skipped, or failed and
given up). A pass looks at the ticks `since <= t <= now` (`since` is the horizon; for a schedule never seen
before it is the instant it was first seen, so a new schedule does not flood its past) and sorts each one:

- done or skipped in the ledger: nothing to do;
- older than the schedule's catch-up window: recorded as skipped (too old) when the ledger has no row; a
  failed row that old stays failed: its retries are over;
- failed inside the window: retried once its backoff has elapsed (policy `all`: every failed tick;
  `latest`/`none`: only the newest tick, since an older one would fire out of order);
- no row inside the window: a *missed* tick, unless it is the newest and at most `on_time` old (then it is
  simply due). Policy `all` fans out every missed tick, in order; `latest` only the newest, `none` none;
  the others are recorded as skipped.

A clock that goes backwards finds no tick after `now` and never moves the horizon back, so it cannot
fire a tick twice: the ledger's rows, not memory, say what is done.

A pass's window starts at the horizon, which is often a failed tick itself; `ticks` does not depend on where
a window starts, so a failed tick that a DST gap moved onto the transition is retried like any other.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from scheduler.config.models import CatchUpPolicy
from scheduler.planning.ticks import ticks

if TYPE_CHECKING:
    from collections.abc import Mapping

    from scheduler.config.models import Schedule

_INCLUSIVE = timedelta(microseconds=1)  # `ticks` is half-open; a tick exactly at `now` is due


class Outcome(enum.Enum):
    """What the ledger says happened to a tick."""

    DONE = "done"
    """Claimed and fanned out; its jobs committed with the claim."""
    FAILED = "failed"
    """Nothing enqueued (cohort error, timeout, missing queue...); retried with backoff inside the window."""
    SKIPPED = "skipped"
    """Never fanned out on purpose: older than the catch-up window, or left out by the catch-up policy."""


class SkipReason(enum.Enum):
    """Why a tick was recorded as skipped."""

    TOO_OLD = "too_old"
    """Missed, and older than the schedule's catch-up window."""
    POLICY = "catch_up_policy"
    """Missed inside the window, but the policy (`latest`, `none`) fans out fewer ticks."""


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """What a catch-up decision needs from one ledger row."""

    tick: datetime
    outcome: Outcome
    attempts: int = 1
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Backoff:
    """Retry waits for failed ticks: `base`, doubling per attempt, at most `cap`."""

    base: timedelta = timedelta(seconds=10)
    cap: timedelta = timedelta(minutes=5)

    def delay(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed attempt."""
        exponent = max(0, min(attempts - 1, 30))
        delay: timedelta = min(self.base * (2**exponent), self.cap)
        return delay


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one pass: ticks to fan out (ascending), ticks to record as skipped, the new horizon."""

    fire: tuple[datetime, ...]
    skip: tuple[tuple[datetime, SkipReason], ...]
    horizon: datetime


def decide(
    schedule: Schedule,
    *,
    now: datetime,
    since: datetime,
    rows: Mapping[datetime, LedgerRow],
    on_time: timedelta = timedelta(seconds=60),
    backoff: Backoff = Backoff(),
) -> Decision:
    """Decide a pass over the ticks `since <= t <= now` of `schedule` (see the module docstring).

    `rows` holds the ledger's rows of this schedule from `since` on, keyed by tick. The returned horizon is
    never before `since`; every unsettled tick (to fire, or failed and waiting) is at or after it.
    """
    if now < since:
        return Decision(fire=(), skip=(), horizon=since)
    policy = schedule.catch_up.policy
    window_start = now - schedule.catch_up.window
    candidates = list(ticks(schedule.cron, schedule.timezone, since, now + _INCLUSIVE))
    newest = candidates[-1] if candidates else None
    fire: list[datetime] = []
    skip: list[tuple[datetime, SkipReason]] = []
    missed: list[datetime] = []
    unsettled: list[datetime] = []
    for tick in candidates:
        row = rows.get(tick)
        if row is not None and row.outcome is not Outcome.FAILED:
            continue
        if tick < window_start:
            if row is None:
                skip.append((tick, SkipReason.TOO_OLD))
            continue
        if row is not None:  # failed inside the window
            if policy is not CatchUpPolicy.ALL and tick != newest:
                continue
            unsettled.append(tick)
            if row.finished_at is None or now >= row.finished_at + backoff.delay(row.attempts):
                fire.append(tick)
            continue
        missed.append(tick)
    due = missed[-1] if missed and missed[-1] == newest and now - missed[-1] <= on_time else None
    if policy is CatchUpPolicy.ALL:
        chosen = missed
    elif policy is CatchUpPolicy.LATEST:
        chosen = missed[-1:]
    else:
        chosen = [due] if due is not None else []
    for tick in missed:
        if tick in chosen:
            fire.append(tick)
            unsettled.append(tick)
        else:
            skip.append((tick, SkipReason.POLICY))
    horizon = min(unsettled) if unsettled else max(since, now)
    return Decision(fire=tuple(sorted(fire)), skip=tuple(sorted(skip)), horizon=horizon)
