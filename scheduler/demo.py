"""The embedded quickstart behind `scheduler demo`: a private PostgreSQL from the `pgserver` wheel, a demo
app table, procrastinate's own queue schema, and a schedule config written next to the server.

The config mirrors the three cases of `schedules/` on procrastinate queues (pg-boss needs Node to create
its schema; procrastinate's ships in its Python package): the hourly insight digest as it shipped (one
queueing lock for every organization: the seed incident) and fixed (one lock per organization), and a
billing rollup over 200 accounts in one bulk statement on one connection.

Layout of the data directory: `pgdata/` (the server's files) and `schedules/demo.yaml` (the config).
"""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer

DEFAULT_DATA_DIR = Path(".scheduler-demo")
DATABASE = "demo"
HOUR = 14
"""The hour the demo previews and fires: 13 organizations have their digest then (as in the seed incident)."""
INSTALL_HINT = "pip install 'pg-fanout-scheduler[demo]'  (from a clone: pip install -e '.[demo]')"

APP_SQL = """\
-- The demo's app tables. 312 organizations, 13 per digest hour; 200 billing accounts.
CREATE TABLE organization (
    id text PRIMARY KEY,
    name text NOT NULL,
    digest_hour int NOT NULL CHECK (digest_hour BETWEEN 0 AND 23)
);
INSERT INTO organization (id, name, digest_hour)
SELECT 'org-' || lpad(i::text, 4, '0'), 'Organization ' || i, i % 24 FROM generate_series(1, 312) AS i;

CREATE TABLE account (
    id text PRIMARY KEY,
    plan text NOT NULL
);
INSERT INTO account (id, plan)
SELECT 'acct-' || lpad(i::text, 4, '0'), CASE WHEN i % 4 = 0 THEN 'pro' ELSE 'team' END
FROM generate_series(1, 200) AS i;
"""

DEMO_YAML = """\
# Written by `scheduler demo`: the three cases of the examples in schedules/, on procrastinate queues.
# DSNs come from the environment, as in any config: the demo sets both to its embedded server.
version: 1
databases:
  app: { dsn_env: APP_DATABASE_URL }
  queue: { dsn_env: QUEUE_DATABASE_URL }
queues:
  insights: { name: insights, backend: procrastinate, database: queue, task: insights.digest }
  rollups: { name: billing, backend: procrastinate, database: queue, task: billing.rollup }

schedules:
  # Case 1 as it shipped (the seed incident): every organization's job gets the same queueing lock,
  # and procrastinate keeps one waiting job per lock, so all but one job of every tick are dropped.
  insight-digest-unkeyed:
    cron: "0 * * * *"
    timezone: UTC
    cohort:
      sql: >
        select id as key, json_build_object('organizationId', id) as data
        from organization where digest_hour = %(hour)s order by id
    queue: insights
    singleton_key: "digest"

  # Case 1 fixed: one lock per organization, so every organization gets its job.
  insight-digest:
    cron: "0 * * * *"
    timezone: UTC
    cohort:
      sql: >
        select id as key, json_build_object('organizationId', id) as data
        from organization where digest_hour = %(hour)s order by id
    queue: insights
    singleton_key: "insight:{key}"
    stagger: { window: 60m, strategy: hash }

  # Case 3: a daily rollup per account, 200 jobs in one bulk statement on one queue connection.
  billing-rollup:
    cron: "30 14 * * *"
    timezone: UTC
    cohort:
      sql: >
        select id as key, json_build_object('accountId', id, 'plan', plan) as data
        from account order by id
    queue: rollups
    singleton_key: "rollup:{key}"
    stagger: { window: 10m, strategy: spread }
"""

INCIDENT = "insight-digest-unkeyed"
FIXED = "insight-digest"
ROLLUP = "billing-rollup"


class DemoUnavailable(Exception):
    """The demo extras (pgserver, procrastinate) are not installed."""


class DemoServer:
    """A running embedded PostgreSQL and the URI of its demo database."""

    def __init__(self, server: PostgresServer, pgdata: Path, uri: str) -> None:
        self.server = server
        self.pgdata = pgdata
        self.uri = uri

    def stop(self) -> None:
        """Stop the server (fast shutdown); its files stay until `remove_demo_files`."""
        self.server.cleanup()
        if (self.pgdata / "postmaster.pid").exists():
            # pgserver stops only when this is the last process it saw use the server; a handle left by a
            # killed earlier run would keep it up, so stop it directly.
            from pgserver._commands import POSTGRES_BIN_PATH

            subprocess.run(
                [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.pgdata), "-w", "-m", "fast", "stop"],
                user=self.server.system_user,
                capture_output=True,
                check=False,
                timeout=30,
            )


def require_extras() -> None:
    """Raise `DemoUnavailable` naming the install command when pgserver or procrastinate is missing."""
    missing = []
    for module in ("pgserver", "procrastinate"):
        try:
            with warnings.catch_warnings():
                # platformdirs warns when XDG_RUNTIME_DIR is unset; pgserver then uses /tmp, which is fine
                warnings.simplefilter("ignore")
                __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise DemoUnavailable(
            f"`scheduler demo` needs {' and '.join(missing)}, which the demo extra installs: {INSTALL_HINT}"
        )


def start_server(data_dir: Path, *, keep: bool) -> DemoServer:
    """Start (or reuse) the server in `data_dir/pgdata` and give it a fresh, empty `demo` database.

    As root, pgserver runs PostgreSQL as a system user `pgserver` it creates (initdb refuses root) and
    opens the data directory's parent directories to it. `keep` leaves the server running at exit.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver.postgres_server import get_server

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = (data_dir / "pgdata").resolve()
    server = get_server(pgdata, cleanup_mode=None if keep else "stop")
    admin: str = server.get_uri()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    return DemoServer(server=server, pgdata=pgdata, uri=server.get_uri(DATABASE))


def create_app_tables(uri: str) -> None:
    with psycopg.connect(uri) as conn:
        conn.execute(APP_SQL)


def apply_procrastinate_schema(uri: str) -> None:
    """procrastinate's own schema, applied by procrastinate (what `procrastinate schema --apply` does)."""
    import procrastinate

    app = procrastinate.App(connector=procrastinate.SyncPsycopgConnector(conninfo=uri))
    with app.open():
        app.schema_manager.apply_schema()


def write_config(data_dir: Path) -> Path:
    """Write the demo config to `data_dir/schedules/demo.yaml`; return the directory."""
    directory = data_dir / "schedules"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "demo.yaml").write_text(DEMO_YAML)
    return directory


def queue_counts(uri: str) -> list[tuple[str, str, int]]:
    """(queue, status, jobs) of every procrastinate job in the demo database."""
    with psycopg.connect(uri) as conn:
        rows = conn.execute(
            "SELECT queue_name, status::text, count(*) FROM procrastinate_jobs GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
    return [(r[0], r[1], int(r[2])) for r in rows]


def remove_demo_files(data_dir: Path) -> None:
    """Remove what the demo wrote in `data_dir`, and `data_dir` itself when nothing else is left."""
    shutil.rmtree(data_dir / "pgdata", ignore_errors=True)
    shutil.rmtree(data_dir / "schedules", ignore_errors=True)
    if data_dir.is_dir() and not any(data_dir.iterdir()):
        data_dir.rmdir()
