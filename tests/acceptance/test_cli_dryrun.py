"""`scheduler dry-run` on the example schedules against real databases: the exact cohort, nothing written."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import psycopg

from tests.acceptance.cli import REPO_SCHEDULES, scheduler

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import MakeDatabase

ORGANIZATIONS = 10_000
WINDOW_SECONDS = 3600
"""The insight digest's stagger window (schedules/insights.yaml: 60m)."""
APP_TABLE = f"""
CREATE TABLE organization (id text PRIMARY KEY, name text NOT NULL, digest_hour int NOT NULL);
INSERT INTO organization (id, name, digest_hour)
SELECT 'org-' || lpad(i::text, 5, '0'), 'Organization ' || i, i % 24 FROM generate_series(1, {ORGANIZATIONS}) AS i;
"""


def counts(dsn: str) -> tuple[int, int]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM pgboss.job), (SELECT count(*) FROM pgboss.queue)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_dry_run_at_14_lists_exactly_the_organizations_due_at_14(
    tmp_path: Path, make_database: MakeDatabase, queues_db: str
) -> None:
    """Of 10,000 organizations, the preview of 14:00 holds exactly those with digest_hour 14, each offset
    inside the 60-minute window; exit 0, and the queue database is untouched."""
    app_dsn = make_database()
    with psycopg.connect(app_dsn, autocommit=True) as conn:
        conn.execute(APP_TABLE)
        due = {r[0] for r in conn.execute("SELECT id FROM organization WHERE digest_hour = 14").fetchall()}
    before = counts(queues_db)

    done = scheduler(
        "dry-run",
        "--hour",
        "14",
        "--date",
        "2026-11-24",
        "--json",
        "--limit",
        str(ORGANIZATIONS),
        "--schedule",
        "insight-digest",
        str(REPO_SCHEDULES),
        cwd=tmp_path,
        APP_DATABASE_URL=app_dsn,
        QUEUE_DATABASE_URL=queues_db,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(done.stdout)
    [entry] = doc["schedules"]
    [tick] = entry["ticks"]
    assert tick["tick"] == "2026-11-24T14:00:00+00:00"
    assert tick["cohort_size"] == len(due) == 417
    jobs = tick["jobs"]
    assert {j["key"] for j in jobs} == due
    assert len(jobs) == len(due)
    assert all(0 <= j["offset_seconds"] < WINDOW_SECONDS for j in jobs)
    assert {j["singleton_key"] for j in jobs} == {f"insight:{k}" for k in due}
    assert tick["queues"]["insights"]["planned"] == len(due)
    assert tick["queues"]["insights"]["accepted"] == len(due)
    assert tick["queues"]["insights"]["dropped"] == 0
    assert [f["severity"] for f in doc["findings"] if f["severity"] == "error"] == []
    assert counts(queues_db) == before


BROKEN_COHORT = """\
version: 1
databases:
  app: { dsn_env: APP_DATABASE_URL }
  queue: { dsn_env: QUEUE_DATABASE_URL }
queues:
  insights: { name: generate-insight-post, backend: pgboss, policy: stately }
schedules:
  digest:
    cron: "0 * * * *"
    cohort:
      sql: select id as key from no_such_table where digest_hour = %(hour)s
    queue: insights
    singleton_key: "insight:{key}"
"""


def test_a_failing_cohort_query_shows_the_sql_error_and_the_schedule(tmp_path: Path, queues_db: str) -> None:
    """A cohort selecting from a missing table: the database's message and the schedule's file:line are
    shown, exit 1, no traceback."""
    (tmp_path / "s.yaml").write_text(BROKEN_COHORT)

    done = scheduler(
        "dry-run",
        "--hour",
        "14",
        "--date",
        "2026-11-24",
        "s.yaml",
        cwd=tmp_path,
        APP_DATABASE_URL=queues_db,
        QUEUE_DATABASE_URL=queues_db,
    )

    assert done.returncode == 1
    assert 'relation "no_such_table" does not exist' in done.stdout
    [finding] = [line for line in done.stdout.splitlines() if " SCH200 " in line]
    assert finding.startswith(
        "s.yaml:8:3: SCH200 error: s.yaml:11:12: schedule 'digest': cohort query failed: "
    )
    assert 'relation "no_such_table" does not exist' in finding
    assert "Traceback" not in done.stdout + done.stderr
