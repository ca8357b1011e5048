"""The fan-out keeps every `every`-th job's stagger delay, up to STAGGER_SAMPLES, whatever the batch sizes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from scheduler.fanout import STAGGER_SAMPLES, PlanPreview, _StaggerSampler
from scheduler.types import BackendKind, Batch, JobOptions, JobSpec, QueueRef

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
        sample(Batch(QUEUE, jobs))
    assert preview.stagger_samples == delays[::every][:STAGGER_SAMPLES]
