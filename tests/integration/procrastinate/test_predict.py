"""predict_many says exactly what enqueue_many then does, and every path keeps one outcome per planned job."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.types import Accepted, ChunkResult, Dropped, DropReason, FanoutReport, JobSpec
from tests.integration.procrastinate.conftest import QUEUE, batch, spec

if TYPE_CHECKING:
    import psycopg

    from scheduler.backends.procrastinate import ProcrastinateBackend

TICK = datetime(2025, 1, 1, tzinfo=UTC)
OTHER = replace(QUEUE, logical="records-sync", name="interop-sync", task="interop.record_sync")


def _seed(conn: psycopg.Connection[Any], todo: list[str], doing: list[str]) -> dict[str, int]:
    """Existing jobs holding (todo) or having held (doing) these queueing_locks; returns lock -> id."""
    rows = conn.execute(
        "INSERT INTO procrastinate_jobs (queue_name, task_name, queueing_lock, args, status)"
        " SELECT 'seed', 'interop.record', l, '{}', s::procrastinate_job_status"
        " FROM unnest(%s::text[], %s::text[]) AS t (l, s) RETURNING queueing_lock, id",
        [doing + todo, ["doing"] * len(doing) + ["todo"] * len(todo)],
    ).fetchall()
    return dict(rows)


def _without_new_ids(result: ChunkResult, new_ids: set[str]) -> tuple[Accepted | Dropped, ...]:
    """Blank the ids that only a real enqueue can know: its own job ids, wherever they appear."""
    return tuple(
        Accepted(o.key, "")
        if isinstance(o, Accepted)
        else replace(o, holder_id="" if o.holder_id in new_ids else o.holder_id)
        for o in result.outcomes
    )


def _predict_then_enqueue(
    backend: ProcrastinateBackend, conn: psycopg.Connection[Any], batches: list[list[JobSpec]]
) -> tuple[list[ChunkResult], list[ChunkResult]]:
    placed: set[str] = set()
    queues = [QUEUE, OTHER]
    predicted = [
        backend.predict_many(conn, batch(*jobs, queue=queues[n % 2]), placed)
        for n, jobs in enumerate(batches)
    ]
    assert conn.execute("SELECT count(*) FROM procrastinate_jobs WHERE queue_name <> 'seed'").fetchone() == (
        0,
    )
    real = [backend.enqueue_many(conn, batch(*jobs, queue=queues[n % 2])) for n, jobs in enumerate(batches)]
    return predicted, real


def _assert_exact(batches: list[list[JobSpec]], *runs: list[ChunkResult]) -> None:
    """accepted + dropped == planned, keys in the batch's order, for every run."""
    for results in runs:
        report = FanoutReport(schedule="predict", tick=TICK)
        for jobs, result in zip(batches, results, strict=True):
            assert [o.key for o in result.outcomes] == [j.key for j in jobs]
            report.add(result)
        assert report.accepted + report.dropped == report.planned == sum(map(len, batches))


def test_prediction_names_every_kind_of_drop(
    backend: ProcrastinateBackend, conn: psycopg.Connection[Any]
) -> None:
    """Holders in the database, a lock taken by an earlier batch and an in-batch repeat are predicted exactly."""
    seeded = _seed(conn, todo=["A"], doing=["D"])
    batches = [
        [spec("a", "A"), spec("b", "B"), spec("d", "D"), spec("b2", "B"), spec("n1")],
        [spec("b3", "B"), spec("e", "E"), spec("n2")],
    ]
    predicted, real = _predict_then_enqueue(backend, conn, batches)
    conflict = DropReason.POLICY_CONFLICT
    assert [p.outcomes for p in predicted] == [
        (
            Dropped("a", conflict, "A", "queueing_lock", str(seeded["A"]), "todo"),
            Accepted("b", ""),
            Accepted("d", ""),
            Dropped("b2", DropReason.DUPLICATE_IN_COHORT, "B", "queueing_lock", "", "todo"),
            Accepted("n1", ""),
        ),
        (Dropped("b3", conflict, "B", "queueing_lock", "", "todo"), Accepted("e", ""), Accepted("n2", "")),
    ]
    new_ids = {o.job_id for r in real for o in r.outcomes if isinstance(o, Accepted)}
    assert [_without_new_ids(r, new_ids) for r in real] == [p.outcomes for p in predicted]
    _assert_exact(batches, predicted, real)


LOCKS = st.one_of(st.none(), st.sampled_from([f"L{i}" for i in range(8)]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    todo=st.lists(st.sampled_from([f"L{i}" for i in range(8)]), unique=True, max_size=4),
    doing=st.lists(st.sampled_from([f"L{i}" for i in range(8)]), max_size=3),
    batches=st.lists(st.lists(LOCKS, max_size=8), min_size=1, max_size=3),
)
def test_prediction_equals_enqueue_for_any_batches(
    backend: ProcrastinateBackend,
    conn: psycopg.Connection[Any],
    todo: list[str],
    doing: list[str],
    batches: list[list[str | None]],
) -> None:
    """For any existing holders and batches of locks, predict_many then enqueue_many agree outcome for outcome."""
    try:
        _seed(conn, todo=todo, doing=doing)
        jobs = [[spec(f"b{n}e{i}", lock) for i, lock in enumerate(locks)] for n, locks in enumerate(batches)]
        predicted, real = _predict_then_enqueue(backend, conn, jobs)
        new_ids = {o.job_id for r in real for o in r.outcomes if isinstance(o, Accepted)}
        assert [_without_new_ids(r, new_ids) for r in real] == [p.outcomes for p in predicted]
        _assert_exact(jobs, predicted, real)
    finally:
        conn.rollback()
