"""`scheduler status`: the ledger's recent ticks per schedule, its next fire time and its failures."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg

from scheduler.cli import EXIT_FINDINGS, EXIT_OK, HelpFormatter
from scheduler.commands.common import add_ledger_schema, add_paths, dump_json, load_or_print
from scheduler.errors import ConfigError
from scheduler.observe.redact import Redactor
from scheduler.planning.ticks import next_tick
from scheduler.runtime.databases import connect, ledger_databases
from scheduler.runtime.ledger import Ledger, RecentTick, ReplicaRecord

if TYPE_CHECKING:
    import argparse

HELP = "show each schedule's recent ticks from the ledger, its next fire time and failures"
DESCRIPTION = """\
Reads the ledger in each queue database (read only) and prints, per enabled schedule, its next fire
time and its most recent ticks: outcome (done, failed with the reason, skipped), who fanned it out
(BY: `scheduled`, the sidecar, or `manual`, `scheduler fire`), counts, attempts and the replica (or
host) that claimed it; then, per database, the live replicas of `scheduler run` (seen within
three catch-up polls): when the configuration each runs was loaded and, when its last reload failed,
when and why (it keeps running the older configuration). Exit code 1 when a database cannot be read
or a live replica's last reload failed.
"""
COLUMNS = ("TICK", "OUTCOME", "BY", "ACCEPTED", "DROPPED", "ATTEMPTS", "REPLICA", "REASON")
EPILOG = """\
examples:
  scheduler status schedules/
  scheduler status --json --limit 3 schedules/
"""


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "status", help=HELP, description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter
    )
    p.add_argument("--json", action="store_true", help="print a JSON document instead of tables")
    p.add_argument("--limit", type=int, default=10, help="recent ticks per schedule (default: 10)")
    add_ledger_schema(p)
    add_paths(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    loaded = load_or_print(args)
    if loaded is None:
        return EXIT_FINDINGS
    config = loaded.config
    try:
        databases = ledger_databases(config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_FINDINGS
    redactor = Redactor.from_environ()  # no DSN or secret in what is printed (errors, reasons, findings)
    redactor.learn_config(config, os.environ)
    ledger = Ledger(args.schema)
    now = datetime.now(UTC)
    code = EXIT_OK
    doc: dict[str, Any] = {}
    replicas_of: dict[str, list[ReplicaRecord]] = {}
    for database, names in sorted(databases.items()):
        recent: list[RecentTick] = []
        replicas: list[ReplicaRecord] = []
        error: str | None = None
        try:
            with connect(config, database, os.environ) as conn:
                if ledger.version(conn) is None:
                    error = f"no ledger in schema {ledger.schema!r}: run `scheduler migrate`"
                else:
                    recent = ledger.recent(conn, names, args.limit)
                    replicas = [r for r in ledger.replicas(conn, now) if r.live]
        except (psycopg.Error, ConfigError) as exc:
            error = " ".join(str(exc).split())
        if error is not None or any(r.reload_failed_at is not None for r in replicas):
            code = EXIT_FINDINGS
        replicas_of[database] = replicas
        for name in names:
            schedule = config.schedules[name]
            rows = [r for r in recent if r.schedule == name]
            doc[name] = {
                "database": database,
                "cron": schedule.cron,
                "timezone": schedule.timezone,
                "next_fire": next_tick(schedule.cron, schedule.timezone, now).isoformat(),
                "error": error,
                "failed": sum(1 for r in rows if r.outcome == "failed"),
                "recent": [_row_json(r) for r in rows],
                "replicas": [_replica_json(r, name) for r in replicas],
            }
    doc = redactor.value(doc)
    if args.json:
        dump_json(doc, sys.stdout)
    else:
        _print_tables(doc)
        _print_replicas(replicas_of, redactor)
    return code


def _replica_json(record: ReplicaRecord, schedule: str) -> dict[str, Any]:
    """A live replica of the schedule's database: the configuration it runs, its last failed reload."""
    return {
        "replica": record.replica,
        "seen_at": record.seen_at.isoformat(),
        "config_loaded_at": record.loaded_at.isoformat(),
        "runs_schedule": schedule in record.schedules,
        "reload_failed_at": record.reload_failed_at.isoformat() if record.reload_failed_at else None,
        "reload_error": record.reload_error,
    }


def _print_replicas(replicas_of: dict[str, list[ReplicaRecord]], redactor: Redactor) -> None:
    for database, replicas in replicas_of.items():
        if not replicas:
            continue
        print(f"replicas of database {database}")
        for r in replicas:
            line = f"  {r.replica}  seen {r.seen_at.isoformat(timespec='seconds')}  "
            line += f"config loaded {r.loaded_at.isoformat(timespec='seconds')}"
            if r.reload_failed_at is None:
                print(line)
                continue
            print(f"{line}  RELOAD FAILED at {r.reload_failed_at.isoformat(timespec='seconds')}")
            print("    (still running the configuration loaded before; fix the files and reload)")
            for finding in (r.reload_error or "").splitlines():
                print(f"    {_printable(redactor.text(finding))}")


def _printable(text: str) -> str:
    """`text` with control characters escaped (a finding quotes file content: it must not forge lines)."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _row_json(row: RecentTick) -> dict[str, Any]:
    return {
        "tick": row.tick.isoformat(),
        "outcome": row.outcome,
        "fired_by": row.fired_by,
        "reason": row.reason,
        "replica": row.replica,
        "attempts": row.attempts,
        "started_at": row.started_at.isoformat(),
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
        "accepted": row.accepted,
        "dropped": row.dropped,
        "dropped_by_reason": dict(row.dropped_by_reason),
    }


def _print_tables(doc: dict[str, Any]) -> None:
    for name, info in doc.items():
        print(
            _printable(
                f"{name}  cron {info['cron']!r} {info['timezone']}  next {info['next_fire']}  "
                f"database {info['database']}  failed (recent) {info['failed']}"
            )
        )
        if info["error"]:
            print(f"  error: {_printable(str(info['error']))}")
            continue
        if not info["recent"]:
            print("  (no ticks in the ledger yet)")
            continue
        table = [COLUMNS] + [
            (
                r["tick"],
                r["outcome"],
                r["fired_by"],
                str(r["accepted"]),
                str(r["dropped"]),
                str(r["attempts"]),
                _printable(r["replica"]),
                _printable(r["reason"] or ""),
            )
            for r in info["recent"]
        ]
        widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
        for row in table:
            print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
