"""`scheduler migrate` and `scheduler status` through the CLI entry point, on a real PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import psycopg

from scheduler.cli import main
from scheduler.runtime.ledger import LATEST_VERSION, MANUAL_CLAIMS, FiredBy, Ledger

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

YAML = """\
version: 1
databases:
  queue: { dsn_env: QUEUE_URL }
queues:
  work: { name: work, backend: procrastinate, database: queue, task: demo.work }
schedules:
  hourly:
    cron: "0 * * * *"
    cohort: { database: queue, static: [{ key: a }] }
    queue: work
"""


def config(tmp_path: Path, queue_dsn: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("QUEUE_URL", queue_dsn)
    path = tmp_path / "s.yaml"
    path.write_text(YAML)
    return str(path)


def test_migrate_creates_then_reports_up_to_date(
    tmp_path: Path, queue_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`migrate` applies the steps once; a second run says the ledger is up to date."""
    path = config(tmp_path, queue_dsn, monkeypatch)
    assert main(["migrate", path]) == 0
    assert main(["migrate", path]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "queue: ledger scheduler migrated: 1 (ledger), 2 (reemit), 3 (reemit_kind), 4 (replica), 5 (tick_fired_by)",
        f"queue: ledger scheduler is up to date (version {LATEST_VERSION})",
    ]


def test_status_lists_recent_ticks_and_failures(
    tmp_path: Path, queue_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`status --json` shows each schedule's recent ticks newest first, with failures and the next fire time."""
    path = config(tmp_path, queue_dsn, monkeypatch)
    tick = datetime(2026, 3, 2, 10, tzinfo=UTC)
    later = datetime(2026, 3, 2, 11, tzinfo=UTC)
    earlier = datetime(2026, 3, 2, 9, tzinfo=UTC)
    with psycopg.connect(queue_dsn) as conn:
        ledger = Ledger()
        ledger.migrate(conn)
        with conn.transaction():
            ledger.claim(conn, "hourly", tick, "r1", tick)
        ledger.fail(conn, "hourly", later, reason="boom", replica="r2", started_at=later, now=later)
        with conn.transaction():
            ledger.claim(conn, "hourly", earlier, "me", tick, fired_by=FiredBy.MANUAL, over=MANUAL_CLAIMS)
    assert main(["status", "--json", path]) == 0
    doc = json.loads(capsys.readouterr().out)["hourly"]
    assert [(r["tick"], r["outcome"], r["fired_by"], r["reason"]) for r in doc["recent"]] == [
        (later.isoformat(), "failed", "scheduled", "boom"),
        (tick.isoformat(), "done", "scheduled", None),
        (earlier.isoformat(), "done", "manual", None),
    ]
    assert doc["failed"] == 1
    assert doc["next_fire"].endswith(":00:00+00:00")
    assert main(["status", path]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].split() == [
        "TICK",
        "OUTCOME",
        "BY",
        "ACCEPTED",
        "DROPPED",
        "ATTEMPTS",
        "REPLICA",
        "REASON",
    ]
    assert table[4].split() == [earlier.isoformat(), "done", "manual", "0", "0", "1", "me"]


def test_status_without_ledger_says_to_migrate(
    tmp_path: Path, queue_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`status` before any migration exits 1 and says to run `scheduler migrate`."""
    path = config(tmp_path, queue_dsn, monkeypatch)
    assert main(["status", path]) == 1
    assert "error: no ledger in schema 'scheduler': run `scheduler migrate`" in capsys.readouterr().out
