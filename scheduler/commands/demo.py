"""`scheduler demo`: the quickstart on an embedded PostgreSQL, with nothing else to set up.

Each step runs the real command (`dry-run`, `fire`) in this process against the embedded server, so what
it prints is what those commands print against your own database.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scheduler import demo
from scheduler.cli import EXIT_FINDINGS, EXIT_OK, HelpFormatter

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator

HELP = "run the quickstart on an embedded PostgreSQL (no database to set up)"
DESCRIPTION = f"""\
Starts a private PostgreSQL from the `pgserver` wheel in DATA_DIR/pgdata, creates a demo app (312
organizations, 200 billing accounts) and procrastinate's queue schema (applied by procrastinate itself),
writes a schedule config to DATA_DIR/schedules/demo.yaml, and then runs what you would run on your own
database: `dry-run --hour {demo.HOUR}`, then `fire` for one tick of each schedule, printing each enqueue report.

One schedule is the seed incident: a fan-out whose rows share one queueing lock, so 12 of its 13 jobs are
dropped (each drop reported with the job holding the lock); the fixed schedule, with one lock per
organization, enqueues all 13. It ends with how to point the tool at your own database.

Without --keep the server is stopped and DATA_DIR removed at the end; with --keep it stays up and its URI
is printed. A run that was interrupted (killed, Ctrl-C, a reboot) is recovered by the next: a server it left
running is reused, a half-initialized or stale data directory is stopped and removed, and one line says
which. The demo only writes in a DATA_DIR that is new, empty or its own (marked by {demo.MARKER}).
APP_DATABASE_URL and QUEUE_DATABASE_URL are ignored: the demo only touches its own server.
Needs the demo extra: {demo.INSTALL_HINT}.
"""
EPILOG = """\
examples:
  scheduler demo
  scheduler demo --keep                     # then explore with the printed URI
  scheduler demo --data-dir /tmp/sched-demo
"""
DSN_ENVS = ("APP_DATABASE_URL", "QUEUE_DATABASE_URL")


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "demo", help=HELP, description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=demo.DEFAULT_DATA_DIR,
        metavar="DIR",
        help=f"where the server and the demo config live (default: ./{demo.DEFAULT_DATA_DIR}/)",
    )
    p.add_argument(
        "--keep", action="store_true", help="leave the server running and print how to connect to it"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        demo.require_extras()
    except demo.DemoUnavailable as exc:
        print(f"scheduler demo: {exc}", file=sys.stderr)
        return EXIT_FINDINGS
    data_dir: Path = args.data_dir
    today = datetime.now(UTC).date()
    print("scheduler demo: a fan-out scheduler on an embedded PostgreSQL, nothing else to set up.")

    _heading(1, "Start an embedded PostgreSQL (pgserver)")
    started = time.monotonic()
    try:
        demo.claim_data_dir(data_dir)
        recovered = demo.recover(data_dir)
        if recovered:
            print(f"  {recovered}")
        server = demo.start_server(data_dir, keep=args.keep)
    except (demo.DemoDirectoryError, demo.DemoStartFailed) as exc:
        print(f"scheduler demo: {exc}", file=sys.stderr)
        return EXIT_FINDINGS
    except OSError as exc:
        print(
            f"scheduler demo: cannot use {data_dir}: {exc.strerror or exc}: pass --data-dir with a directory "
            "you can write",
            file=sys.stderr,
        )
        return EXIT_FINDINGS
    print(f"  server: {server.pgdata} ({time.monotonic() - started:.1f} s)")
    try:
        code = _steps(server, data_dir, today.isoformat())
    finally:
        if not args.keep:
            server.stop()
            demo.remove_demo_files(data_dir)
    if args.keep:
        print(
            f"\nThe demo server is still running. Try the commands on it (your shell, not the demo, sets these):\n"
            f"  export APP_DATABASE_URL='{server.uri}' QUEUE_DATABASE_URL='{server.uri}'\n"
            f"  scheduler dry-run --hour {demo.HOUR} {data_dir / 'schedules'}\n"
            f"Stop and remove it: scheduler demo --data-dir {data_dir} (without --keep: it reuses the server, "
            "then stops it)."
        )
    else:
        print(
            f"\nThe demo server is stopped and {data_dir}/ removed (`scheduler demo --keep` keeps it running)."
        )
    return code


def _steps(server: demo.DemoServer, data_dir: Path, day: str) -> int:
    _heading(2, "Create the demo app and procrastinate's queue schema")
    demo.create_app_tables(server.uri)
    demo.apply_procrastinate_schema(server.uri)
    config = demo.write_config(data_dir)
    print(
        f"  app tables: organization (312 rows, 13 with digest_hour {demo.HOUR}), account (200 rows)\n"
        "  queue schema: procrastinate_jobs and friends, applied by procrastinate itself\n"
        f"  config: {config / 'demo.yaml'} (databases, 2 procrastinate queues, 3 schedules)"
    )
    paths = str(config)
    with _dsn_environment(server.uri):
        _heading(3, f"Preview {demo.HOUR}:00 UTC, writing nothing")
        _command("dry-run", "--hour", str(demo.HOUR), "--date", day, "--limit", "3", paths)
        print(
            f"  Predicted before anything is written: {demo.INCIDENT} gives every organization the same\n"
            "  queueing lock, and procrastinate keeps one waiting job per lock, so 12 of its 13 jobs would drop."
        )

        tick = f"{day}T{demo.HOUR:02d}:00:00Z"
        _heading(4, "Fire the 14:00 tick as the digest shipped (the seed incident)")
        if _command("fire", demo.INCIDENT, "--at", tick, paths) != EXIT_OK:
            return EXIT_FINDINGS
        print(
            "  1 of 13 organizations got its digest. Unchecked, the 12 drops are silent; here each is\n"
            "  reported with the job holding its lock, logged, and counted (job.enqueue_dropped)."
        )

        _heading(5, "Fire the same tick with the fix: one lock per organization")
        if _command("fire", demo.FIXED, "--at", tick, paths) != EXIT_OK:
            return EXIT_FINDINGS

        _heading(6, "Fire the billing rollup: 200 jobs, one bulk statement, one connection")
        if _command("fire", demo.ROLLUP, "--at", f"{day}T{demo.HOUR:02d}:30:00Z", paths) != EXIT_OK:
            return EXIT_FINDINGS

    _heading(7, "What the queue holds now (procrastinate_jobs)")
    for queue, status, n in demo.queue_counts(server.uri):
        print(f"  {queue:<10} {status:<6} {n}")
    _next_steps()
    return EXIT_OK


def _heading(step: int, title: str) -> None:
    print(f"\n== {step}. {title}")


def _command(*argv: str) -> int:
    """Run `scheduler argv…` in this process (the real command, its own output), showing it first."""
    from scheduler.cli import main

    print(f"$ scheduler {' '.join(argv)}")
    sys.stdout.flush()
    code = main(list(argv))
    sys.stdout.flush()
    sys.stderr.flush()
    return code


@contextmanager
def _dsn_environment(uri: str) -> Iterator[None]:
    """Point both DSN variables at the demo database for the commands run here; restore them after."""
    saved = {name: os.environ.get(name) for name in DSN_ENVS}
    os.environ.update(dict.fromkeys(DSN_ENVS, uri))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _next_steps() -> None:
    lines = [
        ("export APP_DATABASE_URL=postgresql://.../app", "where your cohort tables live"),
        ("export QUEUE_DATABASE_URL=postgresql://.../queues", "pg-boss or procrastinate (may be the same)"),
        ("scheduler validate --check-db schedules/", "config, lint, live queues and their policies"),
        (
            f"scheduler dry-run --hour {demo.HOUR} schedules/",
            f"what {demo.HOUR}:00 would enqueue, drops predicted",
        ),
        ("scheduler run schedules/", "the sidecar"),
    ]
    width = max(len(command) for command, _ in lines)
    print("\n== Next steps: your own database")
    for command, comment in lines:
        print(f"  {command:<{width}}  # {comment}")
    print(
        "  Start your own files from the examples in schedules/ (pg-boss and procrastinate);\n"
        "  `scheduler --help` lists every command."
    )
