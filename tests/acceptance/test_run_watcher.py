"""Watchers and the alias pass inside `scheduler run` (a subprocess), on a real database holding the app's
chat table and pg-boss's schema: interval jobs in real seconds (`every: 1s`), no schedule due."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

import psycopg
import pytest

from tests.acceptance.conftest import wait_until
from tests.integration.pgboss.interop import send_steps

if TYPE_CHECKING:
    from pathlib import Path

    from tests.acceptance.conftest import Launch

CONFIG = """\
version: 1
databases:
  app: { dsn_env: APP_DATABASE_URL }
  queue: { dsn_env: QUEUE_DATABASE_URL }
queues:
  ui: { name: lane-ui, backend: pgboss, policy: standard }
aliases:
  bulk: ui
watchers:
  chat-generating:
    every: 1s
    stuck_after: 90s
    sql: >
      select id as key, json_build_object('messageId', id) as data from chat_message
      where status = 'GENERATING' and updated_at < %(now)s - %(stuck_after)s
    queue: ui
    singleton_key: "chat-message:{key}"
"""

ALREADY_QUEUED = re.compile(
    r'watch_reemitted watcher=chat-generating .*accepted=0 dropped=1 dropped_by_reason=\{"already_queued":1\}'
)
"""A pass that found m1 still waiting."""


@pytest.fixture
def db(queues_db: str) -> str:
    """pg-boss and a chat_message table with m1 stuck in GENERATING for 5 minutes."""
    with psycopg.connect(queues_db) as conn:
        conn.execute(
            "CREATE TABLE chat_message (id text PRIMARY KEY, status text NOT NULL, updated_at timestamptz NOT NULL)"
        )
        conn.execute("INSERT INTO chat_message VALUES ('m1', 'GENERATING', now() - interval '5 minutes')")
    return queues_db


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "watch.yaml"
    path.write_text(CONFIG)
    return path


def lane_ui_keys(db: str) -> list[str]:
    with psycopg.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT singleton_key FROM pgboss.job WHERE name = 'lane-ui'")]


def test_watcher_in_run_reemits_once_and_stays_once(db: str, config: Path, launch: Launch) -> None:
    """The watcher re-emits m1 once; later passes report it already_queued; SIGTERM exits 0."""
    replica = launch(
        config, db, time.time(), APP_DATABASE_URL=db, QUEUE_DATABASE_URL=db, SCHEDULER_TEST_CLOCK_SPEED="1"
    )
    wait_until(lambda: lane_ui_keys(db), what="the re-emitted job")
    wait_until(lambda: len(ALREADY_QUEUED.findall(replica.text())) >= 2, what="two already_queued passes")
    assert (replica.stop(), lane_ui_keys(db)) == (0, ["chat-message:m1"])


def lane_jobs(db: str) -> list[tuple[str, str, dict[str, int]]]:
    """(queue name, id, data) of every pg-boss job of lane-ui and bulk."""
    with psycopg.connect(db) as conn:
        rows = conn.execute(
            "SELECT name, id::text, data FROM pgboss.job WHERE name IN ('lane-ui', 'bulk') AND singleton_key = 'k1'"
        ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def test_alias_pass_in_run_moves_a_job_off_the_old_name(db: str, config: Path, launch: Launch) -> None:
    """A job pg-boss sent to the old name `bulk` is moved to lane-ui (same id and data); SIGTERM exits 0."""
    replica = launch(
        config, db, time.time(), APP_DATABASE_URL=db, QUEUE_DATABASE_URL=db, SCHEDULER_TEST_CLOCK_SPEED="1"
    )
    sent = send_steps(
        db, [{"op": "send", "queue": "bulk", "data": {"n": 1}, "options": {"singletonKey": "k1"}}]
    )
    wait_until(lambda: [name for name, _, _ in lane_jobs(db)] == ["lane-ui"], what="the job moved to lane-ui")
    replica.wait_for(r"alias_moved old=bulk queue=lane-ui moved=1 collided=0")
    assert (replica.stop(), lane_jobs(db)) == (0, [("lane-ui", sent[0]["id"], {"n": 1})])
