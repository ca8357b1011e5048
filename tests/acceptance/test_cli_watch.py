"""`scheduler watch` through the installed CLI, in a subprocess, against a real database holding the app's
chat table, pg-boss's and procrastinate's schemas."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from tests.acceptance.cli import scheduler

if TYPE_CHECKING:
    from pathlib import Path

CONFIG = """\
version: 1
databases:
  app: { dsn_env: APP_DATABASE_URL }
  queue: { dsn_env: QUEUE_DATABASE_URL }
queues:
  ui: { name: lane-ui, backend: pgboss, policy: standard }
  batch: { name: lane-batch, backend: pgboss, policy: standard }
lanes:
  chat: { default: ui, routes: { scheduled_report: batch } }
watchers:
  chat-generating:
    stuck_after: 90s
    sql: >
      select id as key, source, json_build_object('messageId', id) as data from chat_message
      where status = 'GENERATING' and updated_at < %(now)s - %(stuck_after)s order by id
    lane: chat
    singleton_key: "chat-message:{key}"
"""


@pytest.fixture
def db(queues_db: str) -> str:
    """pg-boss, procrastinate and a chat_message table with m1 stuck (5 minutes) and m2 fresh; no ledger."""
    with psycopg.connect(queues_db) as conn:
        conn.execute(
            "CREATE TABLE chat_message (id text PRIMARY KEY, status text NOT NULL, source text, "
            "updated_at timestamptz NOT NULL)"
        )
        conn.execute(
            "INSERT INTO chat_message VALUES ('m1', 'GENERATING', NULL, now() - interval '5 minutes'), "
            "('m2', 'GENERATING', NULL, now())"
        )
    return queues_db


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "chat.yaml"
    path.write_text(CONFIG)
    return path


def watch(db: str, config: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """`scheduler watch chat-generating --json ARGS CONFIG`: (exit code, the JSON report)."""
    done = scheduler(
        "watch",
        "chat-generating",
        "--json",
        *args,
        str(config),
        cwd=config.parent,
        APP_DATABASE_URL=db,
        QUEUE_DATABASE_URL=db,
    )
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def counts(db: str) -> tuple[int, int | None]:
    """(pg-boss jobs, ledger reemit rows or None when the ledger does not exist)."""
    with psycopg.connect(db) as conn:
        jobs = conn.execute("SELECT count(*) FROM pgboss.job").fetchone()
        exists = conn.execute("SELECT to_regclass('scheduler.reemit') IS NOT NULL").fetchone()
        reemits = (
            conn.execute("SELECT count(*) FROM scheduler.reemit").fetchone() if exists == (True,) else None
        )
    assert jobs is not None
    return jobs[0], reemits[0] if reemits else None


def lane_ui_job_ids(db: str) -> list[str]:
    with psycopg.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT id::text FROM pgboss.job WHERE name = 'lane-ui'")]


def test_watch_reemits_the_stuck_message_and_names_its_job(db: str, config: Path) -> None:
    """Exit 0; the JSON report names m1 and the id of the one lane-ui job it created."""
    code, report = watch(db, config)
    assert (code, report["found"], report["queues"]["ui"]["reemitted"]) == (
        0,
        1,
        [{"key": "m1", "job_id": lane_ui_job_ids(db)[0]}],
    )


def test_second_watch_reports_already_queued_holding_the_first_job(db: str, config: Path) -> None:
    """A second run re-emits nothing and reports m1 already_queued, held by the first run's job."""
    watch(db, config)
    code, report = watch(db, config)
    assert (code, report["reemitted"], report["queues"]["ui"]["dropped"]) == (
        0,
        0,
        [
            {
                "key": "m1",
                "reason": "already_queued",
                "singleton_key": "chat-message:m1",
                "holder_id": lane_ui_job_ids(db)[0],
            }
        ],
    )


def test_dry_watch_predicts_without_writing_or_creating_the_ledger(db: str, config: Path) -> None:
    """--dry on a database without a ledger predicts m1 (no job id) and leaves no job and no ledger."""
    code, report = watch(db, config, "--dry")
    assert (code, report["dry"], report["queues"]["ui"]["reemitted"], counts(db)) == (
        0,
        True,
        [{"key": "m1", "job_id": ""}],
        (0, None),
    )


def test_dry_watch_after_a_real_one_changes_no_row_count(db: str, config: Path) -> None:
    """--dry after a real pass reports already_queued and leaves the job and ledger row counts as they were."""
    watch(db, config)
    before = counts(db)
    code, report = watch(db, config, "--dry")
    assert (code, report["dropped_by_reason"], before, counts(db)) == (
        0,
        {"already_queued": 1},
        (1, 1),
        (1, 1),
    )


def test_watch_help_says_dry_is_read_only(tmp_path: Path) -> None:
    """`watch --help` says --dry runs a READ ONLY transaction that is rolled back."""
    done = scheduler("watch", "--help", cwd=tmp_path)
    assert (
        done.returncode,
        "--dry predicts a watcher pass read-only: one READ ONLY transaction, rolled back;"
        in " ".join(done.stdout.split()),
    ) == (0, True)
