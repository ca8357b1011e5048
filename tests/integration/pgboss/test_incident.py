"""The seed incident: a stately queue, 13 entities staggered across an hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from scheduler.types import Accepted, Batch, Dropped, DropReason
from tests.integration.pgboss.conftest import BOTH_PATHS
from tests.integration.pgboss.interop import INCIDENT_QUEUE, assert_exact, job, queue_ref

if TYPE_CHECKING:
    import psycopg

    from scheduler.backends.pgboss import PgBossBackend

QUEUE = queue_ref(INCIDENT_QUEUE)
T0 = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)


def cohort(keyed: bool) -> Batch:
    jobs = tuple(
        job(str(i), f"insight:{i}" if keyed else None, T0 + timedelta(minutes=5 * i), organizationId=i)
        for i in range(13)
    )
    return Batch(queue=QUEUE, jobs=jobs)


@BOTH_PATHS
def test_keyless_stately_cohort_keeps_one_and_names_it(
    conn: psycopg.Connection[tuple[object, ...]], backend: PgBossBackend
) -> None:
    """Without singleton keys, 1 job lands and the other 12 are dropped naming it, as predicted beforehand."""
    batch = cohort(keyed=False)
    predicted = backend.predict_many(conn, batch, set())
    result = backend.enqueue_many(conn, batch)
    conn.commit()

    assert_exact(result, batch)
    first = result.outcomes[0]
    assert isinstance(first, Accepted)
    expected = [
        Dropped(str(i), DropReason.POLICY_CONFLICT, None, "stately", first.job_id, "created")
        for i in range(1, 13)
    ]
    assert list(result.outcomes[1:]) == expected
    assert predicted.outcomes == (
        Accepted("0", ""),
        *(Dropped(str(i), DropReason.POLICY_CONFLICT, None, "stately", "", "created") for i in range(1, 13)),
    )
    assert conn.execute("SELECT count(*) FROM pgboss.job").fetchone() == (1,)


@BOTH_PATHS
def test_keyed_stately_cohort_accepts_all(
    conn: psycopg.Connection[tuple[object, ...]], backend: PgBossBackend
) -> None:
    """With "insight:<id>" singleton keys, all 13 jobs land with their own ids and start times."""
    batch = cohort(keyed=True)
    result = backend.enqueue_many(conn, batch)
    conn.commit()

    assert_exact(result, batch)
    assert all(isinstance(o, Accepted) for o in result.outcomes)
    rows = conn.execute(
        "SELECT id::text, singleton_key, start_after, policy, state::text FROM pgboss.job ORDER BY start_after"
    ).fetchall()
    ids = [o.job_id for o in result.outcomes if isinstance(o, Accepted)]
    assert rows == [
        (ids[i], f"insight:{i}", T0 + timedelta(minutes=5 * i), "stately", "created") for i in range(13)
    ]


@BOTH_PATHS
def test_reenqueued_cohort_is_dropped_naming_each_holder(
    conn: psycopg.Connection[tuple[object, ...]], backend: PgBossBackend
) -> None:
    """Enqueuing the same 13 keyed jobs again drops every one, each naming the job queued for its key."""
    batch = cohort(keyed=True)
    first = backend.enqueue_many(conn, batch)
    conn.commit()
    again = backend.enqueue_many(conn, batch)
    conn.commit()

    assert_exact(again, batch)
    holders = [o.job_id for o in first.outcomes if isinstance(o, Accepted)]
    assert list(again.outcomes) == [
        Dropped(str(i), DropReason.POLICY_CONFLICT, f"insight:{i}", "stately", holders[i], "created")
        for i in range(13)
    ]
