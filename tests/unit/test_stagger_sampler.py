"""The fan-out keeps every `every`-th planned job's stagger delay when it was accepted, up to STAGGER_SAMPLES,
whatever the batch sizes; a dropped job adds nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from scheduler.fanout import STAGGER_SAMPLES, PlanPreview, _StaggerSampler
from scheduler.types import Accepted, BackendKind, Batch, Dropped, DropReason, JobOptions, JobSpec, QueueRef

TICK = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
QUEUE = QueueRef(logical="q", name="q", backend=BackendKind.PGBOSS, database="d")


@given(
    every=st.integers(min_value=1, max_value=40),
    sizes=st.lists(st.integers(min_value=0, max_value=300), max_size=40),
)
def test_samples_are_the_jobs_at_multiples_of_every_in_plan_order(every: int, sizes: list[int]) -> None:
    preview = PlanPreview()
    sample = _StaggerSampler(preview, TICK, every)
    delays: list[float] = []
    for size in sizes:
        start = len(delays)
        delays.extend(float(start + k) for k in range(size))
        jobs = tuple(
            JobSpec(str(i), None, {}, TICK + timedelta(seconds=delays[i]), JobOptions())
            for i in range(start, start + size)
        )
        sample(Batch(QUEUE, jobs), tuple(Accepted(j.key, f"id-{j.key}") for j in jobs))
    assert preview.stagger_samples == delays[::every][:STAGGER_SAMPLES]


@given(
    every=st.integers(min_value=1, max_value=10),
    kept=st.lists(st.booleans(), min_size=1, max_size=400),
    size=st.integers(min_value=1, max_value=50),
)
def test_dropped_jobs_contribute_no_sample(every: int, kept: list[bool], size: int) -> None:
    """Only accepted jobs at multiples of `every` are sampled: a dropped job there is skipped, not replaced."""
    preview = PlanPreview()
    sample = _StaggerSampler(preview, TICK, every)
    jobs = [JobSpec(str(i), None, {}, TICK + timedelta(seconds=i), JobOptions()) for i in range(len(kept))]
    outcomes = [
        Accepted(j.key, "id") if ok else Dropped(j.key, DropReason.POLICY_CONFLICT)
        for j, ok in zip(jobs, kept, strict=True)
    ]
    for start in range(0, len(jobs), size):
        sample(Batch(QUEUE, tuple(jobs[start : start + size])), tuple(outcomes[start : start + size]))
    expected = [float(i) for i in range(0, len(kept), every) if kept[i]][:STAGGER_SAMPLES]
    assert preview.stagger_samples == expected
