"""The queueing lock: per-row accept/drop where procrastinate's own batch_defer fails the whole batch."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import procrastinate
import pytest
from procrastinate.jobs import Job

from scheduler.types import Accepted, Dropped, DropReason
from tests.integration.procrastinate.conftest import QUEUE, batch, defer_holder, procrastinate_app, spec

if TYPE_CHECKING:
    import psycopg

    from scheduler.backends.procrastinate import ProcrastinateBackend


def test_collision_drops_only_the_colliding_row(
    backend: ProcrastinateBackend, conn: psycopg.Connection[Any], queue_dsn: str
) -> None:
    """A batch [B, A, C] against a todo job holding A accepts B and C and drops A naming the holder."""
    holder = int(defer_holder(queue_dsn, "A"))
    result = backend.enqueue_many(conn, batch(spec("b", "B"), spec("a", "A"), spec("c", "C")))
    conn.commit()
    b, a, c = result.outcomes
    assert isinstance(b, Accepted)
    assert isinstance(c, Accepted)
    assert a == Dropped(
        key="a",
        reason=DropReason.POLICY_CONFLICT,
        singleton_key="A",
        policy="queueing_lock",
        holder_id=str(holder),
        holder_state="todo",
    )
    rows = conn.execute(
        "SELECT id, queueing_lock, task_name, args FROM procrastinate_jobs ORDER BY id"
    ).fetchall()
    assert rows == [
        (holder, "A", "interop.record", {}),
        (int(b.job_id), "B", "interop.record", {"entity": "b"}),
        (int(c.job_id), "C", "interop.record", {"entity": "c"}),
    ]


def test_procrastinate_batch_defer_fails_the_whole_batch(queue_dsn: str) -> None:
    """procrastinate's own batch_defer of [B, A, C] against a todo holder of A inserts nothing and names only A."""
    holder = int(defer_holder(queue_dsn, "A"))
    jobs = [
        Job(
            id=None,
            queue=QUEUE.name,
            lock=None,
            queueing_lock=lock,
            task_name="interop.record",
            task_kwargs={},
        )
        for lock in ("B", "A", "C")
    ]
    with (
        procrastinate_app(queue_dsn) as app,
        pytest.raises(procrastinate.exceptions.AlreadyEnqueued) as caught,
    ):
        app.job_manager.batch_defer_jobs(jobs)
    assert "queueing lock A" in str(caught.value)
    with procrastinate_app(queue_dsn) as app:
        assert [job.id for job in app.job_manager.list_jobs()] == [holder]


def test_lock_is_free_again_once_the_holder_is_doing(
    backend: ProcrastinateBackend, conn: psycopg.Connection[Any], queue_dsn: str
) -> None:
    """After procrastinate's fetch_job moves the holder to doing, the same queueing_lock is accepted again."""
    holder = int(defer_holder(queue_dsn, "A"))

    async def fetch() -> int | None:
        app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=queue_dsn))
        async with app.open_async():
            worker_id = await app.job_manager.register_worker()
            job = await app.job_manager.fetch_job(queues=None, worker_id=worker_id)
            return None if job is None else job.id

    assert asyncio.run(fetch()) == holder
    (outcome,) = backend.enqueue_many(conn, batch(spec("a", "A"))).outcomes
    conn.commit()
    assert isinstance(outcome, Accepted)
    states = conn.execute("SELECT id, status::text FROM procrastinate_jobs ORDER BY id").fetchall()
    assert states == [(holder, "doing"), (int(outcome.job_id), "todo")]


def test_same_lock_twice_in_a_batch_keeps_the_first(
    backend: ProcrastinateBackend, conn: psycopg.Connection[Any]
) -> None:
    """A second job of one batch with the same queueing_lock is duplicate_in_cohort, naming the first job's id."""
    first, second = backend.enqueue_many(conn, batch(spec("x1", "X"), spec("x2", "X"))).outcomes
    assert isinstance(first, Accepted)
    assert second == Dropped(
        key="x2",
        reason=DropReason.DUPLICATE_IN_COHORT,
        singleton_key="X",
        policy="queueing_lock",
        holder_id=first.job_id,
        holder_state="todo",
    )
    assert conn.execute("SELECT count(*) FROM procrastinate_jobs").fetchone() == (1,)


def test_jobs_without_a_lock_never_collide(
    backend: ProcrastinateBackend, conn: psycopg.Connection[Any]
) -> None:
    """Jobs with no singleton key are all accepted: NULL queueing_locks do not conflict."""
    outcomes = backend.enqueue_many(conn, batch(spec("n1"), spec("n2"), spec("n3"))).outcomes
    assert all(isinstance(o, Accepted) for o in outcomes)
    assert conn.execute("SELECT count(*) FROM procrastinate_jobs WHERE queueing_lock IS NULL").fetchone() == (
        3,
    )
