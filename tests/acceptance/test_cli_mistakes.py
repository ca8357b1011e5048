"""Ordinary mistakes, as a new user makes them, answered by every command in one line that names the fix:
no traceback, exit 1 (2 for a usage error)."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

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
  work: { name: work, backend: procrastinate, database: queue, task: demo.work }
  boss: { name: boss-work, backend: pgboss, database: queue }
schedules:
  nightly:
    cron: "0 2 * * *"
    cohort:
      sql: select id as key from generate_series(1, 3) as id where %(hour)s >= 0
    queue: work
    singleton_key: "n:{key}"
  boss-nightly:
    cron: "0 2 * * *"
    cohort:
      static: [{ key: a }]
    queue: boss
watchers:
  stuck:
    every: 30s
    stuck_after: 90s
    sql: select 'x' as key where %(stuck_after)s > interval '0'
    queue: work
"""

COMMANDS = {
    "fire": ["fire", "nightly", "--at", "2026-03-08T02:00:00Z"],
    "fire --dry": ["fire", "nightly", "--at", "2026-03-08T02:00:00Z", "--dry"],
    "dry-run": ["dry-run", "--hour", "2", "--date", "2026-03-08"],
    "watch": ["watch", "stuck"],
    "migrate": ["migrate"],
}


def _refused_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


MISTAKES = {
    "dsn unset": ({}, "QUEUE_DATABASE_URL"),
    "database missing": (
        {"dsn": "postgresql://root@127.0.0.1/sched_no_such_database"},
        "createdb",
    ),
    "host unreachable": ({"dsn": f"postgresql://root:s3cret@127.0.0.1:{_refused_port()}/x"}, "host and port"),
    "role missing": ({"dsn": "postgresql://sched_no_such_role@127.0.0.1/postgres"}, "CREATE ROLE"),
}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "schedules.yaml"
    path.write_text(CONFIG)
    return path


def _one_line_error(result_stderr: str, result_stdout: str) -> str:
    assert "Traceback" not in result_stderr + result_stdout
    lines = [line for line in result_stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result_stderr
    return lines[0]


# dry-run without a DSN is a feature: it lists the ticks and says which variable would show the cohort.
CASES = [(c, m) for m in MISTAKES for c in COMMANDS if (c, m) != ("dry-run", "dsn unset")]


@pytest.mark.parametrize(("command", "mistake"), CASES)
def test_a_database_mistake_is_one_line_with_the_fix(
    command: str, mistake: str, config: Path, tmp_path: Path
) -> None:
    """Each command, against each database mistake: exit 1, one line on stderr naming the fix, and never
    the password of the DSN."""
    settings, fix = MISTAKES[mistake]
    env = {"APP_DATABASE_URL": settings["dsn"], "QUEUE_DATABASE_URL": settings["dsn"]} if settings else {}
    result = scheduler(*COMMANDS[command], str(config), cwd=tmp_path, **env)
    assert result.returncode == 1, (result.stdout, result.stderr)
    line = _one_line_error(result.stderr, result.stdout)
    assert fix in line
    assert "s3cret" not in result.stderr + result.stdout


def test_a_queue_schema_that_is_missing_is_one_line(config: Path, tmp_path: Path, database: str) -> None:
    """Firing into pg-boss in a database where pg-boss never ran: one line saying so, exit 1."""
    result = scheduler(
        "fire",
        "boss-nightly",
        str(config),
        cwd=tmp_path,
        APP_DATABASE_URL=database,
        QUEUE_DATABASE_URL=database,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "pgboss" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["dry-run", "--hour", "x"], "'x' is not an hour; give a whole number 0-23"),
        (["dry-run", "--hour", "24"], "hour must be 0-23, got 24"),
        (["dry-run", "--hour", "1", "--date", "2026-13-01"], "'2026-13-01' is not a date; write YYYY-MM-DD"),
        (["fire", "nightly", "--at", "14:00"], "'14:00' is not an ISO 8601 instant"),
        (["fire"], "the following arguments are required: SCHEDULE"),
    ],
)
def test_usage_errors_say_what_to_write_in_the_user_s_words(
    args: list[str], expected: str, tmp_path: Path
) -> None:
    """argparse's messages name the argument and the form it takes, never an internal function, and a
    missing PATHS (optional) is not reported as required."""
    result = scheduler(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "_hour" not in result.stderr
    assert "fromisoformat" not in result.stderr
    assert "PATHS" not in result.stderr.splitlines()[-1]


def test_version(tmp_path: Path) -> None:
    """`scheduler --version` prints the installed version."""
    result = scheduler("--version", cwd=tmp_path)
    assert result.returncode == 0
    name, number = result.stdout.split()
    assert name == "scheduler"
    assert number[0].isdigit()
