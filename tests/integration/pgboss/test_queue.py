"""Queues: describe, refuse a missing one, or create it the way pg-boss does."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from scheduler.errors import QueueMissing
from scheduler.types import Batch, QueueInfo
from tests.integration.pgboss.interop import INCIDENT_QUEUE, job, queue_ref, send_steps

if TYPE_CHECKING:
    import psycopg

    from scheduler.backends.pgboss import PgBossBackend


def test_describe_queue_reads_the_live_queue(
    conn: psycopg.Connection[tuple[object, ...]], backend: PgBossBackend
) -> None:
    """describe_queue returns the policy and settings pg-boss stored for the queue."""
    queue = queue_ref(INCIDENT_QUEUE)
    assert backend.describe_queue(conn, queue) == QueueInfo(
        queue=queue,
        exists=True,
        policy="stately",
        retry_limit=2,
        retry_delay_seconds=0,
        expire_seconds=900,
        notify=False,
        schema_version="46",
    )


def test_describe_queue_reports_a_missing_queue_without_raising(
    conn: psycopg.Connection[tuple[object, ...]], backend: PgBossBackend
) -> None:
    """A queue that does not exist is described as exists=False."""
    queue = queue_ref("no-such-queue")
    assert backend.describe_queue(conn, queue) == QueueInfo(queue=queue, exists=False, schema_version="46")


def test_ensure_queue_refuses_a_missing_queue(
    conn: psycopg.Connection[tuple[object, ...]], backend: PgBossBackend
) -> None:
    """Without create_missing, a missing queue raises QueueMissing naming the queue, the schema and the fix."""
    with pytest.raises(QueueMissing) as caught:
        backend.ensure_queue(conn, queue_ref("no-such-queue", policy="stately"))
    assert str(caught.value) == (
        'Queue "no-such-queue" (queue `no_such_queue`) does not exist in pg-boss schema "pgboss". '
        'Create it with pg-boss (`await boss.createQueue("no-such-queue", { policy: "stately" })`), or set '
        "`create_missing: true` on queue `no_such_queue` so the scheduler creates it."
    )


def test_ensure_queue_creates_the_declared_policy_seen_by_pg_boss(
    conn: psycopg.Connection[tuple[object, ...]], pgboss_dsn: str, backend: PgBossBackend
) -> None:
    """With create_missing, the queue is created with the declared policy and the real pg-boss reads it."""
    info = backend.ensure_queue(conn, queue_ref("fresh-queue", policy="exclusive", create_missing=True))
    conn.commit()

    assert (info.exists, info.policy) == (True, "exclusive")
    (got, sent, again) = send_steps(
        pgboss_dsn,
        [
            {"op": "getQueue", "queue": "fresh-queue"},
            {"op": "send", "queue": "fresh-queue", "options": {"singletonKey": "k"}},
            {"op": "send", "queue": "fresh-queue", "options": {"singletonKey": "k"}},
        ],
    )
    assert (got["queue"]["name"], got["queue"]["policy"]) == ("fresh-queue", "exclusive")
    assert sent["id"] is not None
    assert again == {"id": None}


def test_ensure_queue_defaults_to_standard(
    conn: psycopg.Connection[tuple[object, ...]], backend: PgBossBackend
) -> None:
    """A queue created without a declared policy gets pg-boss's "standard" policy explicitly."""
    info = backend.ensure_queue(conn, queue_ref("plain-queue", create_missing=True))
    assert info.policy == "standard"


def test_enqueue_into_a_missing_queue_raises(
    conn: psycopg.Connection[tuple[object, ...]], backend: PgBossBackend
) -> None:
    """enqueue_many refuses a queue that does not exist instead of reporting every job as dropped."""
    batch = Batch(queue_ref("no-such-queue"), (job("a", "k", datetime.now(UTC)),))
    with pytest.raises(QueueMissing) as caught:
        backend.enqueue_many(conn, batch)
    assert str(caught.value) == (
        'Queue "no-such-queue" (queue `no_such_queue`) does not exist in pg-boss schema "pgboss"; '
        "nothing was enqueued. Create it, or set `create_missing: true`."
    )
