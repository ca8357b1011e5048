"""`scheduler validate`: load, validate and lint schedule files; optionally check the live databases."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from scheduler.cli import EXIT_FINDINGS, EXIT_OK, HelpFormatter
from scheduler.commands.checkdb import live_policy_findings, read_queues, reader_role_findings
from scheduler.commands.common import (
    add_paths,
    config_paths,
    dump_json,
    finding_json,
    has_errors,
    print_findings,
)
from scheduler.config import ConfigInvalid, LoadedConfig, Severity, lint, load_config
from scheduler.fanout import Fanout, default_backends

if TYPE_CHECKING:
    import argparse

HELP = "check schedule files (and, with --check-db, the live queues) and list every finding"
DESCRIPTION = """\
Loads every schedule file, validates it against the format (`scheduler schema`) and lints it. Findings
print as `file:line:col: CODE severity: message`; every finding is reported, not only the first.

--check-db also connects to each queue database (DSNs from the environment variables the files name),
checks the queue system's schema version, that each queue exists, and each queue's live policy: a
fan-out whose rows share one singleton key under a one-per-key policy is an error (SCH104). On each app
database that cohort or watcher SQL reads (when its DSN is set), it warns when that role can write (SCH110):
give the sidecar a read-only role there.

Exit code 1 when any finding is an error.
"""
EPILOG = """\
examples:
  scheduler validate schedules/
  QUEUE_DATABASE_URL=postgresql://localhost/app scheduler validate --check-db schedules/
"""


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "validate", help=HELP, description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter
    )
    p.add_argument("--check-db", action="store_true", help="also check the live queue databases")
    p.add_argument("--json", action="store_true", help="print findings as a JSON list")
    add_paths(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    loaded: LoadedConfig | None = None
    try:
        loaded = load_config(config_paths(args))
    except ConfigInvalid as exc:
        findings = list(exc.findings)
    else:
        findings = lint(loaded)
    if loaded is not None and args.check_db:
        fanout = Fanout(loaded, os.environ, default_backends())
        infos, db_findings = read_queues(fanout)
        findings += db_findings + live_policy_findings(fanout, infos) + reader_role_findings(fanout)
    if args.json:
        dump_json([finding_json(f) for f in findings])
    else:
        print_findings(findings)
        errors = sum(1 for f in findings if f.severity is Severity.ERROR)
        summary = f"{errors} error(s), {len(findings) - errors} warning(s)"
        if loaded is not None:
            summary += f" in {len(loaded.files)} file(s), {len(loaded.config.schedules)} schedule(s)"
        print(summary, file=sys.stderr)
    return EXIT_FINDINGS if has_errors(findings) else EXIT_OK
