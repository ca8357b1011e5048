"""Watcher fixtures: a database holding the app's chat tables and both queue systems (made by the real
libraries), and a config whose `app` and `queue` databases both point at it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from scheduler.config import load_config
from scheduler.fanout import Fanout, default_backends
from scheduler.runtime.ledger import Ledger

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

CONFIG = """
version: 1
databases:
  app: { dsn_env: APP_DATABASE_URL }
  queue: { dsn_env: QUEUE_DATABASE_URL }
queues:
  ui: { name: lane-ui, backend: pgboss, policy: standard }
  batch: { name: lane-batch, backend: pgboss, policy: standard }
  insights: { name: generate-insight-post, backend: pgboss, policy: stately }
  records: { name: interop, backend: procrastinate, task: interop.record }
lanes:
  chat: { default: ui, routes: { scheduled_report: batch } }
aliases:
  bulk: ui
  old-records: records
  old-insights: insights
schedules:
  reports:
    cron: "0 14 * * *"
    cohort:
      sql: select id as key, source, json_build_object('messageId', id) as data from chat_message
    lane: chat
    singleton_key: "report:{key}"
watchers:
  chat-generating:
    sql: >
      select id as key, source, json_build_object('messageId', id) as data from chat_message
      where status = 'GENERATING' and updated_at < %(now)s - %(stuck_after)s order by id
    lane: chat
    singleton_key: "chat-message:{key}"
    max_reemits: 2
  records-stalled:
    queue: records
    queue_level: true
    reemit_stalled: true
  ui-stalled:
    queue: ui
    queue_level: true
    reemit_stalled: true
"""

CHAT_TABLE = """
CREATE TABLE chat_message (
    id text PRIMARY KEY,
    status text NOT NULL,
    source text,
    updated_at timestamptz NOT NULL
)
"""


@pytest.fixture
def db(queues_db: str) -> str:
    """The test's database: chat_message, pg-boss, procrastinate, and the migrated ledger."""
    with psycopg.connect(queues_db) as conn:
        conn.execute(CHAT_TABLE)
        conn.commit()
        Ledger().migrate(conn)
    return queues_db


@pytest.fixture
def fanout(db: str, tmp_path: Path) -> Fanout:
    path = tmp_path / "watch.yaml"
    path.write_text(CONFIG)
    loaded = load_config([path])
    return Fanout(
        loaded, {"APP_DATABASE_URL": db, "QUEUE_DATABASE_URL": db}, default_backends(), detail_limit=None
    )


def db_now(dsn: str) -> datetime:
    """The database's clock (what pg-boss compares start_after with)."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    value: datetime = row[0]
    return value


def add_messages(dsn: str, now: datetime, *rows: tuple[str, str, str | None, float]) -> None:
    """Insert chat messages (id, status, source, seconds since the last update, relative to `now`)."""
    with psycopg.connect(dsn) as conn:
        for id_, status, source, age in rows:
            conn.execute(
                "INSERT INTO chat_message VALUES (%s, %s, %s, %s - make_interval(secs => %s))",
                (id_, status, source, now, age),
            )


def jobs(dsn: str, queue: str) -> list[tuple[Any, ...]]:
    """(singleton_key, data, state) of every pg-boss job of `queue`, by singleton key then state."""
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT singleton_key, data, state::text FROM pgboss.job WHERE name = %s ORDER BY singleton_key, state::text",
            (queue,),
        ).fetchall()
