"""plan_batches: routing, keys, stagger, options, chunking, order, errors and bounded memory."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.config.models import Cohort, Lane, Schedule, Stagger, StaggerStrategy
from scheduler.errors import PlanError
from scheduler.planning.plan import PlanContext, PlanStats, plan_batches
from scheduler.planning.stagger import stagger_offset
from scheduler.types import BackendKind, Batch, JobOptions, QueueRef, Row

if TYPE_CHECKING:
    from collections.abc import Iterator

TICK = datetime(2025, 6, 1, 12, tzinfo=UTC)
QUEUES = {
    logical: QueueRef(logical=logical, name=f"real-{logical}", backend=BackendKind.PGBOSS, database="queue")
    for logical in ("insights", "chat-ui", "chat-automation")
}
LANES = {
    "chat": Lane(
        default="chat-ui", routes={"scheduled_report": "chat-automation", "data_change": "chat-automation"}
    )
}


def schedule(**fields: Any) -> Schedule:
    """A schedule on queue `insights` unless the fields say otherwise."""
    base: dict[str, Any] = {"cron": "0 * * * *", "cohort": Cohort(static=[]), "queue": "insights"}
    return Schedule(**(base | fields))


def context(sched: Schedule, name: str = "digest") -> PlanContext:
    return PlanContext(schedule_name=name, schedule=sched, tick=TICK, queues=QUEUES, lanes=LANES)


def rows(n: int, **extra: Any) -> list[Row]:
    return [{"key": i, "data": {"id": i}, **extra} for i in range(n)]


def plan(sched: Schedule, cohort: list[Row], **kwargs: Any) -> list[Batch]:
    kwargs.setdefault("total", len(cohort))
    return list(plan_batches(context(sched), cohort, **kwargs))


# -- one row ------------------------------------------------------------------------------------


def test_job_spec_from_row() -> None:
    """A row becomes a job with its key as text, its data, the rendered singleton key and the tick."""
    [batch] = plan(schedule(singleton_key="insight:{key}:{data.org}"), [{"key": 7, "data": {"org": "acme"}}])
    [job] = batch.jobs
    assert batch.queue is QUEUES["insights"]
    assert (job.key, job.singleton_key, dict(job.data), job.start_after) == (
        "7",
        "insight:7:acme",
        {"org": "acme"},
        TICK,
    )


def test_no_template_gives_no_singleton_key() -> None:
    """Without a singleton_key template every job's singleton key is None."""
    [batch] = plan(schedule(), rows(2))
    assert [j.singleton_key for j in batch.jobs] == [None, None]


def test_missing_or_null_data_becomes_empty_object() -> None:
    """A row without data, or with data None, gets the payload {}."""
    [batch] = plan(schedule(), [{"key": "a"}, {"key": "b", "data": None}])
    assert [dict(j.data) for j in batch.jobs] == [{}, {}]


@pytest.mark.parametrize("bad", [[1, 2], "text", 3])
def test_data_that_is_not_an_object_is_rejected(bad: object) -> None:
    """A payload that is not a JSON object raises PlanError naming the schedule, the key and the fix."""
    with pytest.raises(
        PlanError,
        match=r"^schedule 'digest': cohort row with key 'a' has data of type \w+ .*"
        r"must be a JSON object .*stuck forever\); return an object",
    ):
        plan(schedule(), [{"key": "a", "data": bad}])


@pytest.mark.parametrize("row", [{"data": {}}, {"key": None}, {"key": [1]}])
def test_row_without_scalar_key_is_rejected(row: Row) -> None:
    """A row without a scalar key raises PlanError naming the schedule."""
    with pytest.raises(
        PlanError, match=r"^schedule 'digest': cohort row has key .*; every row needs a scalar `key`"
    ):
        plan(schedule(), [row])


def test_template_field_missing_from_row_is_rejected() -> None:
    """A singleton_key naming a field the row lacks raises render_key's PlanError."""
    with pytest.raises(PlanError, match=r"needs field \{data.org\}"):
        plan(schedule(singleton_key="x:{data.org}"), [{"key": 1, "data": {}}])


def test_options_are_built_once_from_the_schedule() -> None:
    """Every job shares one JobOptions built from the schedule, durations in whole seconds rounded up."""
    sched = schedule(priority=5, retry_limit=3, retry_delay="1500ms", expire_in="15m")
    [batch] = plan(sched, rows(3))
    assert batch.jobs[0].options == JobOptions(
        priority=5, retry_limit=3, retry_delay_seconds=2, expire_in_seconds=900
    )
    assert all(j.options is batch.jobs[0].options for j in batch.jobs)


# -- stagger --------------------------------------------------------------------------------------


def test_spread_stagger_uses_cohort_index() -> None:
    """Spread staggers jobs by their index in the whole cohort, across queues."""
    sched = schedule(
        queue=None, lane="chat", stagger=Stagger(window=timedelta(minutes=4), strategy=StaggerStrategy.SPREAD)
    )
    cohort = [{"key": i, "source": "data_change" if i % 2 else None} for i in range(4)]
    batches = plan(sched, cohort)
    starts = {j.key: j.start_after - TICK for b in batches for j in b.jobs}
    assert starts == {
        "0": timedelta(0),
        "1": timedelta(minutes=1),
        "2": timedelta(minutes=2),
        "3": timedelta(minutes=3),
    }


def test_hash_stagger_uses_the_key() -> None:
    """Hash stagger offsets each job by the stable offset of its key."""
    window = timedelta(hours=1)
    [batch] = plan(
        schedule(stagger=Stagger(window=window, strategy=StaggerStrategy.HASH)), rows(3), total=None
    )
    assert [j.start_after for j in batch.jobs] == [
        TICK + stagger_offset(StaggerStrategy.HASH, window, str(i), i, None) for i in range(3)
    ]


def test_spread_without_total_is_rejected_at_once() -> None:
    """Planning a spread schedule without the cohort size fails before any row is read."""
    sched = schedule(stagger=Stagger(window=timedelta(minutes=1), strategy=StaggerStrategy.SPREAD))
    with pytest.raises(
        ValueError, match=r"^schedule 'digest' spreads its stagger; pass the cohort size as total$"
    ):
        plan_batches(context(sched), iter(()), total=None)


def test_more_rows_than_total_under_spread_is_rejected() -> None:
    """A cohort longer than the counted total raises PlanError under spread stagger."""
    sched = schedule(stagger=Stagger(window=timedelta(minutes=1), strategy=StaggerStrategy.SPREAD))
    with pytest.raises(PlanError, match=r"^schedule 'digest': the cohort has more rows than the 2 counted"):
        plan(sched, rows(3), total=2)


# -- routing ------------------------------------------------------------------------------------


def test_lane_splits_rows_by_source() -> None:
    """Rows routed through a lane land in their source's queue; others in the default queue."""
    sched = schedule(queue=None, lane="chat")
    cohort: list[Row] = [
        {"key": "a", "source": "user"},
        {"key": "b", "source": "scheduled_report"},
        {"key": "c"},
        {"key": "d", "source": "data_change"},
    ]
    batches = plan(sched, cohort)
    assert [(b.queue.logical, [j.key for j in b.jobs]) for b in batches] == [
        ("chat-ui", ["a", "c"]),
        ("chat-automation", ["b", "d"]),
    ]


def test_stats_count_rows_queues_and_defaulted_sources() -> None:
    """PlanStats counts rows, jobs per queue, defaulted rows and unrouted source names."""
    sched = schedule(queue=None, lane="chat")
    cohort: list[Row] = [
        {"key": 1, "source": "user"},
        {"key": 2},
        {"key": 3, "source": "data_change"},
        {"key": 4, "source": "user"},
    ]
    stats = PlanStats()
    plan(sched, cohort, stats=stats)
    assert stats == PlanStats(
        rows=4,
        jobs_by_queue={"chat-ui": 3, "chat-automation": 1},
        defaulted_sources=3,
        unknown_sources={"user": 2},
    )


def test_stats_count_rows_planned_before_a_bad_row() -> None:
    """When a bad row stops planning, PlanStats still counts the rows planned before it."""
    stats = PlanStats()
    cohort: list[Row] = [{"key": 1}, {"key": 2}, {"key": 3, "data": [3]}]
    with pytest.raises(PlanError):
        plan(schedule(), cohort, chunk_size=10, stats=stats)
    assert (stats.rows, stats.jobs_by_queue) == (2, {"insights": 2})


def test_stats_count_rows_planned_when_consumer_stops_early() -> None:
    """A consumer that stops after the first batch leaves PlanStats counting every row planned so far."""
    stats = PlanStats()
    batches = plan_batches(context(schedule()), rows(5), total=5, chunk_size=2, stats=stats)
    next(batches)
    batches.close()
    assert (stats.rows, stats.jobs_by_queue) == (2, {"insights": 2})


def test_unknown_sources_keep_only_the_first_names() -> None:
    """PlanStats keeps counts for the first ten unrouted source names and still counts every defaulted row."""
    stats = PlanStats()
    plan(schedule(queue=None, lane="chat"), [{"key": i, "source": f"s{i}"} for i in range(25)], stats=stats)
    assert list(stats.unknown_sources) == [f"s{i}" for i in range(10)]
    assert stats.defaulted_sources == 25


def test_undeclared_schedule_queue_is_rejected_at_once() -> None:
    """A schedule naming an undeclared queue fails before any row is read, listing the declared ones."""
    with pytest.raises(
        PlanError,
        match=r"^schedule 'digest': queue 'nope' is not declared \(declared: chat-automation, chat-ui, insights\)",
    ):
        plan_batches(context(schedule(queue="nope")), iter(()), total=0)


def test_undeclared_lane_route_is_rejected_at_once() -> None:
    """A lane routing to an undeclared queue fails before any row is read."""
    ctx = PlanContext(
        "digest",
        schedule(queue=None, lane="bad"),
        TICK,
        QUEUES,
        {"bad": Lane(default="chat-ui", routes={"x": "gone"})},
    )
    with pytest.raises(PlanError, match=r"^schedule 'digest': queue 'gone' is not declared"):
        plan_batches(ctx, iter(()), total=0)


def test_undeclared_lane_is_rejected() -> None:
    """A schedule naming an undeclared lane raises PlanError."""
    with pytest.raises(
        PlanError, match=r"^schedule 'digest': lane 'nope' is not declared \(declared: chat\)"
    ):
        plan_batches(context(schedule(queue=None, lane="nope")), iter(()), total=0)


def test_schedule_without_queue_or_lane_is_rejected() -> None:
    """A schedule with neither queue nor lane raises PlanError."""
    with pytest.raises(PlanError, match=r"^schedule 'digest' has neither `queue` nor `lane`"):
        plan_batches(context(schedule(queue=None)), iter(()), total=0)


def test_naive_tick_is_rejected() -> None:
    """A naive tick raises ValueError."""
    ctx = PlanContext("digest", schedule(), datetime(2025, 1, 1), QUEUES, LANES)
    with pytest.raises(ValueError, match=r"is naive"):
        plan_batches(ctx, iter(()), total=0)


# -- chunking and streaming -----------------------------------------------------------------


def test_batch_is_emitted_when_a_queue_fills_a_chunk() -> None:
    """A queue's batch is yielded as soon as it has chunk_size jobs, before later rows are read."""
    read: list[int] = []

    def source() -> Iterator[Row]:
        for i in range(5):
            read.append(i)
            yield {"key": i}

    batches = plan_batches(context(schedule()), source(), total=5, chunk_size=2)
    first = next(batches)
    assert ([j.key for j in first.jobs], read) == (["0", "1"], [0, 1])


def test_remainders_flush_in_first_seen_order() -> None:
    """After the rows run out, partial batches are flushed in the order their queues first appeared."""
    sched = schedule(queue=None, lane="chat")
    cohort: list[Row] = [{"key": 1, "source": "data_change"}, {"key": 2}, {"key": 3}, {"key": 4}]
    batches = plan(sched, cohort, chunk_size=2)
    assert [(b.queue.logical, [j.key for j in b.jobs]) for b in batches] == [
        ("chat-ui", ["2", "3"]),
        ("chat-automation", ["1"]),
        ("chat-ui", ["4"]),
    ]


def test_empty_cohort_gives_no_batches() -> None:
    """No rows, no batches."""
    assert plan(schedule(), []) == []


@settings(max_examples=50, deadline=None)
@given(
    sources=st.lists(st.sampled_from([None, "user", "scheduled_report", "data_change"]), max_size=60),
    chunk_size=st.integers(1, 8),
)
def test_chunks_keep_order_and_account_for_every_row(sources: list[str | None], chunk_size: int) -> None:
    """Batches never exceed chunk_size, keep input order per queue, and hold every row once."""
    cohort: list[Row] = [{"key": i, "source": s} for i, s in enumerate(sources)]
    stats = PlanStats()
    batches = plan(schedule(queue=None, lane="chat"), cohort, chunk_size=chunk_size, stats=stats)
    assert all(1 <= len(b.jobs) <= chunk_size for b in batches)
    per_queue: dict[str, list[int]] = {}
    for b in batches:
        per_queue.setdefault(b.queue.logical, []).extend(int(j.key) for j in b.jobs)
    assert all(keys == sorted(keys) for keys in per_queue.values())
    assert sorted(k for keys in per_queue.values() for k in keys) == list(range(len(cohort)))
    assert {q: len(k) for q, k in per_queue.items()} == stats.jobs_by_queue
    assert sum(stats.jobs_by_queue.values()) == stats.rows == len(cohort)


def traced_peak(batches: Iterator[Batch]) -> tuple[int, int, int]:
    """Drain `batches` under tracemalloc: (jobs, largest batch, peak bytes traced)."""
    jobs = largest = 0
    tracemalloc.start()
    try:
        for batch in batches:
            jobs += len(batch.jobs)
            largest = max(largest, len(batch.jobs))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return jobs, largest, peak


def cycling(pool: list[Row], n: int) -> Iterator[Row]:
    """`n` rows taken round-robin from `pool`: a long cohort whose rows cost no memory of their own."""
    for i in range(n):
        yield pool[i % len(pool)]


def test_million_rows_plan_in_bounded_memory() -> None:
    """A generator of 1,000,000 rows is planned with a traced peak well under 50 MB at chunk_size 5000."""
    total = 1_000_000
    # Rows are reused from a small pool so that the peak measures what the planner keeps, not the source.
    pool: list[Row] = [{"key": f"org-{i}", "data": {"organizationId": i}} for i in range(1000)]
    stats = PlanStats()
    batches = plan_batches(
        context(schedule()), cycling(pool, total), total=total, chunk_size=5000, stats=stats
    )
    jobs, largest, peak = traced_peak(batches)
    assert (jobs, stats.rows, largest) == (total, total, 5000)
    assert peak < 20 * 1024 * 1024


def test_peak_memory_does_not_grow_with_the_cohort() -> None:
    """With lanes, singleton keys and spread stagger, six times the rows take about the same peak memory."""
    sched = schedule(
        queue=None,
        lane="chat",
        singleton_key="insight:{key}",
        stagger=Stagger(window=timedelta(hours=1), strategy=StaggerStrategy.SPREAD),
    )
    pool: list[Row] = [
        {"key": f"org-{i}", "data": {"organizationId": i}, "source": "data_change" if i % 3 == 0 else None}
        for i in range(1000)
    ]

    def peak(n: int) -> int:
        return traced_peak(plan_batches(context(sched), cycling(pool, n), total=n, chunk_size=1000))[2]

    small, large = peak(10_000), peak(60_000)
    assert large < small * 1.5
