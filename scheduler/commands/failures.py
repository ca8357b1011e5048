"""Ordinary mistakes a command meets at its edges (a database that does not answer, a port in use, an
environment variable not set), each turned into one line that says what is wrong and how to fix it.

`cli.main` calls `explain` for an exception a command did not handle itself; anything it does not know
is a bug and keeps its traceback (redacted). The line never holds a DSN or a secret: psycopg's connection
errors name the host, port, user and database, never the password, the config's own errors name only the
variable, and every line goes through a `Redactor` of this process's environment all the same (libpq's
errors about a DSN it cannot parse quote it).
"""

from __future__ import annotations

import errno
import re
import traceback

import psycopg

from scheduler.errors import SchedulerError
from scheduler.observe.redact import Redactor

_CONNECT_PREFIX = re.compile(r"^connection failed:\s*")
_SERVER_HINT = re.compile(r"\s*Is the server running [^?]*\?")
_BAD_DSN = re.compile(r"connection info string| in URI|percent-encoded|invalid connection option")
"""libpq's messages about a DSN it could not parse (they quote it: the line is redacted)."""


def explain(exc: BaseException) -> str | None:
    """One line for an ordinary failure (what, then the fix), or None when `exc` is not one. Redacted."""
    line = _explain(exc)
    return None if line is None else Redactor.from_environ().text(line)


def _explain(exc: BaseException) -> str | None:
    if isinstance(exc, psycopg.OperationalError):
        return explain_connection(exc)
    if isinstance(exc, psycopg.ProgrammingError) and _BAD_DSN.search(str(exc)):
        return (
            f"a database's DSN is not a valid connection string: {' '.join(str(exc).split())}; fix the "
            "environment variable the files name for it (e.g. postgresql://user@host:5432/dbname, "
            "or key=value pairs)"
        )
    if isinstance(exc, SchedulerError):
        return " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return (
            "the health port is already in use by another process; stop it, or set SCHEDULER_HEALTH_PORT "
            "to a free port (0 picks one)"
        )
    return None


def explain_connection(exc: psycopg.OperationalError) -> str:
    """Why a database connection failed, in one line, with the fix for the usual causes."""
    text = " ".join(str(exc).split())
    reason = _SERVER_HINT.sub("", _CONNECT_PREFIX.sub("", text)).rstrip()
    lowered = text.lower()
    if "database" in lowered and "does not exist" in lowered:
        fix = "create it (`createdb NAME`) or point the DSN's environment variable at an existing database"
    elif "password authentication failed" in lowered or "no pg_hba.conf entry" in lowered:
        fix = "check the user and password in the DSN, and the server's pg_hba.conf"
    elif "role" in lowered and ("does not exist" in lowered or "not permitted to log in" in lowered):
        fix = "connect as a role that exists and may log in (CREATE ROLE ... LOGIN), or fix the DSN's user"
    elif "connection refused" in lowered or "no such file or directory" in lowered:
        fix = "is PostgreSQL running there? check the host and port in the DSN"
    elif "timeout" in lowered or "timed out" in lowered:
        fix = "the host did not answer in time; check the host, the port and the network (or firewall)"
    elif "could not translate host name" in lowered or "name or service not known" in lowered:
        fix = "the host name does not resolve; check the host in the DSN"
    else:
        fix = "check the DSN in the database's environment variable and that the server accepts connections"
    return f"cannot connect to the database: {reason}; {fix}"


def oneline(exc: BaseException) -> str:
    """`explain(exc)`, or the exception's own text on one line (redacted)."""
    return explain(exc) or Redactor.from_environ().text(" ".join(str(exc).split())) or type(exc).__name__


def redacted_traceback(exc: BaseException) -> str:
    """The traceback Python would print for `exc`, without the secrets its messages may quote."""
    return Redactor.from_environ().text("".join(traceback.format_exception(exc)))
