"""`scheduler migrate`: create or upgrade the ledger in every queue database the schedules use."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import psycopg

from scheduler.cli import EXIT_FINDINGS, EXIT_OK, HelpFormatter
from scheduler.commands.common import add_ledger_schema, add_paths, load_or_print
from scheduler.commands.failures import oneline
from scheduler.errors import ConfigError
from scheduler.runtime.databases import connect, ledger_databases
from scheduler.runtime.ledger import LATEST_VERSION, Ledger

if TYPE_CHECKING:
    import argparse

HELP = "create or upgrade the ledger (tick claims) in each queue database"
DESCRIPTION = f"""\
Applies the ledger's versioned migration steps (latest: {LATEST_VERSION}) in every queue database the
enabled schedules write to, under an advisory lock (replicas starting together do not race). `scheduler
run` does the same at start; run this first when the sidecar's role may not create schemas.
"""
EPILOG = """\
examples:
  scheduler migrate schedules/
  scheduler migrate --schema scheduler schedules/
"""


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "migrate", help=HELP, description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter
    )
    add_ledger_schema(p)
    add_paths(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    loaded = load_or_print(args)
    if loaded is None:
        return EXIT_FINDINGS
    ledger = Ledger(args.schema)
    try:
        databases = ledger_databases(loaded.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_FINDINGS
    code = EXIT_OK
    for database in sorted(databases):
        try:
            with connect(loaded.config, database, os.environ) as conn:
                applied = ledger.migrate(conn)
        except (psycopg.Error, ConfigError) as exc:
            print(f"{database}: cannot migrate the ledger: {oneline(exc)}", file=sys.stderr)
            code = EXIT_FINDINGS
            continue
        if applied:
            steps = ", ".join(f"{m.version} ({m.name})" for m in applied)
            print(f"{database}: ledger {ledger.schema} migrated: {steps}")
        else:
            print(f"{database}: ledger {ledger.schema} is up to date (version {LATEST_VERSION})")
    return code
