"""The watcher's procrastinate statements in a non-public schema: procrastinate applied in "Jobs", found
through the queue's `schema:` (search_path pointed there transaction-locally, as the backend does)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg
import pytest

from scheduler.config import load_config
from scheduler.fanout import Fanout, default_backends
from scheduler.runtime.ledger import Ledger
from scheduler.watch.passes import aliases_once, watch_once
from tests.integration.procrastinate.conftest import procrastinate_app
from tests.integration.watcher.conftest import db_now

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import MakeDatabase

CONFIG = """
version: 1
databases:
  queue: { dsn_env: QUEUE_DATABASE_URL }
queues:
  records: { name: interop, backend: procrastinate, task: interop.record, schema: Jobs }
aliases:
  old-records: records
watchers:
  records-stalled:
    database: queue
    queue: records
    queue_level: true
    reemit_stalled: true
"""


@pytest.fixture
def jobs_db(make_database: MakeDatabase) -> str:
    """A database with procrastinate's schema applied by procrastinate in schema "Jobs" only."""
    dsn = make_database()
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute('CREATE SCHEMA "Jobs"')
    with procrastinate_app(dsn + " options='-c search_path=\"Jobs\"'") as app:
        app.schema_manager.apply_schema()
    with psycopg.connect(dsn) as conn:
        Ledger().migrate(conn)
    return dsn


@pytest.fixture
def fanout(jobs_db: str, tmp_path: Path) -> Fanout:
    path = tmp_path / "schema.yaml"
    path.write_text(CONFIG)
    return Fanout(load_config([path]), {"QUEUE_DATABASE_URL": jobs_db}, default_backends(), detail_limit=None)


def test_stalled_job_in_a_non_public_schema_is_reported_and_reemitted(jobs_db: str, fanout: Fanout) -> None:
    """A doing job with no worker in "Jobs" is reported stalled and re-emitted into "Jobs" with its lock."""
    with psycopg.connect(jobs_db) as conn:
        conn.execute('SET search_path = "Jobs"')  # procrastinate's triggers name their tables unqualified
        conn.execute(
            'INSERT INTO "Jobs".procrastinate_jobs (queue_name, task_name, args, queueing_lock, status) '
            "VALUES ('interop', 'interop.record', '{\"n\": 1}', 'lock-1', 'doing')"
        )
    result = watch_once(fanout, "records-stalled", db_now(jobs_db), replica="r1")
    with psycopg.connect(jobs_db) as conn:
        rows = conn.execute(
            'SELECT status::text, queueing_lock FROM "Jobs".procrastinate_jobs ORDER BY id'
        ).fetchall()
    assert [(j.singleton_key, j.state) for j in result.stalled] == [("lock-1", "doing")]
    assert rows == [("doing", "lock-1"), ("todo", "lock-1")]


def test_alias_moves_todo_jobs_in_a_non_public_schema(jobs_db: str, fanout: Fanout) -> None:
    """Todo jobs on the old name in "Jobs" are renamed to the target queue by the alias pass."""
    with psycopg.connect(jobs_db) as conn:
        conn.execute('SET search_path = "Jobs"')  # procrastinate's triggers name their tables unqualified
        conn.execute(
            'INSERT INTO "Jobs".procrastinate_jobs (queue_name, task_name, args, queueing_lock) '
            "SELECT 'old-records', 'interop.record', jsonb_build_object('n', n), 'lock-' || n "
            "FROM generate_series(1, 2) n"
        )
    result = aliases_once(fanout, "queue")
    with psycopg.connect(jobs_db) as conn:
        rows = conn.execute(
            'SELECT queue_name, queueing_lock FROM "Jobs".procrastinate_jobs ORDER BY id'
        ).fetchall()
    assert (result.moved, rows) == (2, [("interop", "lock-1"), ("interop", "lock-2")])
