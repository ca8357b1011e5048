"""Cohort sources: the entities due at a tick, from SQL on the app database or a static list.

A cohort row is normalized to `{"key": ..., "data": {...}, "source": ...}`. An SQL cohort must return a
`key` column; `data` (json/jsonb object) and `source` are optional. When there is no `data` column, the
row's other columns (all but `key` and `source`) become the payload, so `select id as key, plan from org`
gives `{"plan": ...}`.

SQL runs in a READ ONLY transaction, through a server-side cursor, so a cohort of millions is streamed
rather than loaded. The transaction is always rolled back, never committed: what PostgreSQL lets a read-only
transaction do (a large object, a NOTIFY, a session setting) does not outlive the read, and the connection is
closed with it (a session-level advisory lock goes too). One deadline, the cohort's `statement_timeout`,
bounds the whole read, from the connection to the last row, including the time the consumer spends between
fetches (the fan-out writes to the queue database while it streams): at the deadline the reader cancels the
running statement and, a moment later, cuts the connection, which nothing in the query can lift; the
server's `statement_timeout` and `idle_in_transaction_session_timeout` are set to it as well. Parameters are bound, never formatted: `%(tick)s`, `%(hour)s`,
`%(minute)s`, `%(date)s`, `%(weekday)s`, `%(schedule)s` (watchers: `%(stuck_after)s`, `%(now)s`,
`%(watcher)s`). psycopg reads every `%` of the query as a placeholder, so a literal `%` is written `%%`;
a query it would refuse fails before connecting, with the position and the fix (`config.placeholders`,
which `validate` reports as SCH009).
"""

from __future__ import annotations

import json
import math
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql
from psycopg.adapt import Buffer, Loader

from scheduler.config.models import format_duration
from scheduler.config.placeholders import problems, statement
from scheduler.errors import CohortError
from scheduler.sqlfile import load_queries
from scheduler.types import JsonText, Row

if TYPE_CHECKING:
    from collections.abc import Mapping

    from scheduler.config.models import Cohort, StaticRow

COHORT_FETCH_SIZE = 5000
APPLICATION_NAME = "scheduler:cohort"
RESERVED_COLUMNS = frozenset({"key", "data", "source"})
CUT_AFTER = timedelta(seconds=1)
"""How long after the deadline's cancel the reader waits before it cuts the connection (a cancel ends a
running statement at once; this is for a read whose consumer is not fetching, or a statement that outlives
its cancel)."""

_QUERIES = load_queries("scheduler.cohorts", "queries.sql")


def cohort_params(schedule: str, timezone: str, tick: datetime, **extra: Any) -> dict[str, Any]:
    """The bound parameters a cohort query may use, computed from the tick in the schedule's zone."""
    local = tick.astimezone(ZoneInfo(timezone))
    return {
        "tick": tick,
        "hour": local.hour,
        "minute": local.minute,
        "date": local.date(),
        "weekday": local.isoweekday(),
        "schedule": schedule,
        **extra,
    }


def normalize_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """Give a raw cohort row the shape the planner expects (see module docstring)."""
    if "data" in row:
        data = row["data"]
    else:
        data = {k: _jsonable(v) for k, v in row.items() if k not in RESERVED_COLUMNS}
    return {"key": row.get("key"), "data": data, "source": row.get("source")}


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value


def static_rows(cohort: Cohort) -> list[dict[str, Any]]:
    """The rows of a static cohort."""
    rows: list[StaticRow] = cohort.static or []
    return [{"key": r.key, "data": dict(r.data), "source": r.source} for r in rows]


class _JsonObjectTextLoader(Loader):
    """json/jsonb from the cohort: an object stays text (`JsonText`, parsed only if something looks inside;
    the pg-boss enqueue writes the text as it is); any other JSON value is parsed as psycopg would."""

    def load(self, data: Buffer) -> Any:
        text = str(data, "utf-8")
        # The server validated it: text opening with `{` is an object (only json keeps leading spaces).
        if text[:1] == "{" or text.lstrip()[:1] == "{":
            return JsonText(text)
        return json.loads(text)


@dataclass
class CohortStream:
    """An open cohort: `rows` is a one-shot iterator; `columns` are the SQL result's column names."""

    rows: Iterator[Row]
    total: int | None
    columns: tuple[str, ...]


@contextmanager
def open_sql_cohort(
    dsn: str,
    query: str,
    params: Mapping[str, Any],
    *,
    statement_timeout: timedelta,
    count: bool = False,
    where: str = "",
) -> Iterator[CohortStream]:
    """Run `query` on the app database and stream its rows (normalized).

    `count=True` first counts the cohort in the same snapshot (the `spread` stagger needs the total).
    `statement_timeout` is the deadline of the whole read (see module docstring). Raises CohortError with
    the database's message, or naming the deadline; `where` (file:line, schedule) prefixes it.
    """
    prefix = f"{where}: " if where else ""
    refused = problems(query, params.keys())
    if refused:
        # psycopg would raise this at every run (some of it as TypeError or UnicodeDecodeError).
        first = refused[0]
        raise CohortError(
            f"{prefix}cohort query cannot run: at line {first.line}, column {first.column} of the query, "
            f"{first.message}"
        )
    deadline = _Deadline(statement_timeout, prefix)
    try:
        conn = psycopg.connect(
            dsn,
            application_name=APPLICATION_NAME,
            autocommit=False,
            connect_timeout=max(2, math.ceil(statement_timeout.total_seconds())),
        )
    except psycopg.Error as exc:
        raise CohortError(f"{prefix}cannot connect to the app database: {_first_line(exc)}") from exc
    reader = _Reader(conn, deadline)
    try:
        conn.read_only = True
        # One snapshot for the count and the rows (READ COMMITTED would give each statement its own, so a
        # row committed in between would be read but not counted).
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        for json_type in ("json", "jsonb"):
            conn.adapters.register_loader(json_type, _JsonObjectTextLoader)
        # The user's query is configuration written by the operator, not a value: it is the statement.
        user_sql = sql.SQL(statement(query))
        # Only the cohort's own statements are labelled "cohort query failed": an error raised by the
        # caller's code inside the `with` block (the queue database) passes through unchanged, and a
        # fetch error of the cohort is converted by `_stream` where it happens.
        try:
            conn.execute(_QUERIES["session_limits"], {"limit": f"{deadline.milliseconds}ms"})
            total: int | None = None
            if count:
                counted = conn.execute(
                    sql.SQL(_QUERIES["cohort_count"]).format(cohort=user_sql), params
                ).fetchone()
                total = int(counted[0]) if counted else 0
            cur = conn.cursor(name="scheduler_cohort")
            cur.execute(user_sql, params)
        except psycopg.Error as exc:
            raise deadline.error(exc) from exc
        deadline.check()
        columns = tuple(d.name for d in cur.description or ())
        if "key" not in columns:
            raise CohortError(
                f"{prefix}the cohort query returns columns {', '.join(columns) or '(none)'} but no `key`; "
                "alias the entity id, e.g. `select id as key, ...`"
            )
        yield CohortStream(rows=_stream(cur, columns, reader), total=total, columns=columns)
    finally:
        reader.close()


class _Deadline:
    """The one deadline of a cohort read, on the monotonic clock, and the errors that name it."""

    def __init__(self, limit: timedelta, prefix: str) -> None:
        self.limit = limit
        self.milliseconds = max(1, math.ceil(limit.total_seconds() * 1000))
        self.at = time.monotonic() + self.milliseconds / 1000
        self.prefix = prefix
        self.cancelled = threading.Event()

    def passed(self) -> bool:
        return self.cancelled.is_set() or time.monotonic() >= self.at

    def check(self) -> None:
        if self.passed():
            raise self.error(None)

    def error(self, exc: psycopg.Error | None) -> CohortError:
        """`exc` as the cohort's error; past the deadline, the deadline's error (the cancel or the cut
        connection is how the read ended, not what went wrong)."""
        if exc is not None and not self.passed():
            return CohortError(f"{self.prefix}cohort query failed: {_first_line(exc)}")
        return CohortError(
            f"{self.prefix}the cohort read passed its deadline of {format_duration(self.limit)} and was "
            "cancelled; its `statement_timeout` bounds the whole read (the query, every fetch and the work "
            "done with the rows between fetches): raise it or make the query cheaper"
        )


class _Reader:
    """The cohort's connection under its deadline: a watchdog thread cancels the running statement at the
    deadline and, `CUT_AFTER` later, shuts the connection's socket down if the read is still open (the
    server then ends the session, whatever the query set). `close` rolls back, stops the watchdog and closes
    the connection, once, from whichever thread comes first (the last fetch or the `with` block's exit)."""

    def __init__(self, conn: psycopg.Connection[Any], deadline: _Deadline) -> None:
        self.conn = conn
        self.deadline = deadline
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._watchdog = threading.Thread(target=self._watch, name="scheduler-cohort-deadline", daemon=True)
        self._watchdog.start()

    def _watch(self) -> None:
        if self._done.wait(max(0.0, self.deadline.at - time.monotonic())):
            return
        self.deadline.cancelled.set()
        with suppress(psycopg.Error):  # the cut below does not depend on the cancel
            self.conn.cancel_safe(timeout=CUT_AFTER.total_seconds())
        if self._done.wait(CUT_AFTER.total_seconds()):
            return
        # The socket stays open (its descriptor is the connection's, closed only after this thread has
        # ended); shutting it down makes a blocked fetch fail at once and the server see the client gone.
        with suppress(OSError, psycopg.Error), socket.socket(fileno=os.dup(self.conn.fileno())) as sock:
            sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with self._lock:
            if self.conn.closed:
                return
            try:
                # Never committed: a read-only transaction may still create large objects, notify, set
                # session settings; none of it may outlive the read.
                self.conn.rollback()
            except psycopg.Error:
                pass  # a cancelled or cut connection: closing it ends the transaction on the server
            finally:
                self._done.set()
                self._watchdog.join()
                self.conn.close()


def _stream(cur: psycopg.Cursor[tuple[Any, ...]], columns: tuple[str, ...], reader: _Reader) -> Iterator[Row]:
    """The cursor's rows, normalized like `normalize_row` (a repeated column name keeps its last value),
    fetched `COHORT_FETCH_SIZE` at a time as plain tuples: this runs once per row of cohorts of millions.
    The deadline is checked before each fetch; the read ends (rolled back, closed) after the last row."""
    position = {name: i for i, name in enumerate(columns)}
    key_at, data_at, source_at = position["key"], position.get("data"), position.get("source")
    payload = [(name, i) for name, i in position.items() if name not in RESERVED_COLUMNS]
    deadline = reader.deadline
    while True:
        deadline.check()
        try:
            rows = cur.fetchmany(COHORT_FETCH_SIZE)
        except psycopg.Error as exc:
            raise deadline.error(exc) from exc
        for row in rows:
            yield {
                "key": row[key_at],
                "data": row[data_at] if data_at is not None else {n: _jsonable(row[i]) for n, i in payload},
                "source": None if source_at is None else row[source_at],
            }
        if len(rows) < COHORT_FETCH_SIZE:  # a short FETCH is the cursor's last
            break
    # Every row is read: end the transaction now rather than when the caller's block exits, so the snapshot
    # is not held while the fan-out finishes its writes.
    reader.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    diag = getattr(exc, "diag", None)
    hint = getattr(diag, "message_hint", None) if diag is not None else None
    return text + (f" (hint: {hint})" if hint and hint not in text else "")
