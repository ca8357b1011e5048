"""A real procrastinate worker runs what the backend enqueued, with the right task and args, never early."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from scheduler.types import Accepted
from tests.integration.procrastinate.conftest import QUEUE, batch, run_worker_once, spec

if TYPE_CHECKING:
    import psycopg

    from scheduler.backends.procrastinate import ProcrastinateBackend

SYNC_QUEUE = replace(QUEUE, logical="records-sync", name="interop-sync", task="interop.record_sync")
DELAY = timedelta(seconds=4)


def test_worker_runs_every_accepted_job_at_or_after_its_start(
    backend: ProcrastinateBackend, conn: psycopg.Connection[Any], queue_dsn: str
) -> None:
    """200 jobs on two queues (40 starting 4 s out) all succeed with their args, none before scheduled_at."""
    now = datetime.now(UTC)
    due = [
        spec(f"e{i}", f"lock:e{i}", {"entity": f"e{i}", "n": i, "tags": ["x", i]}, now) for i in range(160)
    ]
    later = [spec(f"l{i}", f"lock:l{i}", {"entity": f"l{i}", "n": i}, now + DELAY) for i in range(40)]
    results = [
        backend.enqueue_many(conn, batch(*due)),
        backend.enqueue_many(conn, batch(*later, queue=SYNC_QUEUE)),
    ]
    conn.commit()
    expected: dict[int, tuple[str, dict[str, Any]]] = {}
    for result, jobs in zip(results, (due, later), strict=True):
        assert result.queue.task is not None
        for outcome, job in zip(result.outcomes, jobs, strict=True):
            assert isinstance(outcome, Accepted)
            expected[int(outcome.job_id)] = (result.queue.task, dict(job.data))
    assert len(expected) == 200

    run_worker_once(queue_dsn)
    # The one-shot worker stopped when nothing was due: the delayed jobs are all still waiting.
    waiting = conn.execute("SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'").fetchone()
    conn.commit()
    assert waiting == (40,)
    time.sleep(max(0.0, (now + DELAY - datetime.now(UTC)).total_seconds()) + 0.2)
    run_worker_once(queue_dsn)

    statuses = conn.execute("SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY 1").fetchall()
    assert statuses == [("succeeded", 200)]
    done = conn.execute("SELECT job_id, task, args FROM interop_done").fetchall()
    assert {job_id: (task, args) for job_id, task, args in done} == expected
    assert len(done) == 200
    early = conn.execute(
        "SELECT count(*) FROM interop_done d JOIN procrastinate_jobs j ON j.id = d.job_id WHERE d.ran_at < j.scheduled_at"
    ).fetchone()
    assert early == (0,)
