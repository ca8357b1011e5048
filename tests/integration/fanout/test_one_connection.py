"""Pool exhaustion cannot happen: a fan-out of any size uses exactly one connection to the queue database."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import psycopg

from scheduler.fanout import QUEUE_APPLICATION_NAME, fire
from tests.integration.fanout.conftest import job_count, load_fanout

if TYPE_CHECKING:
    from pathlib import Path

TICK = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
ENTITIES = 100_000
SCHEDULE = f"""\
schedules:
  everyone:
    cron: "0 * * * *"
    cohort:
      sql: select i as key, json_build_object('n', i) as data from generate_series(1, {ENTITIES}) as i
    queue: bulk
    singleton_key: "n:{{key}}"
"""


class ConnectionWatch(threading.Thread):
    """Polls pg_stat_activity for the fan-out's connections to one database; keeps the largest count."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.most = 0
        self.polls_seeing_one = 0
        self.started_polling = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.is_set():
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE application_name = %s AND datname = current_database()",
                    (QUEUE_APPLICATION_NAME,),
                ).fetchone()
                n = int(row[0]) if row else 0
                self.most = max(self.most, n)
                self.polls_seeing_one += n == 1
                self.started_polling.set()
                self.stop.wait(0.005)


def test_a_100k_fanout_holds_one_queue_connection(tmp_path: Path, queues_db: str) -> None:
    """100,000 entities go in on one queue-database connection: the most connections named
    scheduler:enqueue ever seen at once is 1, and the report says 1. `spill_after` is set below the cohort
    (the default, 250k, would keep every key in memory), so the keys spill after 50,000 to a local store,
    not to a second connection."""
    environ = {"APP_DATABASE_URL": queues_db, "QUEUE_DATABASE_URL": queues_db}
    fanout = load_fanout(tmp_path, SCHEDULE, environ, detail_limit=0, spill_after=50_000)
    watch = ConnectionWatch(queues_db)
    watch.start()
    assert watch.started_polling.wait(10)
    try:
        report = fire(fanout, "everyone", TICK).report
    finally:
        watch.stop.set()
        watch.join(10)

    assert (report.planned, report.accepted, report.dropped) == (ENTITIES, ENTITIES, 0)
    assert report.connections_used == 1
    assert watch.most == 1
    assert watch.polls_seeing_one > 0
    with psycopg.connect(queues_db) as conn:
        assert job_count(conn, "bulk") == ENTITIES
