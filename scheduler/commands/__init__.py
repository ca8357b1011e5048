"""The CLI's commands, one module each; `REGISTRY` lists their `register` functions in help order."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

Register = Callable[["argparse._SubParsersAction[Any]"], None]

REGISTRY: list[Register] = []
