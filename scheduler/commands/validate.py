"""`scheduler validate`: load, validate and lint schedule files; optionally check the live databases."""

from __future__ import annotations

import io
import os
import sys
from typing import TYPE_CHECKING, Any

from scheduler.cli import EXIT_FINDINGS, EXIT_OK, HelpFormatter
from scheduler.commands.checkdb import (
    live_policy_findings,
    live_shared_slots,
    read_queues,
    reader_role_findings,
)
from scheduler.commands.common import (
    add_paths,
    config_paths,
    dump_json,
    finding_json,
    has_errors,
    print_findings,
)
from scheduler.config import ConfigInvalid, Finding, LoadedConfig, Severity, lint, load_config
from scheduler.config.lint import live_key_findings
from scheduler.config.loader import unexpected
from scheduler.fanout import Fanout, default_backends

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

HELP = "check schedule files (and, with --check-db, the live queues) and list every finding"
DESCRIPTION = """\
Loads every schedule file, validates it against the format (`scheduler schema`) and lints it. Findings
print as `file:line:col: CODE severity: message`; every finding is reported, not only the first.

--check-db also connects to each queue database (DSNs from the environment variables the files name),
checks the queue system's schema version, that each queue exists, and each queue's live policy: a
fan-out whose rows share one singleton key under a one-per-key policy is an error (SCH104), and so is
one without a singleton key into a queue whose live policy needs one (key_strict_fifo, SCH105). On each
app database that cohort or watcher SQL reads (when its DSN is set), it warns when that role can write
(SCH110): give the sidecar a read-only role there.

Any file gives findings, never a traceback: a file is at most 1 MiB, nests at most 64 deep and expands
(through YAML aliases) to at most 200,000 values (CFG012 names the limit it passed).

Exit code 1 when any finding is an error, else 0.
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
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            # Findings are escaped already; a terminal that cannot show a character gets its escape, not a crash.
            stream.reconfigure(errors="backslashreplace")
    loaded: LoadedConfig | None = None
    findings: list[Finding] = []
    try:
        loaded = load_config(config_paths(args))
    except ConfigInvalid as exc:
        findings = list(exc.findings)
    except Exception as exc:  # load_config raises only ConfigInvalid; a bug still ends as a finding
        findings = [unexpected(exc, None, "loading the schedule files")]
    else:
        db_findings: list[Finding] = []
        live_checked: set[tuple[str, str]] = set()
        if args.check_db:
            db_findings = _checked(
                lambda: _check_db(loaded, live_checked), "checking the live queue databases"
            )
        findings = _checked(lambda: lint(loaded, live_checked=live_checked), "linting the schedule files")
        findings += db_findings
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


def _check_db(loaded: LoadedConfig, live_checked: set[tuple[str, str]]) -> list[Finding]:
    """The live checks' findings; adds to `live_checked` the (schedule, queue) pairs SCH104 reports, which
    `lint` then leaves out of SCH001 (one problem, one finding: the one with the live policy)."""
    fanout = Fanout(loaded, os.environ, default_backends())
    infos, db_findings = read_queues(fanout)
    live_checked.update(live_shared_slots(fanout, infos))
    live = {logical: info.policy for logical, info in infos.items() if info.exists}
    return (
        db_findings
        + live_policy_findings(fanout, infos)
        + live_key_findings(loaded, live)
        + reader_role_findings(fanout)
    )


def _checked(check: Callable[[], list[Finding]], doing: str) -> list[Finding]:
    """`check()`, or one CFG013 finding if it raises: `validate` reports findings and exits 0 or 1, never a
    traceback."""
    try:
        return check()
    except Exception as exc:
        return [unexpected(exc, None, doing)]
