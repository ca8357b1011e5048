"""Pieces every command shares: the PATHS argument, loading with findings printed, output helpers."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from scheduler.config import ConfigInvalid, LoadedConfig, Severity, load_config

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterable

    from scheduler.config import Finding

CONFIG_ENV = "SCHEDULER_CONFIG"
DEFAULT_PATHS = ("schedules",)


def add_paths(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATHS",
        help=f"schedule files or directories of *.yaml (default: ${CONFIG_ENV}, colon-separated, else ./schedules)",
    )


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
    """Write `doc` as indented JSON to `out` (default: sys.stdout as it is at call time)."""
    stream = out if out is not None else sys.stdout
    json.dump(doc, stream, indent=2, default=str)
    stream.write("\n")


LEDGER_SCHEMA_ENV = "SCHEDULER_LEDGER_SCHEMA"


def add_ledger_schema(parser: argparse.ArgumentParser) -> None:
    """The `--schema` option of the commands that read or write the sidecar's ledger."""
    parser.add_argument(
        "--schema",
        default=os.environ.get(LEDGER_SCHEMA_ENV, "scheduler"),
        help=f"schema of the ledger (default: ${LEDGER_SCHEMA_ENV}, else scheduler)",
    )
