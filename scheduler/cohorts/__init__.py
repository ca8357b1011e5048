"""Cohort sources: the entities due at a tick, from SQL on the app database or a static list.

A cohort row is normalized to `{"key": ..., "data": {...}, "source": ...}`. An SQL cohort must return a
`key` column; `data` (json/jsonb object) and `source` are optional. When there is no `data` column, the
row's other columns (all but `key` and `source`) become the payload, so `select id as key, plan from org`
gives `{"plan": ...}`.

SQL runs in a READ ONLY transaction with a statement timeout, through a server-side cursor, so a cohort
of millions is streamed rather than loaded. Parameters are bound, never formatted: `%(tick)s`, `%(hour)s`,
`%(minute)s`, `%(date)s`, `%(weekday)s`, `%(schedule)s` (and `%(stuck_after)s` for watchers). A literal
`%` in the query is written `%%`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql
from psycopg.adapt import Buffer, Loader

from scheduler.errors import CohortError
from scheduler.types import JsonText, Row

if TYPE_CHECKING:
    from collections.abc import Mapping

    from scheduler.config.models import Cohort, StaticRow

COHORT_FETCH_SIZE = 5000
APPLICATION_NAME = "scheduler:cohort"
RESERVED_COLUMNS = frozenset({"key", "data", "source"})


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
    Raises CohortError with the database's message; `where` (file:line, schedule) prefixes it.
    """
    prefix = f"{where}: " if where else ""
    try:
        conn = psycopg.connect(dsn, application_name=APPLICATION_NAME, autocommit=False)
    except psycopg.Error as exc:
        raise CohortError(f"{prefix}cannot connect to the app database: {_first_line(exc)}") from exc
    try:
        conn.read_only = True
        # One snapshot for the count and the rows (READ COMMITTED would give each statement its own, so a
        # row committed in between would be read but not counted).
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        for json_type in ("json", "jsonb"):
            conn.adapters.register_loader(json_type, _JsonObjectTextLoader)
        # The user's query is configuration written by the operator, not a value: it is the statement.
        user_sql = sql.SQL(query.strip().rstrip(";"))
        with conn.transaction():
            # Only the cohort's own statements are labelled "cohort query failed": an error raised by the
            # caller's code inside the `with` block (the queue database) passes through unchanged, and a
            # fetch error of the cohort is converted by `_stream` where it happens.
            try:
                conn.execute(
                    "SELECT set_config('statement_timeout', %s, true)",
                    (f"{int(statement_timeout.total_seconds() * 1000)}ms",),
                )
                total: int | None = None
                if count:
                    counted = conn.execute(
                        sql.SQL("SELECT count(*) FROM ({}) AS cohort").format(user_sql), params
                    ).fetchone()
                    total = int(counted[0]) if counted else 0
                cur = conn.cursor(name="scheduler_cohort")
                cur.execute(user_sql, params)
            except psycopg.Error as exc:
                raise CohortError(f"{prefix}cohort query failed: {_first_line(exc)}") from exc
            columns = tuple(d.name for d in cur.description or ())
            if "key" not in columns:
                raise CohortError(
                    f"{prefix}the cohort query returns columns {', '.join(columns) or '(none)'} but no `key`; "
                    "alias the entity id, e.g. `select id as key, ...`"
                )
            yield CohortStream(rows=_stream(cur, columns, prefix), total=total, columns=columns)
    finally:
        conn.close()


def _stream(cur: psycopg.Cursor[tuple[Any, ...]], columns: tuple[str, ...], prefix: str) -> Iterator[Row]:
    """The cursor's rows, normalized like `normalize_row` (a repeated column name keeps its last value),
    fetched `COHORT_FETCH_SIZE` at a time as plain tuples: this runs once per row of cohorts of millions."""
    position = {name: i for i, name in enumerate(columns)}
    key_at, data_at, source_at = position["key"], position.get("data"), position.get("source")
    payload = [(name, i) for name, i in position.items() if name not in RESERVED_COLUMNS]
    try:
        while rows := cur.fetchmany(COHORT_FETCH_SIZE):
            for row in rows:
                yield {
                    "key": row[key_at],
                    "data": row[data_at]
                    if data_at is not None
                    else {n: _jsonable(row[i]) for n, i in payload},
                    "source": None if source_at is None else row[source_at],
                }
    except psycopg.Error as exc:
        raise CohortError(f"{prefix}cohort query failed: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    diag = getattr(exc, "diag", None)
    hint = getattr(diag, "message_hint", None) if diag is not None else None
    return text + (f" (hint: {hint})" if hint and hint not in text else "")
