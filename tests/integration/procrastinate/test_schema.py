"""Schema probing, queue description, and a procrastinate installed in a schema of its own."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from scheduler.errors import ConfigError, QueueMissing, SchemaMismatch
from scheduler.types import Accepted, Dropped, DropReason, QueueInfo
from tests.integration.procrastinate.conftest import QUEUE, batch, procrastinate_app, spec

if TYPE_CHECKING:
    from scheduler.backends.procrastinate import ProcrastinateBackend
    from tests.conftest import MakeDatabase

CREATE = "procrastinate schema --read | psql -v ON_ERROR_STOP=1 <DSN of database 'queue'>"
FIX = (
    f"Create it with procrastinate's own CLI: `{CREATE}` (an empty schema), or upgrade it with the "
    "migrations in the directory `procrastinate schema --migrations-path` prints, up to your procrastinate 3 "
    "version."
)


def test_check_schema_accepts_procrastinate_3(
    backend: ProcrastinateBackend, conn: psycopg.Connection[Any]
) -> None:
    """A schema applied by procrastinate 3.10.0 itself passes the probe."""
    assert backend.check_schema(conn, QUEUE) == "procrastinate 3 (queueing_lock_idx_v1)"


def test_check_schema_on_an_empty_database(
    backend: ProcrastinateBackend, make_database: MakeDatabase
) -> None:
    """An empty database raises SchemaMismatch naming the missing table, the supported version and the fix."""
    with psycopg.connect(make_database()) as conn, pytest.raises(SchemaMismatch) as caught:
        backend.check_schema(conn, QUEUE)
    assert str(caught.value) == (
        "procrastinate queue 'interop': table procrastinate_jobs not found in the connection's search_path; "
        f"supported: procrastinate 3.x (tested with 3.10.0). {FIX}"
    )


def test_check_schema_names_a_missing_index(
    backend: ProcrastinateBackend, conn: psycopg.Connection[Any]
) -> None:
    """Without procrastinate_jobs_queueing_lock_idx_v1 the probe names the index and the version supported."""
    conn.execute("DROP INDEX procrastinate_jobs_queueing_lock_idx_v1")
    with pytest.raises(SchemaMismatch) as caught:
        backend.check_schema(conn, QUEUE)
    assert str(caught.value) == (
        "procrastinate queue 'interop': procrastinate_jobs in the connection's search_path is not procrastinate "
        "3.x (tested with 3.10.0): missing index procrastinate_jobs_queueing_lock_idx_v1 (found columns id, "
        "queue_name, task_name, priority, lock, queueing_lock, args, status, scheduled_at, attempts, "
        "abort_requested, worker_id; statuses todo, doing, succeeded, failed, cancelled, aborting, aborted). "
        f"{FIX}"
    )


def test_describe_queue_reports_the_queueing_lock_policy(
    backend: ProcrastinateBackend, conn: psycopg.Connection[Any]
) -> None:
    """Any queue name exists once the schema does, with policy queueing_lock and no notify step."""
    assert backend.describe_queue(conn, QUEUE) == QueueInfo(
        queue=QUEUE,
        exists=True,
        policy="queueing_lock",
        schema_version="procrastinate 3 (queueing_lock_idx_v1)",
    )


def test_ensure_queue_creates_nothing(backend: ProcrastinateBackend, conn: psycopg.Connection[Any]) -> None:
    """ensure_queue on an installed schema returns the description and writes nothing."""
    assert backend.ensure_queue(conn, QUEUE) == backend.describe_queue(conn, QUEUE)
    assert conn.info.transaction_status is psycopg.pq.TransactionStatus.INTRANS
    assert conn.execute("SELECT count(*) FROM procrastinate_jobs").fetchone() == (0,)


def test_ensure_queue_without_schema_raises_queue_missing(
    backend: ProcrastinateBackend, make_database: MakeDatabase
) -> None:
    """ensure_queue on a database without procrastinate raises QueueMissing; it never applies the schema."""
    with psycopg.connect(make_database()) as conn, pytest.raises(QueueMissing) as caught:
        backend.ensure_queue(conn, QUEUE)
    assert str(caught.value) == (
        "procrastinate queue 'interop' (records): table procrastinate_jobs not found in the connection's "
        f"search_path. Create it with procrastinate's own CLI: `{CREATE}`."
    )


def test_ensure_queue_requires_a_task(backend: ProcrastinateBackend, conn: psycopg.Connection[Any]) -> None:
    """A procrastinate queue without `task` is a ConfigError saying what to set."""
    with pytest.raises(ConfigError) as caught:
        backend.ensure_queue(conn, replace(QUEUE, task=None))
    assert str(caught.value) == (
        "queue 'records' (interop) is a procrastinate queue without `task`: set `task:` to the task name the "
        "workers registered (`name=` given to @app.task, else `module.function`)."
    )


def test_procrastinate_in_its_own_schema(backend: ProcrastinateBackend, make_database: MakeDatabase) -> None:
    """With QueueRef.schema set, probe, enqueue and conflict lookups use that schema and leave search_path as it was."""
    dsn = make_database()
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute('CREATE SCHEMA "Jobs"')
    with procrastinate_app(dsn + " options='-c search_path=\"Jobs\"'") as app:
        app.schema_manager.apply_schema()
    queue = replace(QUEUE, schema="Jobs")
    with psycopg.connect(dsn) as conn:
        assert backend.check_schema(conn, queue) == "procrastinate 3 (queueing_lock_idx_v1)"
        first = backend.enqueue_many(conn, batch(spec("a", "A"), queue=queue)).outcomes[0]
        again = backend.enqueue_many(conn, batch(spec("a", "A"), queue=queue)).outcomes[0]
        assert conn.execute("SHOW search_path").fetchone() == ('"$user", public',)
        conn.commit()
        assert isinstance(first, Accepted)
        assert not isinstance(again, Accepted)
        assert (again.reason, again.holder_id, again.holder_state) == (
            DropReason.POLICY_CONFLICT,
            first.job_id,
            "todo",
        )
        events = conn.execute('SELECT type::text FROM "Jobs".procrastinate_events ORDER BY 1').fetchall()
        assert events == [("deferred",), ("scheduled",)]

        # The stream (one COPY, ids taken first) in the same schema: A is held, B goes in with its events.
        chunk = batch(spec("a", "A"), spec("b", "B"), queue=queue)
        prepared = backend.preparer(conn, queue)(chunk)
        stream = backend.open_stream(conn, queue, expected=2)
        assert stream is not None
        assert stream.accepts(queue, prepared)
        held, written = stream.write(chunk, prepared).outcomes
        stream.close()
        assert conn.execute("SHOW search_path").fetchone() == ('"$user", public',)
        conn.commit()
        assert isinstance(written, Accepted)
        assert isinstance(held, Dropped)
        assert (held.reason, held.holder_id) == (DropReason.POLICY_CONFLICT, first.job_id)
        rows = conn.execute(
            'SELECT j.id::text, e.type::text FROM "Jobs".procrastinate_jobs j '
            'JOIN "Jobs".procrastinate_events e ON e.job_id = j.id WHERE j.queueing_lock = %s ORDER BY 2',
            ("B",),
        ).fetchall()
        assert rows == [(written.job_id, "deferred"), (written.job_id, "scheduled")]
