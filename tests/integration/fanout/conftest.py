"""Fan-out end to end: real config files, a real queue database holding pg-boss's and procrastinate's
schemas (`queues_db`, cloned from the session template each library built), the real Fanout.

The app database and the queue database are the same clone unless a test says otherwise; the cohort is
still read on its own read-only connection, as in production.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from scheduler.backends.pgboss import PgBossBackend
from scheduler.config import load_config
from scheduler.fanout import Fanout, default_backends
from scheduler.types import BackendKind

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from scheduler.types import Accepted, Dropped, FanoutReport

HEADER = """\
version: 1
databases:
  app: { dsn_env: APP_DATABASE_URL }
  queue: { dsn_env: QUEUE_DATABASE_URL }
queues:
  insights: { name: generate-insight-post, backend: pgboss, database: queue, policy: stately }
  ui: { name: lane-ui, backend: pgboss, database: queue, policy: standard }
  batch: { name: lane-batch, backend: pgboss, database: queue, policy: standard }
  bulk: { name: bulk, backend: pgboss, database: queue, policy: standard }
  records: { name: records, backend: procrastinate, database: queue, task: interop.record }
lanes:
  work: { default: ui, routes: { batch: batch } }
  mixed: { default: insights, routes: { proc: records } }
"""
"""Databases, queues (all present in `queues_template`) and two lanes; tests append `schedules:`."""


def load_fanout(
    directory: Path,
    schedules: str,
    environ: dict[str, str],
    *,
    copy_threshold: int | None = None,
    **options: Any,
) -> Fanout:
    """Write HEADER + `schedules` to a file in `directory` and build a Fanout over it (`copy_threshold`:
    the pg-boss adapter's, e.g. 0 to send every chunk through the direct COPY)."""
    path = directory / "schedules.yaml"
    path.write_text(HEADER + schedules)
    backends = default_backends()
    if copy_threshold is not None:
        backends[BackendKind.PGBOSS] = PgBossBackend(copy_threshold=copy_threshold)
    return Fanout(load_config([path]), environ, backends, **options)


@pytest.fixture
def environ(queues_db: str) -> dict[str, str]:
    """APP_DATABASE_URL and QUEUE_DATABASE_URL both naming this test's clone."""
    return {"APP_DATABASE_URL": queues_db, "QUEUE_DATABASE_URL": queues_db}


@pytest.fixture
def db(queues_db: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to the clone, for the test's own reads and setup."""
    with psycopg.connect(queues_db, autocommit=True) as conn:
        yield conn


def outcomes(report: FanoutReport) -> dict[str, Accepted | Dropped]:
    """Every outcome of a report (detail_limit None) by entity key."""
    found: dict[str, Accepted | Dropped] = {}
    for totals in report.queues.values():
        every: list[Accepted | Dropped] = [*totals.accepted_sample, *totals.dropped_sample]
        for outcome in every:
            assert outcome.key not in found, f"entity {outcome.key} reported twice"
            found[outcome.key] = outcome
    assert len(found) == report.planned
    return found


def job_count(conn: psycopg.Connection[Any], queue: str | None = None) -> int:
    """Rows in pgboss.job (of one queue, or all)."""
    if queue is None:
        row = conn.execute("SELECT count(*) FROM pgboss.job").fetchone()
    else:
        row = conn.execute("SELECT count(*) FROM pgboss.job WHERE name = %s", (queue,)).fetchone()
    assert row is not None
    return int(row[0])
