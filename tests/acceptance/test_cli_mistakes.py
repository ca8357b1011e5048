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


PERCENT = """\
version: 1
databases:
  app: { dsn_env: APP_DATABASE_URL }
  queue: { dsn_env: QUEUE_DATABASE_URL }
queues:
  work: { name: work, backend: procrastinate, database: queue, task: demo.work }
schedules:
  every-minute:
    cron: "* * * * *"
    cohort:
      sql: select id as key from (values ('ab'), ('b')) as t(id) where id like 'a%'
    queue: work
    singleton_key: "m:{key}"
watchers:
  stuck:
    sql: select 'x' as key where 100 % 7 = 2 and %(stuck_after)s > interval '0'
    queue: work
"""
PERCENT_FIX = "write a literal `%` (LIKE 'a%', the modulo operator) as `%%`"


@pytest.fixture
def percent(tmp_path: Path) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(PERCENT)
    return path


def test_validate_finds_a_bare_percent_without_a_database(percent: Path, tmp_path: Path) -> None:
    """`LIKE 'a%'` in a cohort and `100 % 7` in a watcher: psycopg would refuse both at every run. `validate`
    (no database, no DSN) reports each at its `sql:` with the place in the query and the fix, exit 1."""
    result = scheduler("validate", "s.yaml", cwd=tmp_path)

    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "s.yaml:11:12: SCH009 error: schedule 'every-minute': its SQL would fail at every run: at line 1, "
        f"column 71 of the query, `%'` is not a placeholder: parameters are bound into this query, so psycopg "
        f"reads every `%` (in string literals and comments too); {PERCENT_FIX}",
        "s.yaml:16:10: SCH009 error: watcher 'stuck': its SQL would fail at every run: at line 1, column 29 of "
        "the query, `% ` is not a placeholder: parameters are bound into this query, so psycopg reads every "
        f"`%` (in string literals and comments too); {PERCENT_FIX}",
    ]


def test_dry_run_reports_sql_that_cannot_run_once_not_per_tick(
    percent: Path, tmp_path: Path, queues_db: str
) -> None:
    """A `* * * * *` schedule whose cohort SQL cannot run: its 60 ticks of the hour are one line, the problem
    is one SCH009 finding (no SCH200 per tick), exit 1."""
    result = scheduler(
        "dry-run",
        "--hour",
        "3",
        "--date",
        "2026-03-02",
        "s.yaml",
        cwd=tmp_path,
        APP_DATABASE_URL=queues_db,
        QUEUE_DATABASE_URL=queues_db,
    )

    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert (
        "  60 ticks 2026-03-02T03:00:00+00:00 … 2026-03-02T03:59:00+00:00: cohort not evaluated: its SQL "
        "cannot run (SCH009 below)"
    ) in lines
    assert [line.split(": ")[1] for line in lines if " SCH" in line] == ["SCH009 error", "SCH009 error"]
    assert sum(PERCENT_FIX in line for line in lines) == 2  # the cohort's and the watcher's, once each


def test_dry_run_reports_a_failing_cohort_once_per_schedule(tmp_path: Path, queues_db: str) -> None:
    """A cohort that fails on the database (a missing table) at every tick of a `* * * * *` hour: one SCH200
    finding and the error under the first tick; the other 59 ticks are one line, not evaluated."""
    (tmp_path / "s.yaml").write_text(
        PERCENT.replace("(values ('ab'), ('b')) as t(id) where id like 'a%'", "no_such_table")
    )
    result = scheduler(
        "dry-run",
        "--hour",
        "3",
        "--date",
        "2026-03-02",
        "--schedule",
        "every-minute",
        "s.yaml",
        cwd=tmp_path,
        APP_DATABASE_URL=queues_db,
        QUEUE_DATABASE_URL=queues_db,
    )

    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert sum('relation "no_such_table" does not exist' in line for line in lines) == 2
    assert sum(" SCH200 " in line for line in lines) == 1
    assert (
        "  59 ticks 2026-03-02T03:01:00+00:00 … 2026-03-02T03:59:00+00:00: cohort not evaluated: the cohort "
        "failed at 2026-03-02T03:00:00+00:00 (SCH200 below)"
    ) in lines


@pytest.mark.parametrize(
    "command", [["fire", "every-minute"], ["fire", "every-minute", "--dry"], ["watch", "stuck"]]
)
def test_fire_and_watch_say_in_one_line_how_to_write_the_percent(
    command: list[str], percent: Path, tmp_path: Path, queues_db: str
) -> None:
    """`fire`, `fire --dry` and `watch` on SQL psycopg refuses: one line naming the schedule or watcher, the
    place in the query and the fix, exit 1, before any connection to the app database."""
    result = scheduler(
        *command,
        "--at" if command[0] == "fire" else "--now",
        "2026-03-02T03:00:00Z",
        "s.yaml",
        cwd=tmp_path,
        APP_DATABASE_URL="postgresql://root@127.0.0.1/sched_no_such_database",
        QUEUE_DATABASE_URL=queues_db,
    )

    assert result.returncode == 1, result.stdout + result.stderr
    line = _one_line_error(result.stderr, result.stdout)
    assert PERCENT_FIX in line
    assert "cohort query cannot run: at line 1, column" in line
    assert "sched_no_such_database" not in line


def test_run_with_a_dsn_unset_is_one_line_naming_the_variable(config: Path, tmp_path: Path) -> None:
    """`scheduler run` without the DSN variables its files name: one line saying which variable to set and
    how, exit 1, before anything is loaded into a database or served."""
    result = scheduler("run", str(config), cwd=tmp_path, QUEUE_DATABASE_URL="postgresql://root@127.0.0.1/x")

    assert result.returncode == 1
    line = _one_line_error(result.stderr, result.stdout)
    assert "run_aborted" in line
    assert "APP_DATABASE_URL, which is not set or empty; set it, e.g. APP_DATABASE_URL=postgresql://" in line


def test_run_with_the_health_port_taken_is_one_line_naming_the_fix(config: Path, tmp_path: Path) -> None:
    """`scheduler run` whose health port another process listens on: one line naming SCHEDULER_HEALTH_PORT,
    exit 1, before the ledger is touched (the DSNs point at a database that does not exist)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = scheduler(
            "run",
            str(config),
            cwd=tmp_path,
            APP_DATABASE_URL="postgresql://root@127.0.0.1/sched_no_such_database",
            QUEUE_DATABASE_URL="postgresql://root@127.0.0.1/sched_no_such_database",
            SCHEDULER_HEALTH_HOST="127.0.0.1",
            SCHEDULER_HEALTH_PORT=str(port),
        )

    assert result.returncode == 1
    line = _one_line_error(result.stderr, result.stdout)
    assert "run_aborted" in line
    assert "the health port is already in use by another process" in line
    assert "set SCHEDULER_HEALTH_PORT to a free port" in line
