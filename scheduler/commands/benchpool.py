"""`scheduler bench-pool`: size a connection pool against a burst of single enqueues, next to the bulk path."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from scheduler.benchpool import DSN_ENV, BenchConfig, BenchSetupError, format_table, run_bench
from scheduler.cli import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, HelpFormatter
from scheduler.commands.common import dump_json
from scheduler.config.models import parse_duration
from scheduler.types import BackendKind

HELP = "measure a burst of concurrent single enqueues per pool size, against one bulk enqueue"
DESCRIPTION = f"""\
Reproduces the pool-exhaustion incident on your database and sizes a pool against it. For each --pool
size it opens a warm psycopg pool (max_size = that size, acquire timeout = --acquire-timeout) and fires
--burst concurrent single-job enqueues, the way an app calling send() once per job does: one thread per
job, each taking a connection from the pool and inserting its job in its own transaction. It counts
successes, acquire timeouts (the pool had no free connection in time), other errors, the wall time, the
most connections in use at once, the distinct server backends used, and the peak number of the round's
sessions seen in pg_stat_activity. Then it sends the same burst through the scheduler's bulk path: one
connection, one transaction, one bulk statement.

--work-ms adds server-side time (pg_sleep) to every transaction, default 0. On a local database a single
insert takes well under a millisecond, so a burst drains before anyone waits; a real app's send() holds
its connection for at least a network round trip (and often its own work), which is what makes requests
queue behind a small pool. Set it to your app's round trip to the database to reproduce what it sees.
The bulk path pays it once (one transaction).

Jobs go to a scratch queue created for the run and removed at the end, even on error: pg-boss
create_queue('scheduler-bench-<random>') then delete_queue (needs pg-boss's schema in the database);
procrastinate: a unique queue_name whose jobs are deleted. Jobs start a day from now, so no worker takes
one meanwhile. Real queues and their jobs are never touched.

The DSN is --dsn or ${DSN_ENV}. Progress goes to stderr, the table (or --json) to stdout. Exit code 0
when the run completed (timeouts are measurements, not failures), 1 when it could not run.
"""
EPILOG = f"""\
examples:
  scheduler bench-pool --burst 200 --pool 5,10,15
  scheduler bench-pool --burst 200 --pool 5,10,15 --work-ms 20 --acquire-timeout 2s
  scheduler bench-pool --backend procrastinate --dsn postgresql://localhost/app --json | jq '.rounds'
  {DSN_ENV}=postgresql://localhost/app scheduler bench-pool --burst 2000 --pool 5,20,50
"""


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "bench-pool", help=HELP, description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter
    )
    p.add_argument("--burst", type=_positive, default=200, help="concurrent single enqueues per round")
    p.add_argument(
        "--pool",
        type=_pools,
        default=(5, 10, 15),
        metavar="SIZES",
        help="comma-separated pool sizes, one round each (default: 5,10,15)",
    )
    p.add_argument(
        "--acquire-timeout",
        type=_seconds,
        default=2.0,
        metavar="DURATION",
        help="how long an enqueue waits for a pool connection, e.g. 2s, 500ms (default: 2s)",
    )
    p.add_argument(
        "--work-ms",
        type=_non_negative,
        default=0,
        help="server-side milliseconds each transaction holds its connection (pg_sleep; default 0)",
    )
    p.add_argument("--dsn", help=f"queue database (default: ${DSN_ENV})")
    p.add_argument(
        "--backend",
        choices=[k.value for k in BackendKind],
        default=BackendKind.PGBOSS.value,
        help="queue system whose tables receive the jobs",
    )
    p.add_argument("--schema", help="the queue system's schema (pg-boss default: pgboss)")
    p.add_argument("--json", action="store_true", help="print the measurements as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(handler=run)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def _pools(text: str) -> tuple[int, ...]:
    sizes = tuple(_positive(part.strip()) for part in text.split(",") if part.strip())
    if not sizes:
        raise argparse.ArgumentTypeError("give at least one pool size, e.g. 5,10,15")
    return sizes


def _seconds(text: str) -> float:
    try:
        value = parse_duration(text).total_seconds()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
    return value


def run(args: argparse.Namespace) -> int:
    dsn = args.dsn or os.environ.get(DSN_ENV)
    if not dsn:
        print(
            f"bench-pool: no queue database: pass --dsn postgresql://... or set ${DSN_ENV}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    config = BenchConfig(
        dsn=dsn,
        backend=BackendKind(args.backend),
        burst=args.burst,
        pools=args.pool,
        acquire_timeout=args.acquire_timeout,
        work_ms=args.work_ms,
        schema=args.schema,
    )

    def progress(message: str) -> None:
        print(f"bench-pool: {message}", file=sys.stderr, flush=True)

    try:
        report = run_bench(config, None if args.quiet else progress)
    except BenchSetupError as exc:
        print(f"bench-pool: {exc}", file=sys.stderr)
        return EXIT_FINDINGS
    if args.json:
        dump_json(report.to_json(), sys.stdout)
    else:
        format_table(report, sys.stdout)
    return EXIT_OK
