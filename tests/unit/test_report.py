"""FanoutReport.add: counts every outcome and keeps the first `detail_limit` of each kind, in order."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from scheduler.types import (
    Accepted,
    BackendKind,
    ChunkResult,
    Dropped,
    DropReason,
    FanoutReport,
    Outcome,
    QueueRef,
)

QUEUE = QueueRef("q", "q", BackendKind.PGBOSS, "queue")
outcome = st.builds(Accepted, key=st.text(max_size=3), job_id=st.text(max_size=3)) | st.builds(
    Dropped, key=st.text(max_size=3), reason=st.sampled_from(DropReason)
)


@given(st.lists(st.lists(outcome, max_size=12), max_size=6), st.none() | st.integers(0, 10))
def test_totals_and_samples_match_one_outcome_at_a_time(
    chunks: list[list[Outcome]], limit: int | None
) -> None:
    report = FanoutReport("s", datetime(2026, 11, 24, tzinfo=UTC), detail_limit=limit)
    for chunk in chunks:
        report.add(ChunkResult(QUEUE, tuple(chunk)))

    every = [o for chunk in chunks for o in chunk]
    accepted = [o for o in every if isinstance(o, Accepted)]
    dropped = [o for o in every if isinstance(o, Dropped)]
    assert report.planned == len(every)
    assert report.accepted == len(accepted)
    assert report.dropped == len(dropped)
    by_reason: dict[DropReason, int] = {}
    for drop in dropped:
        by_reason[drop.reason] = by_reason.get(drop.reason, 0) + 1
    assert report.dropped_by_reason() == by_reason
    if every:
        totals = report.queues["q"]
        assert totals.accepted_sample == accepted[:limit]
        assert totals.dropped_sample == dropped[:limit]
