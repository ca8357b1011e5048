"""The embedded quickstart behind `scheduler demo`: a private PostgreSQL from the `pgserver` wheel, a demo
app table, procrastinate's own queue schema, and a schedule config written next to the server.

The config mirrors the three cases of `schedules/` on procrastinate queues (pg-boss needs Node to create
its schema; procrastinate's ships in its Python package): the hourly insight digest as it shipped (one
queueing lock for every organization: the seed incident) and fixed (one lock per organization), and a
billing rollup over 200 accounts in one bulk statement on one connection.

Layout of the data directory: `scheduler-demo.txt` (the mark that the directory is the demo's), `pgdata/` (the
server's files) and `schedules/demo.yaml` (the config). An interrupted earlier run (killed, Ctrl-C, a reboot)
can leave `pgdata/` half-initialized, with a stale `postmaster.pid`, or with its server still running:
`recover` reuses a server that still answers and otherwise stops what is left of it and starts afresh. It
only ever touches a directory the demo marked (or one laid out exactly as an earlier version left it).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

if TYPE_CHECKING:
    from collections.abc import Iterator

    import psutil
    from pgserver.postgres_server import PostgresServer

DEFAULT_DATA_DIR = Path(".scheduler-demo")
DATABASE = "demo"
HOUR = 14
"""The hour the demo previews and fires: 13 organizations have their digest then (as in the seed incident)."""
INSTALL_HINT = "pip install 'pg-fanout-scheduler[demo]'  (from a clone: pip install -e '.[demo]')"
MARKER = "scheduler-demo.txt"
MARKER_TEXT = """\
Written by `scheduler demo`: its embedded PostgreSQL (pgdata/) and config (schedules/demo.yaml).
`scheduler demo --data-dir THIS_DIRECTORY` recovers it after an interrupted run, then removes it.
"""
LAYOUT = frozenset({MARKER, "pgdata", "schedules"})
"""Everything the demo writes in its data directory."""
HANDLES = ".handle_pids.json"
"""pgserver's list (in pgdata) of the processes using the server; it stops the server when the last one exits."""
STOP_SECONDS = 10
PROCESS_NAMES = frozenset({"postgres", "initdb", "pg_ctl"})

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


class DemoDirectoryError(Exception):
    """The data directory cannot be used; the message is one line naming the fix."""


class DemoStartFailed(Exception):
    """The embedded PostgreSQL did not start; the message is one line naming the fix."""


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


def claim_data_dir(data_dir: Path) -> None:
    """Make sure `data_dir` is the demo's own, then mark it so (before anything else is written there).

    The demo's own: missing, empty, already marked, or laid out exactly as an earlier version of the demo
    left it. Anything else raises `DemoDirectoryError`: the demo never writes into nor removes from it.
    """
    if data_dir.exists() and not data_dir.is_dir():
        raise DemoDirectoryError(
            f"{data_dir} is a file, not a demo directory: pass --data-dir with a new or empty directory"
        )
    if data_dir.is_dir():
        entries = {p.name for p in data_dir.iterdir()}
        if entries and MARKER not in entries and not _earlier_layout(data_dir, entries):
            foreign = sorted(entries - LAYOUT) or sorted(entries)
            shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
            raise DemoDirectoryError(
                f"{data_dir} is not a scheduler demo directory (it holds {shown}, which the demo did not "
                f"write): pass --data-dir with a new or empty directory (default ./{DEFAULT_DATA_DIR})"
            )
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / MARKER).write_text(MARKER_TEXT, encoding="utf-8")


def _earlier_layout(data_dir: Path, entries: set[str]) -> bool:
    """What a demo without the mark left: only `pgdata/` (pgserver's, or in the default directory) and
    `schedules/` with only demo.yaml."""
    if not entries <= {"pgdata", "schedules"}:
        return False
    schedules = data_dir / "schedules"
    if schedules.exists() and (
        not schedules.is_dir() or {p.name for p in schedules.iterdir()} - {"demo.yaml"}
    ):
        return False
    pgdata = data_dir / "pgdata"
    if not pgdata.exists():
        return True
    return pgdata.is_dir() and (
        data_dir.name == DEFAULT_DATA_DIR.name or (pgdata / HANDLES).is_file() or not any(pgdata.iterdir())
    )


def recover(data_dir: Path) -> str | None:
    """Make what an interrupted earlier run left in `data_dir/pgdata` usable; say what was done, or None.

    A server that still answers is reused (a `--keep` run, or a run killed after the server started);
    anything else (a half-initialized directory, a stale postmaster.pid, a server that does not answer) is
    stopped (only processes of this pgdata: `postgres`, `initdb`, `pg_ctl` whose working directory or
    `-D` is it) and removed, so the start that follows initializes afresh. Raises `DemoDirectoryError` when
    another `scheduler demo` still uses the directory.
    """
    link = data_dir / "pgdata"
    if not link.exists() and not link.is_symlink():
        return None
    pgdata = link.resolve()
    if link.is_symlink() or not pgdata.is_dir():
        raise DemoDirectoryError(
            f"{data_dir / 'pgdata'} is not a directory the demo wrote: remove it or pass --data-dir with "
            "a new or empty directory"
        )
    _refuse_if_in_use(data_dir, pgdata)
    postmaster = _postmaster(pgdata)
    if postmaster is not None and _answers(pgdata):
        (pgdata / HANDLES).write_text("[]")  # every handle listed is dead: let pgserver stop it as usual
        return f"recovered: reusing the PostgreSQL an earlier run left running in {pgdata} (pid {postmaster.pid})"
    found = _leftover(pgdata, postmaster)
    stopped = _stop(pgdata, postmaster)
    shutil.rmtree(pgdata)
    also = f", stopped {stopped} leftover process(es)" if stopped else ""
    return f"recovered: {pgdata} held {found} from an interrupted run{also}; removed it, starting afresh"


def _refuse_if_in_use(data_dir: Path, pgdata: Path) -> None:
    """Raise when a live `scheduler` process other than this one is among pgserver's handles."""
    import psutil

    try:
        pids = [int(p) for p in json.loads((pgdata / HANDLES).read_text())]
    except (OSError, ValueError, TypeError):
        return
    for pid in pids:
        if pid == os.getpid():
            continue
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE and any("scheduler" in part for part in proc.cmdline()):
                raise DemoDirectoryError(
                    f"another scheduler demo (pid {pid}) is using {data_dir}: let it finish (or stop it), "
                    "or pass --data-dir with another directory"
                )


def _postmaster_lines(pgdata: Path) -> list[str]:
    try:
        return (pgdata / "postmaster.pid").read_text().splitlines()
    except OSError:
        return []


def _postmaster(pgdata: Path) -> psutil.Process | None:
    """The live server process postmaster.pid names, if it really is a postgres of this pgdata."""
    import psutil

    lines = _postmaster_lines(pgdata)
    if not lines or not re.fullmatch(r"-?\d+", lines[0].strip()):
        return None
    with contextlib.suppress(psutil.Error):
        proc = psutil.Process(abs(int(lines[0])))
        if _belongs(proc, pgdata):
            return proc
    return None


def _belongs(proc: psutil.Process, pgdata: Path) -> bool:
    """A postgres/initdb/pg_ctl process working on `pgdata` (its working directory or its `-D`)."""
    import psutil

    try:
        if proc.name() not in PROCESS_NAMES or proc.status() == psutil.STATUS_ZOMBIE:
            return False
        cmdline = proc.cmdline()
        if any(a == "-D" and b == str(pgdata) for a, b in itertools.pairwise(cmdline)):
            return True
        return Path(proc.cwd()) == pgdata
    except psutil.Error:
        return False


def _answers(pgdata: Path) -> bool:
    """Whether the server of postmaster.pid says it is ready and accepts a connection."""
    lines = _postmaster_lines(pgdata)
    if len(lines) < 8 or lines[7].strip() != "ready" or not lines[4].strip():
        return False
    try:
        with psycopg.connect(
            host=lines[4].strip(),
            port=lines[3].strip(),
            user="postgres",
            dbname="postgres",
            connect_timeout=3,
        ) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def _leftover(pgdata: Path, postmaster: psutil.Process | None) -> str:
    """What the earlier run left, in words."""
    if postmaster is not None:
        return f"a server that does not answer (pid {postmaster.pid})"
    if not (pgdata / "PG_VERSION").exists() or not (pgdata / "global" / "pg_control").exists():
        return "a half-initialized data directory"
    if (pgdata / "postmaster.pid").exists():
        return "a stale postmaster.pid (its server is gone)"
    return "a data directory with no server running"


def _stop(pgdata: Path, postmaster: psutil.Process | None) -> int:
    """Stop every process of `pgdata`: the postmaster with a fast shutdown (SIGINT), then, after
    STOP_SECONDS, whatever is left with SIGKILL. Returns how many processes there were."""
    import psutil

    if postmaster is not None:
        with contextlib.suppress(psutil.Error):
            postmaster.send_signal(signal.SIGINT)
            postmaster.wait(STOP_SECONDS)
    left = [p for p in psutil.process_iter() if _belongs(p, pgdata)]
    for proc in left:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(left, timeout=STOP_SECONDS)
    return len(left) + (postmaster is not None)


@contextlib.contextmanager
def _pgserver_log() -> Iterator[list[logging.LogRecord]]:
    """Keep pgserver's log records (its failures dump whole command outputs) off the user's stderr."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("pgserver")
    handler, propagate = Keep(logging.ERROR), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


ERROR_LINE = re.compile(r"\b(FATAL|PANIC|ERROR|error):\s*\S|terminated by signal|could not ")
"""A line of initdb's, pg_ctl's or the server log's output that says what went wrong."""
CLEANUP_LINE = re.compile(r"remov(e|ing) (the )?contents of data directory|removing data directory")
"""initdb's own cleanup after a failure: not the cause."""


def _failure(exc: BaseException, records: list[logging.LogRecord], data_dir: Path, pgdata: Path) -> str:
    """One line: what failed (PostgreSQL's own error line, when there is one) and the fix."""
    lines = (line.strip() for record in records for line in record.getMessage().splitlines())
    detail = next((line for line in lines if ERROR_LINE.search(line) and not CLEANUP_LINE.search(line)), "")
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, subprocess.SubprocessError):
        cause = cause.__context__  # pgserver, failing to read a log after a failed pg_ctl, hides the cause
    if isinstance(exc, KeyboardInterrupt):
        detail = "interrupted"
    elif not detail and isinstance(cause, subprocess.CalledProcessError):
        detail = f"{Path(str(cause.cmd[0])).name} exited with {cause.returncode}"
    elif not detail and isinstance(cause, subprocess.TimeoutExpired):
        detail = f"{Path(str(cause.cmd[0])).name} did not finish within {cause.timeout:g} s"
    elif not detail:
        detail = (str(exc).splitlines() or [type(exc).__name__])[0]
    log = pgdata / "log"
    where = f" (server log: {log})" if log.is_file() else ""
    return (
        f"PostgreSQL did not start in {pgdata}: {detail[:300]}{where}; run `scheduler demo --data-dir "
        f"{data_dir}` again (it clears what a failed start leaves), or pass --data-dir with a new directory"
    )


def start_server(data_dir: Path, *, keep: bool) -> DemoServer:
    """Start (or reuse) the server in `data_dir/pgdata` and give it a fresh, empty `demo` database.

    As root, pgserver runs PostgreSQL as a system user `pgserver` it creates (initdb refuses root) and
    opens the data directory's parent directories to it. `keep` leaves the server running at exit. Call
    `claim_data_dir` and `recover` first. Raises `DemoStartFailed` (one line) when the server does not start.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver.postgres_server import get_server

    pgdata = (data_dir / "pgdata").resolve()
    with _pgserver_log() as records:
        try:
            server = get_server(pgdata, cleanup_mode=None if keep else "stop")
            admin: str = server.get_uri()
        except (Exception, KeyboardInterrupt) as exc:
            raise DemoStartFailed(_failure(exc, records, data_dir, pgdata)) from exc
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    return DemoServer(server=server, pgdata=pgdata, uri=server.get_uri(DATABASE))


def create_app_tables(uri: str) -> None:
    with psycopg.connect(uri) as conn:
        conn.execute(APP_SQL)


def apply_procrastinate_schema(uri: str) -> None:
    """procrastinate's own schema, applied by procrastinate's schema manager (the SQL that
    `procrastinate schema --read` prints; the CLI's `--apply` would need an app)."""
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
    (data_dir / MARKER).unlink(missing_ok=True)
    if data_dir.is_dir() and not any(data_dir.iterdir()):
        data_dir.rmdir()
