"""Write named events as log lines: `key=value` text for people, one JSON object per line for machines.

The logger is built once (`configure`) and passed down; nothing else edits global logging state.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

LOGGER_NAME = "scheduler"
LogFormat = Literal["text", "json"]


class _EventFormatter(logging.Formatter):
    def __init__(self, fmt: LogFormat) -> None:
        super().__init__()
        self._fmt = fmt

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", {})
        when = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        if self._fmt == "json":
            doc = {"ts": when, "level": record.levelname.lower(), "event": record.getMessage(), **fields}
            if record.exc_info:
                doc["exc"] = self.formatException(record.exc_info)
            return json.dumps(doc, default=str, separators=(",", ":"))
        parts = [when, record.levelname.lower().ljust(7), record.getMessage()]
        parts += [f"{k}={_text(v)}" for k, v in fields.items()]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _text(value: object) -> str:
    if isinstance(value, str):
        return value if value and " " not in value and "=" not in value else json.dumps(value)
    return json.dumps(value, default=str, separators=(",", ":"))


def configure(fmt: LogFormat = "text", level: int = logging.INFO, stream: Any = None) -> logging.Logger:
    """Build the scheduler's logger (idempotent: replaces its handler)."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers.clear()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_EventFormatter(fmt))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger


def event(logger: logging.Logger, level: int, name: str, /, **fields: Any) -> None:
    """Log event `name` with `fields`."""
    logger.log(level, name, extra={"fields": fields})
