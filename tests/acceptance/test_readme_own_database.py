"""The README's "Your own database" commands, run as written on a fresh pair of databases, and the schema
hints of `validate --check-db` run as written on a fresh database.

The block is the fenced `sh` block after the README's `<!-- own-database: ... -->` comment. Only what the
README itself says may vary is changed: the two database names (`scheduler_app`, `scheduler_queue`, made
unique here so runs never meet) and, through the variables its "Connecting" note names (`PGUSER`,
`PGHOST`, `PGPORT`, `PGPASSWORD`), the server of SCHEDULER_TEST_ADMIN_DSN. Its `localhost` URLs are
rewritten only when that server is not the local one on 5432.

`npx --yes pg-boss@12.38.0` fetches pg-boss from the npm registry, as it does for a reader (npm's own cache
serves later runs): the test checks the command the README prints, not a copy of pg-boss installed
beside it. The Node it runs on is the pinned Node 22 (tests/interop/nodejs.py), first on PATH, since
pg-boss 12.38 declares Node >= 22.12.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from tests.acceptance.cli import SCHEDULER, scheduler
from tests.conftest import ADMIN_DSN, drop_database
from tests.interop.nodejs import node_binary

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.conftest import MakeDatabase

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MARKER = "<!-- own-database:"
NAMES = ("scheduler_app", "scheduler_queue")
TIMEOUT_SECONDS = 600  # npx may download pg-boss from the registry on a cold cache
_STEP = re.compile(r"^@@ (\d+) rc (\d+)$", re.MULTILINE)


def readme_block() -> list[str]:
    """The commands of the README's own-database block, one per entry (`\\` continuations joined)."""
    text = README.read_text(encoding="utf-8")
    assert MARKER in text, f"README.md lost its {MARKER!r} comment before the own-database block"
    after = text[text.index(MARKER) :]
    match = re.search(r"^```sh\n(.*?)^```", after, re.MULTILINE | re.DOTALL)
    assert match is not None, "no ```sh block after the own-database comment"
    commands: list[str] = []
    pending = ""
    for line in match.group(1).splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        command = (pending + line).strip()
        pending = ""
        if command and not command.startswith("#"):
            commands.append(command)
    return commands


def shell_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A clean environment (no config, no Sentry, no DSNs, no PG defaults of the caller) with the server of
    the admin DSN in libpq's variables, the venv's commands and the pinned Node first on PATH."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SCHEDULER_", "PG")) and not k.endswith("_DATABASE_URL")
    }
    info = psycopg.conninfo.conninfo_to_dict(ADMIN_DSN)
    for key, var in (("user", "PGUSER"), ("host", "PGHOST"), ("port", "PGPORT"), ("password", "PGPASSWORD")):
        if info.get(key):
            env[var] = str(info[key])
    env["PATH"] = os.pathsep.join([str(SCHEDULER.parent), str(node_binary().parent), env.get("PATH", "")])
    env.update(extra or {})
    return env


def run_steps(commands: list[str], env: dict[str, str]) -> tuple[list[tuple[str, int, str]], str]:
    """Run `commands` in order in one bash (so `export` carries over), stopping at the first that fails.
    Each command's exit code and output (stdout and stderr, in order) are returned with it."""
    script = ["set -u -o pipefail"]
    for i, command in enumerate(commands):
        script += [command, f'rc=$?; printf \'\\n@@ {i} rc %d\\n\' "$rc"; [ "$rc" -eq 0 ] || exit 1']
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    steps: list[tuple[str, int, str]] = []
    start = 0
    for match in _STEP.finditer(done.stdout):
        steps.append((commands[int(match.group(1))], int(match.group(2)), done.stdout[start : match.start()]))
        start = match.end()
    return steps, done.stdout


def local_server() -> bool:
    info = psycopg.conninfo.conninfo_to_dict(ADMIN_DSN)
    return (
        str(info.get("host", "localhost")) in {"localhost", "127.0.0.1", "::1"}
        and str(info.get("port", "5432")) == "5432"
    )


def fresh_names() -> dict[str, str]:
    suffix = uuid.uuid4().hex[:10]
    return {name: f"sched_test_readme_{name.removeprefix('scheduler_')}_{suffix}" for name in NAMES}


def drop_all(names: Iterator[str]) -> None:
    for name in names:
        drop_database(name)


def test_the_readme_own_database_block_works_as_written() -> None:
    """From `createdb` to `status`: every command of the block exits 0, the dry-run shows the 14:00 cohort,
    the fire enqueues it, and `status` lists that tick as done by `manual` with its 5 jobs."""
    commands = readme_block()
    names = fresh_names()
    script = []
    for command in commands:
        for old, new in names.items():
            command = command.replace(old, new)
        if not local_server():
            info = psycopg.conninfo.conninfo_to_dict(ADMIN_DSN)
            command = command.replace("//localhost/", f"//{info['host']}:{info.get('port', 5432)}/")
        script.append(command)
    assert any(c.startswith("createdb ") for c in script), commands
    assert script[-1].startswith("scheduler status"), "the block ends with `scheduler status`"
    env = shell_env()
    assert shutil.which("npx", path=env["PATH"]), (
        "npx not found: install npm (scripts/dev-setup needs it too)"
    )
    try:
        steps, output = run_steps(script, env)

        assert [(c, rc) for c, rc, _ in steps] == [(c, 0) for c in script], output
        by_command = {c: out for c, _, out in steps}
        dry_run = next(out for c, out in by_command.items() if c.startswith("scheduler dry-run"))
        assert "insight-digest" in dry_run
        assert "tick 2026-06-01T14:00:00+00:00" in dry_run
        assert "queue generate-insight-post: 5 planned -> 5 accepted, 0 dropped" in dry_run
        real = next(
            out for c, out in by_command.items() if c.startswith("scheduler fire") and "--dry" not in c
        )
        assert "generate-insight-post (pgboss): 5 planned, 5 enqueued, 0 dropped" in real
        status = by_command[script[-1]]
        digest = status[status.index("insight-digest  cron") :]
        rows = [line.split() for line in digest.splitlines()[1:] if line.startswith("  2026-06-01T14")]
        assert rows[:1] == [["2026-06-01T14:00:00+00:00", "done", "manual", "5", "0", "1", rows[0][6]]], (
            status
        )
        info = psycopg.conninfo.conninfo_to_dict(ADMIN_DSN)
        info["dbname"] = names["scheduler_queue"]
        with psycopg.connect(psycopg.conninfo.make_conninfo(**info)) as conn:
            jobs = conn.execute(
                "SELECT count(*) FROM pgboss.job WHERE name = 'generate-insight-post'"
            ).fetchone()
            policy = conn.execute(
                "SELECT policy FROM pgboss.queue WHERE name = 'generate-insight-post'"
            ).fetchone()
        assert (jobs, policy) == ((5,), ("stately",))
    finally:
        drop_all(iter(names.values()))


HINTS_CONFIG = """\
version: 1
databases:
  queue: { dsn_env: QUEUE_DATABASE_URL }
queues:
  boss: { name: work, backend: pgboss, database: queue, create_missing: true }
  boss-elsewhere: { name: work, backend: pgboss, database: queue, schema: boss_two, create_missing: true }
  jobs: { name: work, backend: procrastinate, database: queue, task: app.work }
  jobs-elsewhere: { name: work, backend: procrastinate, database: queue, task: app.work, schema: jobs_two }
schedules: {}
"""
_COMMAND = re.compile(r"`((?:npx|procrastinate schema --read|psql) [^`]*)`")


def sch101(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in (done.stdout + done.stderr).splitlines() if " SCH101 " in line]


def test_the_schema_hints_of_check_db_work_as_written(tmp_path: Path, make_database: MakeDatabase) -> None:
    """On an empty database every queue schema is an SCH101 whose message holds one command; run as
    written (with the config's DSN variable set), each creates its schema: `--check-db` has no SCH101
    after, for pg-boss and procrastinate, in their default schemas and in schemas of their own."""
    # As a URL, the form the README uses: pg-boss's CLI (node-postgres) reads no libpq keyword strings.
    info = psycopg.conninfo.conninfo_to_dict(make_database())
    auth = f"{info['user']}:{info['password']}@" if info.get("password") else f"{info.get('user', '')}@"
    dsn = f"postgresql://{auth}{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info['dbname']}"
    (tmp_path / "schedules.yaml").write_text(HINTS_CONFIG)
    env = {"QUEUE_DATABASE_URL": dsn}

    before = sch101(scheduler("validate", "--check-db", "schedules.yaml", cwd=tmp_path, **env))
    hints = [m.group(1) for line in before for m in [_COMMAND.search(line)] if m]

    assert len(before) == len(hints) == 4, before
    for hint in hints:
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", hint],
            cwd=tmp_path,
            env=shell_env(env),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
        assert done.returncode == 0, (hint, done.stdout, done.stderr)
    after = scheduler("validate", "--check-db", "schedules.yaml", cwd=tmp_path, **env)
    assert sch101(after) == [], after.stdout + after.stderr
    with psycopg.connect(dsn) as conn:
        found = conn.execute(
            sql.SQL(
                "SELECT to_regclass('pgboss.version') IS NOT NULL, to_regclass('boss_two.version') IS NOT NULL,"
                " to_regclass('public.procrastinate_jobs') IS NOT NULL,"
                " to_regclass('jobs_two.procrastinate_jobs') IS NOT NULL"
            )
        ).fetchone()
    assert found == (True, True, True, True)
