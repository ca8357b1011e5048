"""The structural facts behind the throughput (benchmarks/ measures the speed; this only counts): whatever
the cohort size, a fan-out uses one queue connection and, per chunk, one COPY straight into pg-boss's job
table (no INSERT), plus a fixed handful of small statements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import psycopg
from psycopg import sql

from scheduler.config import load_config
from scheduler.fanout import QUEUE_APPLICATION_NAME, Fanout, default_backends, fire
from tests.integration.fanout.conftest import HEADER, job_count

if TYPE_CHECKING:
    from pathlib import Path

TICK = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
CHUNK = 2500
"""Above the pg-boss adapter's copy threshold, so every chunk takes the COPY path."""
SCHEDULE = """\
schedules:
  everyone:
    cron: "0 * * * *"
    cohort:
      sql: select i as key, json_build_object('n', i) as data from generate_series(1, %(size)s) as i
    queue: bulk
    singleton_key: "n:{key}"
    stagger: { window: 60m, strategy: hash }
"""


class CountingConnection(psycopg.Connection[Any]):
    """A connection that keeps the text of every statement and COPY its cursors sent."""

    statements: list[str]


class CountingCursor(psycopg.Cursor[Any]):
    """A cursor that notes the text of every statement and COPY sent through it, on its connection."""

    def _note(self, query: Any) -> None:
        cast(CountingConnection, self.connection).statements.append(_text(self, query))

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        self._note(query)
        return super().execute(query, params, **kwargs)

    def copy(self, statement: Any, params: Any = None, **kwargs: Any) -> Any:
        self._note(statement)
        return super().copy(statement, params, **kwargs)


def _text(cur: psycopg.Cursor[Any], query: Any) -> str:
    if isinstance(query, sql.Composable):
        return query.as_string(cur)
    return query.decode() if isinstance(query, bytes) else str(query)


@dataclass(frozen=True)
class CountingFanout(Fanout):
    """A Fanout whose queue connections count their statements; keeps every connection it opened."""

    opened: list[CountingConnection] | None = None

    def connect_queue_db(self, name: str) -> psycopg.Connection[Any]:
        conn = CountingConnection.connect(
            self.dsn(self.queue_database(name)),
            application_name=QUEUE_APPLICATION_NAME,
            cursor_factory=CountingCursor,
        )
        conn.statements = []
        assert self.opened is not None
        self.opened.append(conn)
        return conn


def _fan_out(tmp_path: Path, queues_db: str, size: int) -> tuple[int, list[str]]:
    path = tmp_path / f"schedules-{size}.yaml"
    path.write_text(HEADER + SCHEDULE.replace("%(size)s", str(size)))
    environ = {"APP_DATABASE_URL": queues_db, "QUEUE_DATABASE_URL": queues_db}
    opened: list[CountingConnection] = []
    fanout = CountingFanout(
        load_config([path]), environ, default_backends(), chunk_size=CHUNK, detail_limit=0, opened=opened
    )
    report = fire(fanout, "everyone", TICK).report
    assert (report.planned, report.accepted, report.connections_used) == (size, size, 1)
    assert len(opened) == 1, "a fan-out opens exactly one queue connection"
    statements = opened[0].statements
    return size, statements


def _count(statements: list[str], start: str) -> int:
    return sum(" ".join(s.split()).startswith(start) for s in statements)


def test_statements_per_chunk_do_not_grow_with_the_cohort(tmp_path: Path, queues_db: str) -> None:
    """Cohorts of 5,000 and 25,000 (2 and 10 chunks): each chunk is one COPY into pgboss.job on the single
    queue connection (no slot is taken, so the staging fallback never runs), and the statements per extra
    chunk are the same small constant; nothing is sent per job."""
    runs = {}
    for size in (5_000, 25_000):
        with psycopg.connect(queues_db, autocommit=True) as db:
            db.execute("DELETE FROM pgboss.job WHERE name = 'bulk'")
        runs[size] = _fan_out(tmp_path, queues_db, size)[1]
        with psycopg.connect(queues_db) as db:
            assert job_count(db, "bulk") == size

    chunks = {size: -(-size // CHUNK) for size in runs}
    for size, statements in runs.items():
        assert _count(statements, 'COPY "pgboss".job ') == chunks[size]
        assert _count(statements, "COPY ") == chunks[size]
        assert _count(statements, "INSERT ") == 0
    small, large = runs[5_000], runs[25_000]
    extra_statements = len(large) - len(small)
    extra_chunks = chunks[25_000] - chunks[5_000]
    assert extra_statements % extra_chunks == 0
    per_chunk = extra_statements // extra_chunks
    assert per_chunk <= 6, f"{per_chunk} statements per chunk: {large[-per_chunk:]}"
    assert len(small) == len(large) - per_chunk * extra_chunks
