"""The COPY path (large batches) is as exact as the array path."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from scheduler.backends.pgboss import PgBossBackend
from scheduler.types import Accepted, Batch, Dropped, DropReason
from tests.integration.pgboss.interop import INCIDENT_QUEUE, assert_exact, job, queue_ref

if TYPE_CHECKING:
    import psycopg

QUEUE = queue_ref(INCIDENT_QUEUE)


def test_large_batch_reports_every_row_exactly(
    conn: psycopg.Connection[tuple[object, ...]], backend: PgBossBackend
) -> None:
    """5,000 rows through COPY: 300 keys already queued and 10 keyless rows are dropped naming their holders."""
    now = datetime.now(UTC)
    earlier = Batch(QUEUE, tuple(job(f"e{i}", f"k{i}", now) for i in range(300)))
    held = backend.enqueue_many(conn, earlier)
    conn.commit()
    holder_of = {o.key: o.job_id for o in held.outcomes if isinstance(o, Accepted)}
    assert len(holder_of) == 300

    jobs = [job(f"e{i}", f"k{i}", now) for i in range(4990)]
    jobs[2000:2000] = [job(f"nokey{i}", None, now) for i in range(10)]
    batch = Batch(QUEUE, tuple(jobs))
    assert len(batch.jobs) > backend.copy_threshold
    result = backend.enqueue_many(conn, batch)
    conn.commit()

    assert_exact(result, batch)
    accepted = {o.key: o.job_id for o in result.outcomes if isinstance(o, Accepted)}
    dropped = [o for o in result.outcomes if isinstance(o, Dropped)]
    assert len(accepted) == 4690 + 1
    assert "nokey0" in accepted
    assert len(dropped) == 300 + 9
    expected_holders = {**holder_of, **{f"nokey{i}": accepted["nokey0"] for i in range(1, 10)}}
    assert {o.key: o.holder_id for o in dropped} == expected_holders
    assert {(o.reason, o.policy, o.holder_state) for o in dropped} == {
        (DropReason.POLICY_CONFLICT, "stately", "created")
    }
    ids_in_table = {r[0] for r in conn.execute("SELECT id::text FROM pgboss.job").fetchall()}
    assert ids_in_table == set(holder_of.values()) | set(accepted.values())


def test_copy_path_reports_the_same_as_array_path(
    conn: psycopg.Connection[tuple[object, ...]], backend: PgBossBackend
) -> None:
    """The same mixed batch gives the same outcomes through COPY as through array parameters."""
    now = datetime.now(UTC)
    backend.enqueue_many(conn, Batch(QUEUE, (job("held", "k1", now),)))
    conn.commit()
    batch = Batch(QUEUE, (job("a", "k1", now), job("b", None, now), job("c", "k2", now), job("d", None, now)))

    def shape(backend_: PgBossBackend) -> list[tuple[object, ...]]:
        result = backend_.enqueue_many(conn, batch)
        assert_exact(result, batch)
        new = {o.job_id: o.key for o in result.outcomes if isinstance(o, Accepted)}
        shaped = [
            ("accepted", o.key)
            if isinstance(o, Accepted)
            else (o.key, o.reason, new.get(o.holder_id or "", "old"))
            for o in result.outcomes
        ]
        conn.rollback()
        return shaped

    assert shape(PgBossBackend(copy_threshold=0)) == shape(backend)
    assert shape(backend) == [
        ("a", DropReason.POLICY_CONFLICT, "old"),
        ("accepted", "b"),
        ("accepted", "c"),
        ("d", DropReason.POLICY_CONFLICT, "b"),
    ]
