"""`scheduler watch`: run one watcher pass (or the alias pass) now and print what it did."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from scheduler.cli import EXIT_FINDINGS, EXIT_OK, HelpFormatter
from scheduler.commands.common import add_ledger_schema, add_paths, dump_json, instant_arg, load_or_print
from scheduler.commands.failures import oneline
from scheduler.errors import SchedulerError
from scheduler.fanout import Fanout, default_backends
from scheduler.observe.log import configure, event
from scheduler.observe.metrics import Metrics
from scheduler.runtime.ledger import Ledger
from scheduler.watch.passes import AliasResult, WatchResult, aliases_once, watch_once
from scheduler.watch.plan import alias_moves, watcher_database
from scheduler.watch.report import alias_events, alias_json, record_metrics, watch_events, watch_json

if TYPE_CHECKING:
    import argparse
    import logging

HELP = "run one watcher pass now (re-emit stuck work), or the alias pass (--aliases)"
DESCRIPTION = """\
Runs one pass of watcher NAME: its SQL (READ ONLY on the app database, bound %(stuck_after)s, %(now)s)
finds the stuck entities; each is re-emitted once to its lane's or queue's queue, unless a job for it still
waits (already_queued) or it was re-emitted max_reemits times within reemit_window (reemit_exhausted,
reported once per window per entity; later passes of the window leave it alone quietly).
A queue_level watcher also reports stalled jobs of its queue (and re-emits them with reemit_stalled).

--aliases instead moves the jobs waiting on every aliased old queue name to its target queue.
--dry predicts a watcher pass read-only: one READ ONLY transaction, rolled back; nothing is enqueued,
pruned or recorded, the ledger is neither created nor upgraded (a missing one counts as empty), and the
would-be re-emits have no job id. --dry --aliases runs the moves in a transaction that is rolled back.
Without --dry the ledger (schema --schema) is created or upgraded first, as `scheduler migrate` does.

Exit code 1 when the pass could not run (a missing queue, a failed query).
"""
EPILOG = """\
examples:
  scheduler watch chat-generating schedules/
  scheduler watch chat-generating --dry --json schedules/
  scheduler watch --aliases schedules/
"""


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "watch", help=HELP, description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter
    )
    p.add_argument("name", metavar="NAME", nargs="?", help="the watcher's name")
    p.add_argument("--aliases", action="store_true", help="run the alias pass instead of a watcher")
    p.add_argument("--now", type=instant_arg, help="the pass's instant, ISO 8601 with offset (default: now)")
    p.add_argument(
        "--dry", action="store_true", help="predict: a READ ONLY transaction, rolled back; write nothing"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_ledger_schema(p)
    add_paths(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.aliases and args.name is not None:
        # `watch --aliases PATHS`: argparse hands the first path to the optional NAME.
        args.paths = [Path(args.name), *args.paths]
        args.name = None
    if not args.aliases and args.name is None:
        print("give a watcher NAME, or --aliases", file=sys.stderr)
        return EXIT_FINDINGS
    loaded = load_or_print(args)
    if loaded is None:
        return EXIT_FINDINGS
    logger = configure("json" if os.environ.get("SCHEDULER_LOG_FORMAT") == "json" else "text")
    fanout = Fanout(loaded, os.environ, default_backends(), detail_limit=None)
    ledger = Ledger(args.schema)
    replica = f"cli:{os.getpid()}"
    now = args.now or datetime.now(UTC)
    try:
        if args.aliases:
            results = []
            for database in sorted(alias_moves(loaded.config)):
                results.append(aliases_once(fanout, database, ledger_schema=args.schema, dry=args.dry))
            return _print_aliases(results, args, logger)
        if args.name not in loaded.config.watchers:
            known = ", ".join(sorted(loaded.config.watchers)) or "(none)"
            print(f"no watcher named {args.name!r}; the config has: {known}", file=sys.stderr)
            return EXIT_FINDINGS
        if not args.dry:
            with psycopg.connect(fanout.dsn(watcher_database(loaded.config, args.name))) as conn:
                ledger.migrate(conn)
        result = watch_once(fanout, args.name, now, replica=replica, ledger_schema=args.schema, dry=args.dry)
    except (SchedulerError, psycopg.Error) as exc:
        print(f"watcher {args.name or 'aliases'}: {oneline(exc)}", file=sys.stderr)
        return EXIT_FINDINGS
    for level, name, fields in watch_events(result):
        event(logger, level, name, **fields)
    if not args.dry:
        record_metrics(Metrics(), result)
    if args.json:
        dump_json(watch_json(result))
    else:
        _print_watch(result)
    return EXIT_FINDINGS if result.report.failure else EXIT_OK


def _print_watch(result: WatchResult) -> None:
    report = result.report
    if not result.ran:
        print(f"{result.watcher}: another replica is running this watcher's pass; nothing done")
        return
    verb = "would re-emit" if report.dry else "re-emitted"
    print(
        f"{result.watcher} @ {result.now.isoformat()}: {report.cohort_size} stuck, {report.accepted} {verb}"
    )
    if report.failure:
        print(f"  NOTHING RE-EMITTED: {report.failure}")
    for t in report.queues.values():
        reasons = ", ".join(f"{r.value} {n}" for r, n in t.dropped_by_reason.items())
        print(
            f"  {t.queue.name} ({t.queue.backend.value}): {t.accepted} {verb}"
            + (f"; {reasons}" if reasons else "")
        )
        for d in t.dropped_sample:
            holder = f", held by job {d.holder_id}" if d.holder_id else ""
            print(f"    {d.key}: {d.reason.value}{holder}")
    for job in result.stalled:
        print(f"  stalled: {job.queue.name} job {job.id} ({job.state}, key {job.singleton_key})")
    if result.exhausted_quiet:
        print(f"  exhausted, already reported this window: {', '.join(result.exhausted_quiet)}")


def _print_aliases(results: list[AliasResult], args: argparse.Namespace, logger: logging.Logger) -> int:
    for result in results:
        for level, name, fields in alias_events(result):
            event(logger, level, name, **fields)
    if args.json:
        dump_json([alias_json(r) for r in results])
        return EXIT_OK
    verb = "would move" if args.dry else "moved"
    for result in results:
        for o in result.outcomes:
            print(
                f"{o.old} -> {o.target.name}: {len(o.moved)} {verb}, {len(o.collided)} collided (left in place)"
            )
    if not results:
        print("no aliases declared")
    return EXIT_OK
