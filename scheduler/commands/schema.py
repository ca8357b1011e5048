"""`scheduler schema`: print the JSON Schema of the schedule-file format."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scheduler.cli import EXIT_OK, HelpFormatter
from scheduler.commands.common import dump_json
from scheduler.config import config_json_schema

if TYPE_CHECKING:
    import argparse

HELP = "print the JSON Schema of schedule files (for editor validation and completion)"
DESCRIPTION = """\
Prints the JSON Schema of the schedule-file format, generated from the same models `validate` uses.
Save it and point your editor at it, e.g. with the YAML language server, by putting this first line in
each schedule file:
  # yaml-language-server: $schema=./scheduler.schema.json
"""
EPILOG = """\
example:
  scheduler schema > schedules/scheduler.schema.json
"""


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "schema", help=HELP, description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    dump_json(config_json_schema())
    return EXIT_OK
