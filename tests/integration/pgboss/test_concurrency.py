"""Two fan-outs at once over the same keys."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import psycopg
import pytest

from scheduler.backends.pgboss import PgBossBackend
from scheduler.types import Accepted, Batch, ChunkResult, Dropped, DropReason
from tests.integration.pgboss.interop import INCIDENT_QUEUE, assert_exact, job, queue_ref

QUEUE = queue_ref(INCIDENT_QUEUE)


def test_opposite_key_orders_do_not_deadlock(pgboss_dsn: str, backend: PgBossBackend) -> None:
    """A batch [k2, k1] waiting on another transaction's k1 has not taken k2, so that transaction can still
    insert k2 and commit; the waiting batch then reports both keys held by it."""
    now = datetime.now(UTC)
    results: list[ChunkResult] = []
    with psycopg.connect(pgboss_dsn) as first, psycopg.connect(pgboss_dsn) as second:
        held_k1 = backend.enqueue_many(first, Batch(QUEUE, (job("a1", "k1", now),)))
        second_pid = second.info.backend_pid
        reversed_batch = Batch(QUEUE, (job("b2", "k2", now), job("b1", "k1", now)))

        def run_second() -> None:
            results.append(backend.enqueue_many(second, reversed_batch))
            second.commit()

        worker = threading.Thread(target=run_second)
        worker.start()
        _wait_for_lock(pgboss_dsn, second_pid)
        held_k2 = backend.enqueue_many(first, Batch(QUEUE, (job("a2", "k2", now),)))
        first.commit()
        worker.join(timeout=10)

    (result,) = results
    assert_exact(result, reversed_batch)
    (a1,), (a2,) = held_k1.outcomes, held_k2.outcomes
    assert isinstance(a1, Accepted)
    assert isinstance(a2, Accepted)
    assert result.outcomes == (
        Dropped("b2", DropReason.POLICY_CONFLICT, "k2", "stately", a2.job_id, "created"),
        Dropped("b1", DropReason.POLICY_CONFLICT, "k1", "stately", a1.job_id, "created"),
    )


def _wait_for_lock(dsn: str, pid: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as watcher:
        for _ in range(250):
            waiting = watcher.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()
            if waiting == ("Lock",):
                return
            time.sleep(0.02)
    raise AssertionError(f"backend {pid} never waited on a lock")


@pytest.mark.parametrize("other_commits", [True, False], ids=["other-commits", "other-rolls-back"])
def test_slot_taken_between_check_and_copy(pgboss_dsn: str, other_commits: bool) -> None:
    """A slot another transaction took and has not committed makes the direct COPY wait on the index; if
    that transaction commits, the COPY fails on the index, is rolled back to its savepoint and the chunk
    goes through INSERT … ON CONFLICT: the slot is reported held by the other job and every other row
    lands once. If it rolls back, the COPY simply goes through."""
    copying = PgBossBackend(copy_threshold=0)
    now = datetime.now(UTC)
    results: list[ChunkResult] = []
    batch = Batch(QUEUE, tuple(job(f"e{i}", f"k{i}", now) for i in range(50)))
    with psycopg.connect(pgboss_dsn) as other, psycopg.connect(pgboss_dsn) as ours:
        (taken,) = copying.enqueue_many(other, Batch(QUEUE, (job("other", "k7", now),))).outcomes
        assert isinstance(taken, Accepted)

        def fan_out() -> None:
            results.append(copying.enqueue_many(ours, batch))
            ours.commit()

        worker = threading.Thread(target=fan_out)
        worker.start()
        _wait_for_lock(pgboss_dsn, ours.info.backend_pid)
        if other_commits:
            other.commit()
        else:
            other.rollback()
        worker.join(timeout=10)

        (result,) = results
        assert_exact(result, batch)
        dropped = [o for o in result.outcomes if isinstance(o, Dropped)]
        if other_commits:
            assert dropped == [
                Dropped("e7", DropReason.POLICY_CONFLICT, "k7", "stately", taken.job_id, "created")
            ]
        else:
            assert dropped == []
        rows = ours.execute(
            "SELECT singleton_key, count(*) FROM pgboss.job WHERE name = %s GROUP BY 1", (QUEUE.name,)
        ).fetchall()
        assert sorted(rows) == sorted((f"k{i}", 1) for i in range(50))
