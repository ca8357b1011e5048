"""The plan of one tick: cohort rows in, per-queue batches of job specs out. Pure and streaming.

`plan_batches` consumes the rows lazily and holds at most `chunk_size` pending jobs per queue, so a cohort of
millions never sits in memory at once. For each row it decides:

- the queue: the schedule's `queue`, or the route of the row's `source` through the schedule's lane;
- the singleton key: the schedule's `singleton_key` template rendered over the row (None without a template);
- `start_after`: the tick plus the stagger offset of the row (its index in the cohort, its key);
- the payload: the row's `data`, which must be a JSON object (None or missing gives `{}`).

A batch for a queue is emitted as soon as that queue has `chunk_size` jobs pending; the remainders are
flushed at the end, queues in the order they were first seen. Within a queue, jobs keep the cohort order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from scheduler.config.models import Lane, Schedule, StaggerStrategy
from scheduler.errors import PlanError
from scheduler.planning.keys import compile_key
from scheduler.planning.routing import queue_for
from scheduler.planning.stagger import compile_stagger
from scheduler.types import Batch, JobOptions, JobSpec, JsonObject, JsonText, QueueRef, Row

__all__ = ["DEFAULT_CHUNK_SIZE", "UNKNOWN_SOURCES_KEPT", "PlanContext", "PlanStats", "plan_batches"]

DEFAULT_CHUNK_SIZE = 5000
"""Jobs per batch (one bulk statement each) unless the caller says otherwise."""
UNKNOWN_SOURCES_KEPT = 10
"""How many distinct unrouted source names `PlanStats.unknown_sources` counts; later ones only count as defaulted."""


@dataclass(frozen=True)
class PlanContext:
    """What planning one tick of one schedule needs besides the rows."""

    schedule_name: str
    schedule: Schedule
    tick: datetime
    """The fire instant (timezone-aware)."""
    queues: Mapping[str, QueueRef]
    """Logical name → queue, for every queue of the config."""
    lanes: Mapping[str, Lane]


@dataclass
class PlanStats:
    """Counts gathered while planning; `plan_batches` updates it in place.

    Jobs are counted when their batch is emitted (saving work per row of cohorts of millions) and, when
    planning stops early (a bad row, a consumer that stops reading), for the jobs planned until then.
    """

    rows: int = 0
    jobs_by_queue: dict[str, int] = field(default_factory=dict)
    """Logical queue → jobs planned for it. Sums to `rows`."""
    defaulted_sources: int = 0
    """Rows routed to their lane's default queue because their source was None or had no route."""
    unknown_sources: dict[str, int] = field(default_factory=dict)
    """Source name → rows, for the first `UNKNOWN_SOURCES_KEPT` non-None sources that had no route."""


def _seconds(value: timedelta | None) -> int | None:
    # Rounded up, so a sub-second retry delay or expiry never turns into 0 ("no delay", "no expiry").
    return None if value is None else math.ceil(value.total_seconds())


def _options(schedule: Schedule) -> JobOptions:
    return JobOptions(
        priority=schedule.priority,
        retry_limit=schedule.retry_limit,
        retry_delay_seconds=_seconds(schedule.retry_delay),
        expire_in_seconds=_seconds(schedule.expire_in),
    )


def _resolve(ctx: PlanContext, logical: str) -> QueueRef:
    queue = ctx.queues.get(logical)
    if queue is None:
        known = ", ".join(sorted(ctx.queues)) or "none"
        raise PlanError(
            f"schedule {ctx.schedule_name!r}: queue {logical!r} is not declared (declared: {known}); "
            "add it under `queues:` or fix the schedule or lane"
        )
    return queue


def _check_targets(ctx: PlanContext) -> Lane | None:
    """The schedule's lane (None when it names a queue); every queue it may route to must be declared."""
    schedule = ctx.schedule
    if schedule.queue is not None:
        _resolve(ctx, schedule.queue)
        return None
    if schedule.lane is None:
        raise PlanError(f"schedule {ctx.schedule_name!r} has neither `queue` nor `lane`; set one of them")
    lane = ctx.lanes.get(schedule.lane)
    if lane is None:
        known = ", ".join(sorted(ctx.lanes)) or "none"
        raise PlanError(
            f"schedule {ctx.schedule_name!r}: lane {schedule.lane!r} is not declared (declared: {known}); "
            "add it under `lanes:` or fix the schedule"
        )
    for logical in (lane.default, *lane.routes.values()):
        _resolve(ctx, logical)
    return lane


def _key(ctx: PlanContext, row: Row) -> str:
    key = row.get("key")
    if type(key) is str:  # the common cases first: this runs once per row of cohorts of millions
        return key
    if type(key) is int:
        return str(key)
    if key is None or isinstance(key, Mapping | list | tuple | set):
        raise PlanError(
            f"schedule {ctx.schedule_name!r}: cohort row has key {key!r}; every row needs a scalar `key` "
            "(a column named key: text or number) that names the entity"
        )
    return str(key)


def _data(ctx: PlanContext, row: Row, key: str) -> JsonObject:
    data = row.get("data")
    if type(data) is dict or type(data) is JsonText:  # the common cases, without the slower Mapping ABC
        return data
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise PlanError(
            f"schedule {ctx.schedule_name!r}: cohort row with key {key!r} has data of type "
            f"{type(data).__name__} ({data!r:.60}); a job payload must be a JSON object (procrastinate "
            "passes it as keyword arguments and leaves a job with other args stuck forever); return an "
            "object, e.g. json_build_object('items', ...), or leave data out"
        )
    return data


def plan_batches(
    ctx: PlanContext,
    rows: Iterable[Row],
    *,
    total: int | None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    stats: PlanStats | None = None,
) -> Iterator[Batch]:
    """Plan the tick `ctx` over `rows` (read lazily), as batches of at most `chunk_size` jobs per queue.

    `total` is the cohort size, needed by the `spread` stagger (None is fine otherwise). `stats`, if given,
    is updated in place as rows are consumed. The schedule's targets are checked at once: an undeclared
    queue or lane raises PlanError before any row is read. A bad row (no key, data that is not an object,
    a template field it lacks, more rows than `total` under `spread`) raises PlanError when it is reached.
    """
    if ctx.tick.tzinfo is None or ctx.tick.utcoffset() is None:
        raise ValueError(f"tick {ctx.tick.isoformat()} is naive; pass a timezone-aware instant")
    if chunk_size < 1:
        raise ValueError(f"chunk_size {chunk_size} must be at least 1")
    stagger = ctx.schedule.stagger
    if stagger.strategy is StaggerStrategy.SPREAD and total is None:
        raise ValueError(f"schedule {ctx.schedule_name!r} spreads its stagger; pass the cohort size as total")
    lane = _check_targets(ctx)
    return _plan(ctx, lane, rows, total, chunk_size, stats if stats is not None else PlanStats())


def _plan(
    ctx: PlanContext,
    lane: Lane | None,
    rows: Iterable[Row],
    total: int | None,
    chunk_size: int,
    stats: PlanStats,
) -> Iterator[Batch]:
    schedule = ctx.schedule
    strategy, window = schedule.stagger.strategy, schedule.stagger.window
    template = schedule.singleton_key
    # The key template and the stagger are compiled once per plan, not once per row.
    render = None if template is None else compile_key(template, schedule=ctx.schedule_name, tick=ctx.tick)
    offset = compile_stagger(strategy, window, total)
    tick = ctx.tick
    spread_total = total if strategy is StaggerStrategy.SPREAD else None
    options = _options(schedule)  # one instance shared by every job of the plan
    unstaggered = strategy is StaggerStrategy.NONE or not window  # then every job shares the tick itself
    refs: dict[str, QueueRef] = {}
    pending: dict[str, list[JobSpec]] = {}  # insertion order = first seen, which is the flush order
    try:
        for index, row in enumerate(rows):
            # `_key` and `_data` check every case; the common ones (a text key, an object payload) are
            # taken here without a call: this loop runs once per row of cohorts of millions.
            key = row.get("key")
            if type(key) is not str:
                key = _key(ctx, row)
            data = row.get("data")
            if type(data) is not JsonText and type(data) is not dict:
                data = _data(ctx, row, key)
            if lane is None:
                assert schedule.queue is not None  # _check_targets: a schedule has a queue or a lane
                logical = schedule.queue
            else:
                source = row.get("source")
                route = queue_for(lane, None if source is None else str(source))
                logical = route.queue
                if route.defaulted:
                    _count_defaulted(stats, source)
            if spread_total is not None and index >= spread_total:
                raise PlanError(
                    f"schedule {ctx.schedule_name!r}: the cohort has more rows than the {total} counted "
                    f"(row with key {key!r} is number {index + 1}); spread stagger needs the exact cohort size"
                )
            singleton = None if render is None else render(row)
            start_after = tick if unstaggered else tick + offset(key, index)
            batch = pending.get(logical)
            if batch is None:
                refs[logical] = ctx.queues[logical]
                batch = pending[logical] = []
                stats.jobs_by_queue.setdefault(logical, 0)
            batch.append(JobSpec(key, singleton, data, start_after, options))
            if len(batch) >= chunk_size:
                yield _take(stats, logical, refs[logical], batch)
        for logical, batch in pending.items():
            if batch:
                yield _take(stats, logical, refs[logical], batch)
    finally:
        # Planning stopped early (a bad row, or the consumer closed us): count what was planned anyway.
        for logical, batch in pending.items():
            _count_jobs(stats, logical, len(batch))


def _count_jobs(stats: PlanStats, logical: str, n: int) -> None:
    stats.rows += n
    stats.jobs_by_queue[logical] = stats.jobs_by_queue.get(logical, 0) + n


def _take(stats: PlanStats, logical: str, queue: QueueRef, jobs: list[JobSpec]) -> Batch:
    """The pending jobs of a queue as a batch, counted in `stats`; empties `jobs`."""
    # Counted and cleared before the batch is yielded, so a consumer that stops here is not counted twice.
    batch = Batch(queue, tuple(jobs))
    jobs.clear()
    _count_jobs(stats, logical, len(batch.jobs))
    return batch


def _count_defaulted(stats: PlanStats, source: object) -> None:
    stats.defaulted_sources += 1
    if source is not None:
        name = str(source)
        if name in stats.unknown_sources or len(stats.unknown_sources) < UNKNOWN_SOURCES_KEPT:
            stats.unknown_sources[name] = stats.unknown_sources.get(name, 0) + 1
