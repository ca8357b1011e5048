"""The `scheduler` command line.

Exit codes: 0 ok; 1 findings or errors in the user's input (invalid files, a failed cohort query, drops
the schedule did not expect with --strict); 2 usage error (argparse's own code).

Each command lives in a module exposing `register(subparsers)`, which adds its parser and sets
`handler=<function(args) -> int>`.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2

DESCRIPTION = """\
Fan-out scheduler for Postgres job queues (pg-boss, procrastinate).

At each cron tick a schedule selects a cohort of entities and enqueues one job per entity on one
connection, in one COPY per pg-boss queue (or one bulk statement per 5,000-job chunk), reporting every
entity as accepted (with job id) or dropped (with the reason).
"""

EPILOG = """\
examples:
  scheduler validate schedules/
  scheduler dry-run --hour 14 schedules/
  scheduler fire insight-digest --at 2026-11-24T14:00:00Z schedules/
  scheduler run schedules/

Databases are named in the files (`databases: {app: {dsn_env: APP_DATABASE_URL}}`); their DSNs come
from those environment variables. Run `scheduler COMMAND --help` for each command.
"""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keep the examples' line breaks; show defaults."""


def build_parser() -> argparse.ArgumentParser:
    from scheduler import commands

    parser = argparse.ArgumentParser(
        prog="scheduler", description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"scheduler {_version()}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for register in commands.registry():
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # Options may come after PATHS (`fire NAME schedules/ --dry`): each command parses intermixed.
    commands = _subcommands(parser)
    if argv and argv[0] in commands:
        args = commands[argv[0]].parse_intermixed_args(argv[1:])
    else:
        args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except Exception as exc:
        from scheduler.commands.failures import explain, redacted_traceback

        line = explain(exc)
        if line is None:
            # Not an ordinary mistake: a bug, whose traceback is worth having, but not the secrets its
            # messages may quote (Python's own printing of it would not redact them).
            sys.stderr.write(redacted_traceback(exc))
            return EXIT_FINDINGS
        print(f"scheduler {argv[0] if argv else ''}: error: {line}", file=sys.stderr)
        return EXIT_FINDINGS
    except KeyboardInterrupt:
        print("scheduler: interrupted", file=sys.stderr)
        return 130
    return code


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pg-fanout-scheduler")
    except PackageNotFoundError:
        return "0+unknown"


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
