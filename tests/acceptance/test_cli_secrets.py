"""No command prints a DSN's password or a secret of its environment, on stdout (tables, --json) or stderr
(error lines, tracebacks), even when libpq's own message quotes the DSN it could not parse."""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg.conninfo
import pytest

from tests.acceptance.cli import scheduler

if TYPE_CHECKING:
    from pathlib import Path

PASSWORD = "S3cr3tPa55"
TOKEN = "tok-9f8e7d6c5b4a3210"
CONFIG = """\
version: 1
databases:
  app: { dsn_env: APP_DATABASE_URL }
  queue: { dsn_env: QUEUE_DATABASE_URL }
queues:
  work: { name: work, backend: procrastinate, database: queue, task: demo.work }
schedules:
  nightly:
    cron: "0 2 * * *"
    cohort:
      sql: select id as key from generate_series(1, 3) as id where %(hour)s >= 0
    queue: work
watchers:
  stuck:
    sql: select 'x' as key where %(stuck_after)s > interval '0'
    queue: work
"""
AT = "2026-03-08T02:00:00Z"
COMMANDS = {
    "status": ["status"],
    "status --json": ["status", "--json"],
    "fire --json": ["fire", "nightly", "--at", AT, "--json"],
    "fire --dry": ["fire", "nightly", "--at", AT, "--dry"],
    "dry-run --json": ["dry-run", "--hour", "2", "--date", "2026-03-08", "--json"],
    "watch --json": ["watch", "stuck", "--json"],
    "migrate": ["migrate"],
}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "schedules.yaml"
    path.write_text(CONFIG)
    return path


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_dsn_libpq_cannot_parse_is_not_printed(command: str, config: Path, tmp_path: Path) -> None:
    """`postgresql//` (a colon missing): libpq's error repeats the whole DSN, password included; what the
    command prints says where and why, with `***` for the DSN."""
    broken = f"postgresql//root:{PASSWORD}@127.0.0.1/app"
    result = scheduler(
        *COMMANDS[command],
        str(config),
        cwd=tmp_path,
        APP_DATABASE_URL=broken,
        QUEUE_DATABASE_URL=broken,
        API_TOKEN=TOKEN,
    )
    printed = result.stdout + result.stderr
    assert result.returncode == 1, printed
    assert PASSWORD not in printed
    assert "connection info string" in printed
    assert "***" in printed


def test_status_and_fire_json_hold_no_password_when_they_work(
    config: Path, tmp_path: Path, queue_dsn: str
) -> None:
    """A working DSN with a password (trust authentication ignores it): the reports of `migrate`, `fire
    --json`, `status --json` and `status` hold every figure, and neither the password nor the token."""
    info = psycopg.conninfo.conninfo_to_dict(queue_dsn)
    dsn = f"postgresql://root:{PASSWORD}@{info['host']}:{info.get('port') or 5432}/{info['dbname']}"
    env = {"APP_DATABASE_URL": dsn, "QUEUE_DATABASE_URL": dsn, "API_TOKEN": TOKEN}
    outputs = []
    for args in (["migrate"], COMMANDS["fire --json"], COMMANDS["status --json"], COMMANDS["status"]):
        result = scheduler(*args, str(config), cwd=tmp_path, **env)
        assert result.returncode == 0, result.stdout + result.stderr
        outputs.append(result.stdout + result.stderr)
    assert '"accepted": 3' in outputs[1]
    assert '"error": null' in outputs[2]  # the ledger was read (fire itself records no tick)
    for printed in outputs:
        assert PASSWORD not in printed
        assert TOKEN not in printed
