"""Log lines: redacted in both formats, and one event is one text line whatever its values hold."""

from __future__ import annotations

import io
import json
import logging

import pytest

from scheduler.observe.log import LogFormat, configure, event
from scheduler.observe.redact import Redactor

PASSWORD = "S3cr3tPa55"
DSN = f"postgresql://root:{PASSWORD}@127.0.0.1:5432/app"
TOKEN = "tok-9f8e7d6c5b4a"


def logger_to(fmt: LogFormat) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    redactor = Redactor.from_environ({"QUEUE_URL": DSN, "API_TOKEN": TOKEN})
    return configure(fmt, logging.DEBUG, out, redactor=redactor), out


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_no_secret_in_fields_messages_or_tracebacks(fmt: LogFormat) -> None:
    """A DSN or token in a field (nested too), in an object's str, or in a logged exception is `***`."""
    logger, out = logger_to(fmt)
    event(logger, logging.WARNING, "database_unreachable", error=f"cannot use {DSN}", nested={"t": [TOKEN]})
    event(logger, logging.INFO, "objects", value=ValueError(f"token {TOKEN}"))
    try:
        raise RuntimeError(f"connect to {DSN} failed; password={PASSWORD}")
    except RuntimeError:
        logger.exception("pass_failed", extra={"fields": {"schedule": "s"}})
    written = out.getvalue()
    assert PASSWORD not in written
    assert TOKEN not in written
    assert written.count("***") >= 4  # the field, the nested token, the object, the traceback


def test_json_lines_stay_json_and_redacted() -> None:
    logger, out = logger_to("json")
    event(logger, logging.ERROR, "tick_failed", reason=f"app {DSN}")
    doc = json.loads(out.getvalue())
    assert doc["reason"] == "app ***"  # the whole DSN is known: it goes as one


def test_a_value_cannot_forge_a_text_line_or_drive_the_terminal() -> None:
    """A schedule name with a newline, an escape sequence or quotes stays inside its one quoted token."""
    logger, out = logger_to("text")
    name = 'evil\n2026-01-01T00:00:00.000+00:00 info    tick_done schedule=ok\x1b[2J"'
    event(logger, logging.INFO, "tick_skipped", schedule=name, plain="simple")
    try:
        raise ValueError("bad\nvalue\x1b[31m")
    except ValueError:
        logger.exception("pass_failed", extra={"fields": {"schedule": name}})
    lines = out.getvalue().splitlines()
    assert "\x1b" not in out.getvalue()
    first = lines[0]
    assert first.endswith("plain=simple")
    assert json.loads(first.split("schedule=", 1)[1].rsplit(" plain=", 1)[0]) == name
    # every line of the traceback is indented under its event: none starts like a log line
    assert all(line.startswith("    ") for line in lines[2:])
    assert len(lines) > 2
