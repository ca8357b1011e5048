"""`TickKeys`: the tick's singleton keys, in memory or spilled to the local store, split batches the same
way and name the same holders: the first job of a key (in plan order) holds it, every later one is a
`duplicate_in_cohort` naming that job."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.errors import PlanError
from scheduler.fanout import TickKeys
from scheduler.types import Accepted, BackendKind, Batch, DropReason, JobSpec, QueueRef

TICK = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
QUEUES = {
    name: QueueRef(logical=name, name=name, backend=BackendKind.PGBOSS, database="queue")
    for name in ("insights", "billing")
}

Run = list[list[tuple[str, str | None, str | None]]]
"""Per batch, per job: (entity, outcome "accepted" or the drop's reason, holder named)."""


def _run(keys: TickKeys, batches: list[tuple[str, list[str | None]]]) -> Run:
    """Split, enqueue (every job sent is accepted, job id `id-<entity>`), remember and name holders, the
    way a fan-out does."""
    out: Run = []
    entity = 0
    try:
        for queue, singleton_keys in batches:
            jobs = []
            for key in singleton_keys:
                entity += 1
                jobs.append(JobSpec(f"e{entity}", key, {}, TICK))
            batch = Batch(QUEUES[queue], tuple(jobs))
            sent, drops = keys.split(batch)
            keys.remember(queue, sent.jobs, [Accepted(j.key, f"id-{j.key}") for j in sent.jobs])
            drops = keys.name_holders(queue, drops)
            out.append(
                [
                    (job.key, drops[i].reason.value, drops[i].holder_id)
                    if i in drops
                    else (job.key, "accepted", None)
                    for i, job in enumerate(batch.jobs)
                ]
            )
    finally:
        keys.close()
    return out


def _model(batches: list[tuple[str, list[str | None]]]) -> Run:
    """What the tick's keys must report: the first job of a (queue, key) holds it."""
    first: dict[tuple[str, str], str] = {}
    out: Run = []
    entity = 0
    for queue, singleton_keys in batches:
        row: list[tuple[str, str | None, str | None]] = []
        for key in singleton_keys:
            entity += 1
            name = f"e{entity}"
            if key is None or (queue, key) not in first:
                if key is not None:
                    first[queue, key] = name
                row.append((name, "accepted", None))
            else:
                row.append((name, DropReason.DUPLICATE_IN_COHORT.value, f"id-{first[queue, key]}"))
        out.append(row)
    return out


TEXT_KEYS = st.text(
    alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=3
)
"""Any text a queue can hold (no NUL, no lone surrogate): the last test covers those."""
BATCHES = st.lists(
    st.tuples(
        st.sampled_from(sorted(QUEUES)),
        st.lists(st.none() | st.sampled_from([f"k{i}" for i in range(12)]) | TEXT_KEYS, max_size=8),
    ),
    max_size=8,
)


@settings(max_examples=150, deadline=None)
@given(batches=BATCHES, spill_after=st.integers(0, 10))
def test_spilled_and_in_memory_keys_report_the_same(
    batches: list[tuple[str, list[str | None]]], spill_after: int
) -> None:
    expected = _model(batches)
    assert _run(TickKeys(spill_after=10_000), batches) == expected
    assert _run(TickKeys(spill_after=spill_after), batches) == expected


@pytest.mark.parametrize("key", ["nul\x00key", "lone \ud800"], ids=["nul", "surrogate"])
def test_a_key_no_text_can_hold_is_a_plan_error_once_spilled(key: str) -> None:
    """Past the spill a key travels to the local store as JSON text: a NUL or a lone surrogate (which no
    queue's PostgreSQL text could hold either) is a PlanError naming the key, not a lookup failure."""
    keys = TickKeys(spill_after=0)
    try:
        with pytest.raises(PlanError, match="NUL character or a lone surrogate"):
            keys.split(Batch(QUEUES["insights"], (JobSpec("e1", key, {}, TICK),)))
    finally:
        keys.close()
