"""`validate --check-db`'s SCH110 on a real PostgreSQL: the role cohort and watcher SQL runs as can write."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import psycopg
import pytest
from psycopg import sql

from scheduler.commands.checkdb import reader_role_findings
from scheduler.config import load_config
from scheduler.fanout import Fanout, default_backends

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

CONFIG = """\
version: 1
databases:
  app: { dsn_env: APP_DATABASE_URL }
  queue: { dsn_env: QUEUE_DATABASE_URL }
queues:
  q: { name: q, backend: pgboss }
schedules:
  a:
    cron: "0 * * * *"
    cohort: { sql: "select id as key from org" }
    queue: q
watchers:
  w:
    sql: select id as key from org
    queue: q
"""


@pytest.fixture
def roles(database: str) -> Iterator[tuple[str, str]]:
    """(reader, writer): two login roles on `database` (cluster-wide, so uniquely named and dropped after):
    the reader may only SELECT from `org`, the writer may also INSERT."""
    suffix = uuid.uuid4().hex[:8]
    reader, writer = f"sched_reader_{suffix}", f"sched_writer_{suffix}"
    with psycopg.connect(database, autocommit=True) as admin:
        admin.execute("CREATE TABLE org (id int PRIMARY KEY)")
        for role in (reader, writer):
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        admin.execute(sql.SQL("GRANT SELECT ON org TO {}").format(sql.Identifier(reader)))
        admin.execute(sql.SQL("GRANT SELECT, INSERT ON org TO {}").format(sql.Identifier(writer)))
    try:
        yield reader, writer
    finally:
        with psycopg.connect(database, autocommit=True) as admin:
            for role in (reader, writer):
                admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def findings(tmp_path: Path, database: str, user: str | None) -> list[tuple[str, str, str]]:
    path = tmp_path / "s.yaml"
    path.write_text(CONFIG)
    app = psycopg.conninfo.make_conninfo(database, user=user) if user else database
    env = {"APP_DATABASE_URL": app, "QUEUE_DATABASE_URL": database}
    fanout = Fanout(load_config([path]), env, default_backends())
    return [(f.code, f.severity.value, f.message) for f in reader_role_findings(fanout)]


def test_a_read_only_role_gives_no_warning(tmp_path: Path, database: str, roles: tuple[str, str]) -> None:
    """A role with SELECT only on the cohort's table is what the README recommends: no finding."""
    assert findings(tmp_path, database, roles[0]) == []


def test_a_role_that_can_insert_is_warned_about(
    tmp_path: Path, database: str, roles: tuple[str, str]
) -> None:
    """A role with INSERT on a table gets SCH110 at the database, naming the role, the table and the fix."""
    [(code, severity, message)] = findings(tmp_path, database, roles[1])
    assert (code, severity) == ("SCH110", "warning")
    assert message == (
        f"cohort and watcher SQL on database 'app' (schedule 'a' and 1 more) runs as role {roles[1]!r}, "
        "which can insert, update, delete or truncate 1 table(s) (public.org); "
        'give the sidecar a read-only role there (README, "Your own database")'
    )


def test_a_superuser_is_warned_about(tmp_path: Path, database: str) -> None:
    """The test server's admin is a superuser (it owns `org` too)."""
    with psycopg.connect(database, autocommit=True) as admin:
        admin.execute("CREATE TABLE org (id int PRIMARY KEY)")
    [(code, _, message)] = findings(tmp_path, database, None)
    assert code == "SCH110"
    assert "which is a superuser; can insert, update, delete or truncate 1 table(s) (public.org)" in message


def test_a_read_only_role_that_can_run_dblink_is_warned_about(
    tmp_path: Path, database: str, roles: tuple[str, str]
) -> None:
    """dblink's connections commit on their own, outside the rolled-back read: a role that may run it
    (PUBLIC may, by default) is warned about even with SELECT only."""
    with psycopg.connect(database, autocommit=True) as admin:
        admin.execute("CREATE EXTENSION dblink")
    [(code, _, message)] = findings(tmp_path, database, roles[0])
    assert code == "SCH110"
    assert message.endswith(
        "which can run dblink, whose connections commit on their own; "
        'give the sidecar a read-only role there (README, "Your own database")'
    )


def test_an_unreachable_app_database_is_a_warning_not_a_crash(tmp_path: Path, database: str) -> None:
    """A role that cannot log in: the role is not checked, and the finding says so."""
    [(code, severity, message)] = findings(tmp_path, database, f"no_such_role_{uuid.uuid4().hex[:8]}")
    assert (code, severity) == ("SCH110", "warning")
    assert message.startswith("cannot check the role cohort and watcher SQL on database 'app' (schedule 'a'")
