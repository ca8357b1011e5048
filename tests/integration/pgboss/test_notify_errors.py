"""Wake-ups on notify queues, and driver errors translated at the adapter."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import psycopg
import pytest

from scheduler.errors import BackendError
from scheduler.types import Batch, JobOptions, JobSpec
from tests.integration.pgboss.interop import INCIDENT_QUEUE, NOTIFY_QUEUE, queue_ref

if TYPE_CHECKING:
    from scheduler.backends.pgboss import PgBossBackend

# The channel pg-boss 12.38.0 listens on for schema "pgboss" (research/pgboss.md §3, item 7).
PGBOSS_CHANNEL = "pgboss_454650302e472074f72063fd"


def test_after_commit_wakes_pg_boss_listeners(pgboss_dsn: str, backend: PgBossBackend) -> None:
    """On a notify queue, after_commit sends the queue name on pg-boss's channel for the schema."""
    queue = queue_ref(NOTIFY_QUEUE)
    with psycopg.connect(pgboss_dsn, autocommit=True) as listener, psycopg.connect(pgboss_dsn) as conn:
        listener.execute(f"LISTEN {PGBOSS_CHANNEL}")
        info = backend.describe_queue(conn, queue)
        assert info.notify is True
        backend.after_commit(conn, queue, info)
        conn.commit()
        received = [(n.channel, n.payload) for n in listener.notifies(timeout=5, stop_after=1)]
    assert received == [(PGBOSS_CHANNEL, NOTIFY_QUEUE)]


def test_driver_error_becomes_backend_error(
    conn: psycopg.Connection[tuple[object, ...]], backend: PgBossBackend
) -> None:
    """A statement the database rejects raises BackendError naming the queue, with the driver error as cause."""
    queue = queue_ref(INCIDENT_QUEUE)
    spec = JobSpec("a", "k", {}, datetime.now(UTC), JobOptions(priority=2**40))
    with pytest.raises(BackendError) as caught:
        backend.enqueue_many(conn, Batch(queue, (spec,)))
    assert str(caught.value) == (
        'pg-boss enqueue failed for queue "generate-insight-post" in schema "pgboss": integer out of range. '
        "The transaction is aborted; roll it back (nothing of it is committed)."
    )
    assert isinstance(caught.value.__cause__, psycopg.errors.NumericValueOutOfRange)
