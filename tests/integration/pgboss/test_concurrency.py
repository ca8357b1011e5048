"""Two fan-outs at once over the same keys."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import psycopg

from scheduler.types import Accepted, Batch, ChunkResult, Dropped, DropReason
from tests.integration.pgboss.interop import INCIDENT_QUEUE, assert_exact, job, queue_ref

if TYPE_CHECKING:
    from scheduler.backends.pgboss import PgBossBackend

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
        with psycopg.connect(pgboss_dsn, autocommit=True) as watcher:
            for _ in range(100):
                waiting = watcher.execute(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (second_pid,)
                ).fetchone()
                if waiting == ("Lock",):
                    break
                time.sleep(0.02)
            assert waiting == ("Lock",)
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
