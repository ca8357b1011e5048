"""Pieces every command shares: the PATHS argument, loading with findings printed, output helpers."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from scheduler.config import ConfigInvalid, LoadedConfig, Severity, load_config
from scheduler.observe.redact import Redactor

if TYPE_CHECKING:
    from collections.abc import Iterable

    from scheduler.config import Finding

CONFIG_ENV = "SCHEDULER_CONFIG"
DEFAULT_PATHS = ("schedules",)


def add_paths(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        default=[],  # without a default argparse counts a `*` positional as required in its messages
        type=Path,
        metavar="PATHS",
        help=f"schedule files or directories of *.yaml (default: ${CONFIG_ENV}, colon-separated, else ./schedules)",
    )


def hour_arg(text: str) -> int:
    """`--hour`: a local hour 0-23 (argparse prints the ArgumentTypeError's text as it is)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an hour; give a whole number 0-23, e.g. 14"
        ) from None
    if not 0 <= value <= 23:
        raise argparse.ArgumentTypeError(f"hour must be 0-23, got {value}")
    return value


def date_arg(text: str) -> date:
    """`--date`: a calendar date YYYY-MM-DD."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date; write YYYY-MM-DD, e.g. 2026-03-08"
        ) from None


def instant_arg(text: str) -> datetime:
    """`--at`, `--now`: an ISO 8601 instant with a UTC offset, as UTC."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 instant, e.g. 2026-11-24T14:00:00Z"
        ) from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset; add Z or +01:00")
    return value.astimezone(UTC)


def config_paths(args: argparse.Namespace) -> list[Path]:
    if args.paths:
        return list(args.paths)
    env = os.environ.get(CONFIG_ENV)
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    return [Path(p) for p in DEFAULT_PATHS]


def load_or_print(args: argparse.Namespace, out: TextIO | None = None) -> LoadedConfig | None:
    """Load the config; on errors (missing paths included) print every finding and return None."""
    try:
        return load_config(config_paths(args))
    except ConfigInvalid as exc:
        print_findings(exc.findings, out if out is not None else sys.stderr)
        return None


def print_findings(findings: Iterable[Finding], out: TextIO | None = None) -> None:
    for finding in findings:
        print(finding.format(), file=out if out is not None else sys.stdout)


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.severity is Severity.ERROR for f in findings)


def finding_json(finding: Finding) -> dict[str, Any]:
    loc = finding.location
    return {
        "code": finding.code,
        "severity": finding.severity.value,
        "message": finding.message,
        "file": str(loc.file) if loc else None,
        "line": loc.line if loc else None,
        "column": loc.column if loc else None,
    }


def dump_json(doc: Any, out: TextIO | None = None) -> None:
    """Write `doc` as indented JSON to `out` (default: sys.stdout as it is at call time), redacted: no DSN,
    password or secret environment value of this process appears in it (see `observe.redact`)."""
    stream = out if out is not None else sys.stdout
    json.dump(Redactor.from_environ().value(doc), stream, indent=2, default=str)
    stream.write("\n")


LEDGER_SCHEMA_ENV = "SCHEDULER_LEDGER_SCHEMA"


def add_ledger_schema(parser: argparse.ArgumentParser) -> None:
    """The `--schema` option of the commands that read or write the sidecar's ledger."""
    parser.add_argument(
        "--schema",
        default=os.environ.get(LEDGER_SCHEMA_ENV, "scheduler"),
        help=f"schema of the ledger (default: ${LEDGER_SCHEMA_ENV}, else scheduler)",
    )
