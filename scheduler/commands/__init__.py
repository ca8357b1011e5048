"""The CLI's commands, one module each with `register(subparsers)`; `MODULES` lists them in help order."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

Register = Callable[["argparse._SubParsersAction[Any]"], None]

MODULES = [
    "validate",
    "dryrun",
    "fire",
    "lanes",
    "watch",
    "run",
    "status",
    "migrate",
    "schema",
    "benchpool",
    "demo",
]
"""Command modules under `scheduler.commands`, imported when the parser is built."""


def registry() -> list[Register]:
    """Every command's `register` function, in help order."""
    return [importlib.import_module(f"scheduler.commands.{name}").register for name in MODULES]
