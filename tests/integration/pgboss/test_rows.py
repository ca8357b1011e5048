"""The rows we write are the rows pg-boss's own send() writes, wherever pg-boss keeps them."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from scheduler.errors import PlanError
from scheduler.types import Accepted, Batch, Dropped, DropReason, JobOptions, JobSpec, JsonText
from tests.integration.pgboss.conftest import BOTH_PATHS
from tests.integration.pgboss.interop import (
    PARTITIONED_QUEUE,
    SETTINGS_QUEUE,
    assert_exact,
    job,
    node,
    queue_ref,
    send_steps,
    to_url,
)

if TYPE_CHECKING:
    from scheduler.backends.pgboss import PgBossBackend
    from tests.conftest import MakeDatabase

# Every column a policy, a retry, expiry, retention or the dead letter queue reads, relative to start_after.
COLUMNS = """
    SELECT name, priority, state::text, singleton_key, singleton_on, retry_limit, retry_count, retry_delay,
           retry_backoff, retry_delay_max, expire_seconds, deletion_seconds, keep_until - start_after,
           policy, dead_letter, heartbeat_seconds, blocked, blocking, pending_dependencies, upsert_by_key
    FROM pgboss.job WHERE id = %s
"""


def columns(conn: psycopg.Connection[tuple[object, ...]], job_id: str) -> tuple[object, ...] | None:
    return conn.execute(COLUMNS, (job_id,)).fetchone()


@BOTH_PATHS
def test_row_copies_the_queue_settings_like_send(
    conn: psycopg.Connection[tuple[object, ...]], pgboss_dsn: str, backend: PgBossBackend
) -> None:
    """With no job options, our row carries the queue's policy, retry, expiry, retention and dead letter like send()'s."""
    (sent,) = send_steps(
        pgboss_dsn, [{"op": "send", "queue": SETTINGS_QUEUE, "options": {"singletonKey": "a"}}]
    )
    batch = Batch(queue_ref(SETTINGS_QUEUE), (job("b", "b", datetime.now(UTC)),))
    result = backend.enqueue_many(conn, batch)
    conn.commit()

    (ours,) = result.outcomes
    assert isinstance(ours, Accepted)
    theirs = columns(conn, sent["id"])
    assert theirs is not None
    assert columns(conn, ours.job_id) == (*theirs[:3], "b", *theirs[4:])


@BOTH_PATHS
def test_job_options_override_the_queue_like_send(
    conn: psycopg.Connection[tuple[object, ...]], pgboss_dsn: str, backend: PgBossBackend
) -> None:
    """Priority, retry limit, retry delay and expiry from JobOptions land where send()'s options land."""
    options = {"singletonKey": "a", "priority": 3, "retryLimit": 7, "retryDelay": 11, "expireInSeconds": 45}
    (sent,) = send_steps(pgboss_dsn, [{"op": "send", "queue": SETTINGS_QUEUE, "options": options}])
    spec = JobSpec("b", "b", {}, datetime.now(UTC), JobOptions(3, 7, 11, 45))
    result = backend.enqueue_many(conn, Batch(queue_ref(SETTINGS_QUEUE), (spec,)))
    conn.commit()

    (ours,) = result.outcomes
    assert isinstance(ours, Accepted)
    theirs = columns(conn, sent["id"])
    assert theirs is not None
    assert columns(conn, ours.job_id) == (*theirs[:3], "b", *theirs[4:])


@BOTH_PATHS
def test_partitioned_queue_enforces_its_policy(
    conn: psycopg.Connection[tuple[object, ...]], backend: PgBossBackend
) -> None:
    """A queue with its own partition (partition: true) drops keyless stately duplicates naming the holder."""
    now = datetime.now(UTC)
    batch = Batch(
        queue_ref(PARTITIONED_QUEUE), (job("a", None, now), job("b", None, now), job("c", "k", now))
    )
    result = backend.enqueue_many(conn, batch)
    conn.commit()

    assert_exact(result, batch)
    first, second, third = result.outcomes
    assert isinstance(first, Accepted)
    assert isinstance(third, Accepted)
    assert second == Dropped("b", DropReason.POLICY_CONFLICT, None, "stately", first.job_id, "created")
    (table,) = (
        conn.execute(
            "SELECT tableoid::regclass::text FROM pgboss.job WHERE id = %s", (first.job_id,)
        ).fetchone()
        or ()
    )
    assert table != "pgboss.job_common"


@BOTH_PATHS
def test_custom_schema_is_used_throughout(make_database: MakeDatabase, backend: PgBossBackend) -> None:
    """With QueueRef.schema set, every statement targets that schema, which the real pg-boss created."""
    dsn = make_database()
    queues: list[dict[str, Any]] = [{"name": "q", "options": {"policy": "stately"}}]
    assert node("setup.mjs", to_url(dsn), json.dumps(queues), "jobs_v12") == {"version": 46}
    queue = replace(queue_ref("q"), schema="jobs_v12")
    start = datetime.now(UTC) + timedelta(minutes=1)
    batch = Batch(queue, (job("a", None, start), job("b", None, start)))
    with psycopg.connect(dsn) as conn:
        assert backend.describe_queue(conn, queue).policy == "stately"
        predicted = backend.predict_many(conn, batch, set())
        result = backend.enqueue_many(conn, batch)
        conn.commit()
        assert conn.execute("SELECT count(*) FROM jobs_v12.job").fetchone() == (1,)
    assert_exact(result, batch)
    assert [type(o) for o in predicted.outcomes] == [type(o) for o in result.outcomes] == [Accepted, Dropped]


NASTY = ["tab\there", "line\nbreak", "cr\rreturn", "back\\slash", "\\N", 'quote"s', "naïve ☃ 𝄞", "", " "]


@BOTH_PATHS
def test_payloads_and_keys_arrive_byte_for_byte(
    conn: psycopg.Connection[tuple[object, ...]], backend: PgBossBackend
) -> None:
    """Tabs, newlines, backslashes, a literal \\N and non-ASCII in payloads (object or cohort JSON text) and
    singleton keys come back from the table exactly as planned, on the COPY path as on the array path."""
    now = datetime.now(UTC)
    jobs = [
        JobSpec(f"e{i}", f"key {text}", {"text": text, "nested": {"list": [text]}}, now)
        for i, text in enumerate(NASTY)
    ]
    as_text = json.dumps({"text": "\\\t\n", "u": "\u2603"}, ensure_ascii=False)
    jobs.append(JobSpec("json-text", "key json", JsonText(as_text), now))
    batch = Batch(queue_ref(SETTINGS_QUEUE), tuple(jobs))
    result = backend.enqueue_many(conn, batch)
    conn.commit()

    assert all(isinstance(o, Accepted) for o in result.outcomes)
    ids = [o.job_id for o in result.outcomes if isinstance(o, Accepted)]
    rows = dict(
        (str(id_), (key, data))
        for id_, key, data in conn.execute(
            "SELECT id, singleton_key, data FROM pgboss.job WHERE id = ANY(%s::uuid[])", (ids,)
        ).fetchall()
    )
    assert [rows[i] for i in ids] == [
        *((f"key {t}", {"text": t, "nested": {"list": [t]}}) for t in NASTY),
        ("key json", json.loads(as_text)),
    ]


@BOTH_PATHS
def test_text_that_is_not_unicode_is_a_plan_error(
    conn: psycopg.Connection[tuple[object, ...]], backend: PgBossBackend
) -> None:
    """A lone surrogate (no UTF-8 form) in a singleton key is refused as a plan error on either path."""
    batch = Batch(queue_ref(SETTINGS_QUEUE), (job("a", "key \ud800", datetime.now(UTC)),))
    with pytest.raises(PlanError, match="not valid Unicode"):
        backend.enqueue_many(conn, batch)
