"""One pass of the service, in process, on a real PostgreSQL and the real procrastinate schema."""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import psycopg

from scheduler.observe.log import configure
from scheduler.observe.metrics import Metrics
from scheduler.runtime.service import Service
from scheduler.runtime.settings import Clock, Settings

if TYPE_CHECKING:
    from pathlib import Path

YAML = """\
version: 1
databases:
  queue: {{ dsn_env: QUEUE_URL }}
queues:
  work: {{ name: work, backend: procrastinate, database: queue, task: demo.work }}
schedules:
  hourly:
    cron: "0 * * * *"
    cohort:
      database: queue
      {cohort}
    queue: work
    catch_up: {{ window: 3h, policy: all }}
"""
STATIC = "static: [{ key: a }, { key: b }]"
BROKEN_SQL = 'sql: "select 1/0 as key"'


class FixedClock(Clock):
    """A clock that reads `at` (tests move it)."""

    def __init__(self, at: datetime) -> None:
        super().__init__()
        self.at = at

    def now(self) -> datetime:
        return self.at


def service(tmp_path: Path, queue_dsn: str, cohort: str, clock: Clock) -> tuple[Service, io.StringIO]:
    path = tmp_path / "s.yaml"
    path.write_text(YAML.format(cohort=cohort))
    out = io.StringIO()
    svc = Service(
        Settings(replica_id="r1", retry_backoff=timedelta(seconds=10)),
        [path],
        logger=configure("json", logging.DEBUG, out),
        metrics=Metrics(send_to_sentry=False),
        clock=clock,
        environ={"QUEUE_URL": queue_dsn},
    )
    assert svc.load()
    return svc, out


def ledger_rows(dsn: str) -> list[tuple[datetime, str, int, int]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT tick, outcome, attempts, accepted FROM scheduler.tick ORDER BY tick"
        ).fetchall()


def job_count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM procrastinate_jobs").fetchone()
    assert row is not None
    return int(row[0])


T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_pass_fans_out_missed_ticks_once(tmp_path: Path, queue_dsn: str) -> None:
    """Passes after a gap fan out each missed tick once; a repeated pass adds nothing."""
    clock = FixedClock(T0 - timedelta(minutes=5))
    svc, _ = service(tmp_path, queue_dsn, STATIC, clock)
    svc.run_pass("hourly")  # first sighting: no past ticks
    clock.at = T0 + timedelta(hours=2, minutes=1)
    svc.run_pass("hourly")
    svc.run_pass("hourly")
    assert ledger_rows(queue_dsn) == [(T0 + timedelta(hours=h), "done", 1, 2) for h in range(3)]
    assert job_count(queue_dsn) == 6


def test_cohort_error_marks_tick_failed_and_enqueues_nothing(tmp_path: Path, queue_dsn: str) -> None:
    """A cohort query error rolls the tick back, records it failed with the reason, and logs it."""
    clock = FixedClock(T0 - timedelta(minutes=5))
    svc, out = service(tmp_path, queue_dsn, BROKEN_SQL, clock)
    svc.run_pass("hourly")
    clock.at = T0 + timedelta(seconds=1)
    svc.run_pass("hourly")
    assert ledger_rows(queue_dsn) == [(T0, "failed", 1, 0)]
    assert job_count(queue_dsn) == 0
    assert '"event":"tick_failed"' in out.getvalue()
    assert "division by zero" in out.getvalue()


def test_failed_tick_is_retried_after_backoff(tmp_path: Path, queue_dsn: str) -> None:
    """Once the cohort is fixed and the backoff has passed, the failed tick is fanned out (attempt 2)."""
    clock = FixedClock(T0 - timedelta(minutes=5))
    broken, _ = service(tmp_path, queue_dsn, BROKEN_SQL, clock)
    broken.run_pass("hourly")
    clock.at = T0 + timedelta(seconds=1)
    broken.run_pass("hourly")
    fixed, _ = service(tmp_path, queue_dsn, STATIC, clock)
    clock.at = T0 + timedelta(seconds=5)
    fixed.run_pass("hourly")
    assert ledger_rows(queue_dsn) == [(T0, "failed", 1, 0)]
    clock.at = T0 + timedelta(seconds=12)
    fixed.run_pass("hourly")
    assert ledger_rows(queue_dsn) == [(T0, "done", 2, 2)]
    assert job_count(queue_dsn) == 2


def test_readiness_reports_migrated_ledger(tmp_path: Path, queue_dsn: str) -> None:
    """/readyz's check is ready once the config is loaded and the ledger migrated."""
    svc, _ = service(tmp_path, queue_dsn, STATIC, FixedClock(T0))
    assert svc.readiness(svc.database_checks()) == (True, {"config": "loaded", "queue": "ok"})


def test_invalid_reload_keeps_running_config(tmp_path: Path, queue_dsn: str) -> None:
    """A broken file on reload is logged with file:line and the old configuration stays."""
    svc, out = service(tmp_path, queue_dsn, STATIC, FixedClock(T0))
    before = svc.state
    (tmp_path / "s.yaml").write_text(YAML.format(cohort=STATIC).replace('"0 * * * *"', '"0 * * *"'))
    assert not svc.load()
    assert svc.state is before
    assert "s.yaml:8:11: CFG005 error" in out.getvalue()


def test_readiness_checks_the_app_database_of_sql_cohorts(tmp_path: Path, queue_dsn: str) -> None:
    """/readyz is unready while an app database that a cohort query reads cannot be reached."""
    text = YAML.format(cohort='sql: "select 1 as key"').replace(
        "      database: queue\n", "      database: app\n"
    )
    path = tmp_path / "s.yaml"
    path.write_text(text.replace("databases:\n", "databases:\n  app: { dsn_env: APP_URL }\n", 1))
    missing = (
        queue_dsn.replace("dbname=", "dbname=no_such_db_")
        if "dbname=" in queue_dsn
        else queue_dsn + "_missing"
    )
    svc = Service(
        Settings(replica_id="r1"),
        [path],
        logger=configure("json", logging.DEBUG, io.StringIO()),
        metrics=Metrics(send_to_sentry=False),
        clock=FixedClock(T0),
        environ={"QUEUE_URL": queue_dsn, "APP_URL": missing},
    )
    assert svc.load()
    ready, checks = svc.readiness(svc.database_checks())
    assert (ready, checks["queue"]) == (False, "ok")
    assert checks["app"].startswith("unreachable: ")
    assert "no_such_db_" in checks["app"] or "_missing" in checks["app"]
