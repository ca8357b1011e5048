"""A real pg-boss worker (`boss.work()`) consumes what enqueue_many wrote."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING

from scheduler.types import Accepted, Batch
from tests.integration.pgboss.interop import WORKER_QUEUE, assert_exact, job, node, queue_ref, to_url
from tests.interop.nodejs import MINIMUM, parse_version

if TYPE_CHECKING:
    import psycopg

    from scheduler.backends.pgboss import PgBossBackend

QUEUE = queue_ref(WORKER_QUEUE)


def test_worker_completes_every_enqueued_job(
    conn: psycopg.Connection[tuple[object, ...]], pgboss_dsn: str, backend: PgBossBackend
) -> None:
    """Every job we enqueued is fetched by boss.work(), running on Node >= 22.12, with its payload and ends
    completed."""
    (now,) = conn.execute("SELECT now()").fetchone() or ()
    batch = Batch(QUEUE, tuple(job(f"e{i}", f"entity:{i}", now, n=i, nested={"a": [i]}) for i in range(6)))
    result = backend.enqueue_many(conn, batch)
    conn.commit()
    assert_exact(result, batch)

    ran = node("worker.mjs", to_url(pgboss_dsn), json.dumps([WORKER_QUEUE]), "6", "15000", timeout=30)

    assert ran["timedOut"] is False
    assert parse_version(ran["node"]) >= MINIMUM  # the worker's own process.version
    expected = {
        o.job_id: dict(j.data)
        for o, j in zip(result.outcomes, batch.jobs, strict=True)
        if isinstance(o, Accepted)
    }
    assert {j["id"]: j["data"] for j in ran["jobs"]} == expected
    states = conn.execute("SELECT state::text, count(*) FROM pgboss.job GROUP BY 1").fetchall()
    assert states == [("completed", 6)]


def test_worker_does_not_start_a_job_before_start_after(
    conn: psycopg.Connection[tuple[object, ...]], pgboss_dsn: str, backend: PgBossBackend
) -> None:
    """A job with a future start_after runs, but not before that instant (started_on >= start_after)."""
    (now,) = conn.execute("SELECT now()").fetchone() or ()
    batch = Batch(QUEUE, (job("later", "later", now + timedelta(seconds=2)),))
    result = backend.enqueue_many(conn, batch)
    conn.commit()
    assert_exact(result, batch)

    ran = node("worker.mjs", to_url(pgboss_dsn), json.dumps([WORKER_QUEUE]), "1", "15000", timeout=30)

    assert ran["timedOut"] is False
    row = conn.execute("SELECT state::text, started_on >= start_after FROM pgboss.job").fetchone()
    assert row == ("completed", True)
