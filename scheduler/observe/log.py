"""Write named events as log lines: `key=value` text for people, one JSON object per line for machines.

The logger is built once (`configure`) and passed down; nothing else edits global logging state.

Every line goes through a `Redactor` (no DSN, password or secret environment value is written), and one
event is one line whatever its values hold: a text value with a space, `=`, a quote or any character that
is not printable (a newline, an escape sequence) is written as a JSON string, so a schedule name cannot
forge a line or move the terminal's cursor; a traceback's lines are indented under the line they belong to.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

from scheduler.observe.redact import Redactor

LOGGER_NAME = "scheduler"
LogFormat = Literal["text", "json"]


class _EventFormatter(logging.Formatter):
    def __init__(self, fmt: LogFormat, redactor: Redactor) -> None:
        super().__init__()
        self._fmt = fmt
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        redact = self._redactor.value
        fields: dict[str, Any] = redact(getattr(record, "fields", {}))
        when = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        message = self._redactor.text(record.getMessage())
        exc = self._redactor.text(self.formatException(record.exc_info)) if record.exc_info else None
        if self._fmt == "json":
            doc = {"ts": when, "level": record.levelname.lower(), "event": message, **fields}
            if exc is not None:
                doc["exc"] = exc
            return json.dumps(doc, default=str, separators=(",", ":"))
        parts = [when, record.levelname.lower().ljust(7), _text(message)]
        parts += [f"{_text(k)}={_text(v)}" for k, v in fields.items()]
        line = " ".join(parts)
        if exc is not None:
            line += "".join(f"\n    {_printable(part)}" for part in exc.splitlines())
        return line


def _text(value: object) -> str:
    """A value as one token of a text line: bare when plain, else JSON (quoted, control chars escaped)."""
    if isinstance(value, str):
        plain = bool(value) and value.isprintable() and not any(c in value for c in ' ="\\')
        return value if plain else json.dumps(value)
    return json.dumps(value, default=str, separators=(",", ":"))


def _printable(text: str) -> str:
    """`text` with every character that is not printable escaped (`\\x1b`, `\\t`): a traceback line stays
    one line and cannot drive the terminal."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def configure(
    fmt: LogFormat = "text",
    level: int = logging.INFO,
    stream: Any = None,
    *,
    redactor: Redactor | None = None,
) -> logging.Logger:
    """Build the scheduler's logger (idempotent: replaces its handler). Every line is redacted by
    `redactor` (default: one that knows the secret-looking values of this process's environment)."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers.clear()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_EventFormatter(fmt, redactor if redactor is not None else Redactor.from_environ()))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger


def event(logger: logging.Logger, level: int, name: str, /, **fields: Any) -> None:
    """Log event `name` with `fields`."""
    logger.log(level, name, extra={"fields": fields})
