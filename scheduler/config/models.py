"""The schedule-file format as typed models (pydantic v2). Pure: no I/O.

The YAML format in DESIGN.md is public: these models keep its keys and their meaning, and extend it.
Locations (file, line, column) are not stored on the models; the loader keeps them beside the config in a
`Locations` map keyed by the path of a value (`("schedules", "insight-digest", "cron")`).
"""

from __future__ import annotations

import difflib
import enum
import re
import zoneinfo
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    field_validator,
)

from scheduler.planning.keys import template_fields
from scheduler.types import BackendKind, DropReason

_DURATION = re.compile(r"(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> timedelta:
    """Parse `90s`, `60m`, `1h30m`, `2d`, or a number of seconds, into a timedelta.

    Raises ValueError with the accepted forms when the value does not parse.
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; write e.g. 90s, 60m, 1h30m, 2d")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"duration {value!r} is negative")
        return timedelta(seconds=float(value))
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        pos = 0
        total = 0.0
        for match in _DURATION.finditer(text):
            if match.start() != pos:
                break
            total += float(match.group("n")) * _UNIT_SECONDS[match.group("unit")]
            pos = match.end()
        if text and pos == len(text):
            return timedelta(seconds=total)
    raise ValueError(
        f"{value!r} is not a duration; write a number with a unit (ms, s, m, h, d), e.g. 90s, 60m, 1h30m, 2d"
    )


def format_duration(value: timedelta) -> str:
    """Render a duration the way users write it (`1h30m`, `90s` stays `1m30s`)."""
    seconds = value.total_seconds()
    if seconds == 0:
        return "0s"
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{int(n)}{unit}")
    if seconds:
        parts.append(f"{seconds:g}s")
    return "".join(parts)


PGBOSS_POLICIES = ("standard", "short", "singleton", "stately", "exclusive", "key_strict_fifo")
"""The queue policies pg-boss 12 knows (`research/`); `standard` is its default."""

_CRON_FIELDS = "minute (0-59) hour (0-23) day-of-month (1-31) month (1-12) day-of-week (0-6, 0 = Sunday)"
_CRON_ANCHOR = datetime(2000, 1, 1)  # a leap year, so `0 0 29 2 *` is seen to fire


CRON_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
"""Macros accepted in place of 5 fields (the same set `planning.ticks` expands)."""


def check_cron(expr: str) -> str:
    """Return `expr` if it is a 5-field cron expression (or a macro) that fires; raise ValueError saying how to fix it."""
    if expr.strip().lower() in CRON_MACROS:
        return expr
    fields = expr.split()
    fix = f'write 5 fields: {_CRON_FIELDS}, e.g. "0 * * * *" for every hour, or a macro such as @daily'
    if len(fields) != 5:
        raise ValueError(f"cron {expr!r} has {len(fields)} fields, not 5; {fix}")
    try:
        # Two leap cycles from a fixed anchor: enough to see any 5-field expression fire, and pure.
        croniter(expr, _CRON_ANCHOR).get_next(datetime)
    except CroniterBadDateError:
        raise ValueError(
            f"cron {expr!r} never fires (no such day in any month); fix the day-of-month or month field"
        ) from None
    except (CroniterBadCronError, CroniterError, ValueError, KeyError) as exc:
        raise ValueError(f"cron {expr!r} is not a valid cron expression ({exc}); {fix}") from None
    return expr


def check_timezone(name: str) -> str:
    """Return `name` if it is an IANA time zone; raise ValueError suggesting close names."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        pass
    else:
        return name
    known = sorted(zoneinfo.available_timezones())
    by_lower = {z.lower(): z for z in known}
    close = [by_lower[z] for z in difflib.get_close_matches(name.lower(), by_lower, n=3, cutoff=0.6)]
    hint = f"did you mean {', '.join(repr(z) for z in close)}? " if close else ""
    raise ValueError(f"unknown time zone {name!r}; {hint}write an IANA name such as 'UTC' or 'Europe/Berlin'")


def check_policy(policy: str | None) -> str | None:
    """Return `policy` if pg-boss knows it; raise ValueError listing the policies."""
    if policy is None or policy in PGBOSS_POLICIES:
        return policy
    close = difflib.get_close_matches(policy, PGBOSS_POLICIES, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(
        f"policy {policy!r} is not a pg-boss policy{hint}; use one of {', '.join(PGBOSS_POLICIES)}"
    )


def check_template(template: str | None) -> str | None:
    """Return `template` if it parses as a singleton-key template (TemplateError is a ValueError)."""
    if template is not None:
        template_fields(template)
    return template


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    Field(json_schema_extra={"type": "string", "pattern": r"^(\d+(\.\d+)?(ms|s|m|h|d))+$"}),
]
"""A length of time written `90s`, `60m`, `1h30m`, `2d` (or a number of seconds)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class StaggerStrategy(enum.Enum):
    """How `start_after` offsets are spread across the stagger window."""

    NONE = "none"
    """Every job starts at the tick."""
    SPREAD = "spread"
    """Evenly across the window, in cohort order."""
    HASH = "hash"
    """Stable per key: the same entity gets the same offset at every tick."""


class CatchUpPolicy(enum.Enum):
    """What a restarted sidecar does with ticks it missed."""

    ALL = "all"
    """Fan out every missed tick inside the window, in order."""
    LATEST = "latest"
    """Fan out only the newest missed tick inside the window; record the others as skipped."""
    NONE = "none"
    """Fan out no missed tick; record them as skipped."""


class DatabaseRef(_Model):
    """A database, by reference: its DSN comes from an environment variable and is never written in a file."""

    dsn_env: str = Field(description="Name of the environment variable holding the DSN.")


class QueueDef(_Model):
    """A queue: logical name (the key) → real queue in a queue system."""

    name: str = Field(description="The real queue name in the queue system.")
    backend: BackendKind
    database: str = Field("queue", description="Key of `databases:` holding the queue tables.")
    policy: str | None = Field(
        None,
        description="Declared pg-boss policy: standard, short, singleton, stately, exclusive, key_strict_fifo.",
    )
    task: str | None = Field(None, description="procrastinate: the registered task name (required).")
    db_schema: str | None = Field(
        None,
        alias="schema",
        description="Schema of the queue system's tables (pg-boss default `pgboss`).",
    )
    create_missing: bool = Field(
        False,
        description="pg-boss: create the queue (with the declared policy) if it does not exist.",
    )

    _check_policy = field_validator("policy")(check_policy)


class Lane(_Model):
    """A routing rule: a row's `source` picks the queue; unknown sources go to `default`."""

    default: str = Field(description="Logical queue for rows whose source has no route.")
    routes: dict[str, str] = Field(default_factory=dict, description="source → logical queue.")


class StaticRow(_Model):
    """One entity of a static cohort."""

    key: str | int
    data: dict[str, Any] = Field(default_factory=dict)
    source: str | None = None


class Cohort(_Model):
    """Which entities are due at a tick: an SQL query (columns `key`, `data`, optional `source`) or a static list."""

    sql: str | None = Field(
        None,
        description="Query on the app database; bound parameters %(tick)s, %(hour)s, %(schedule)s, ...",
    )
    static: list[StaticRow] | None = None
    database: str = Field("app", description="Key of `databases:` the SQL runs on.")
    statement_timeout: Duration = Field(
        timedelta(minutes=10),
        gt=timedelta(0),
        le=timedelta(days=1),
        description="Deadline of the whole cohort read (the query, every fetch, and the fan-out's writes "
        "between fetches; a million entities take 20-35 s); nothing in the query can lift it.",
    )


class Stagger(_Model):
    """Spread the cohort's `start_after` across `[tick, tick + window)`."""

    window: Duration = Field(timedelta(0))
    strategy: StaggerStrategy = StaggerStrategy.NONE


class CatchUp(_Model):
    """Missed ticks inside `window` are fanned out once (per `policy`); older ones are recorded as skipped."""

    window: Duration = Field(timedelta(hours=1))
    policy: CatchUpPolicy = CatchUpPolicy.ALL


def _catch_up(value: object) -> object:
    # `catch_up: none|latest|all` or `catch_up: 2h` as shorthands for the full object.
    if isinstance(value, str):
        if value in {p.value for p in CatchUpPolicy}:
            return {"policy": value}
        return {"window": value}
    return value


class Schedule(_Model):
    """A named cron definition: when, which cohort, where to, how to stagger, which key."""

    cron: str = Field(description="5-field cron expression, evaluated in `timezone`.")
    timezone: str = Field("UTC", description="IANA time zone, e.g. Europe/Berlin.")
    cohort: Cohort
    queue: str | None = Field(None, description="Logical queue (a key of `queues:`).")
    lane: str | None = Field(None, description="Lane (a key of `lanes:`); rows route by `source`.")
    singleton_key: str | None = Field(
        None, description='Per-entity dedup key template over the row, e.g. "insight:{key}".'
    )
    stagger: Stagger = Field(default_factory=Stagger)
    priority: int = 0
    retry_limit: int | None = None
    retry_delay: Duration | None = None
    expire_in: Duration | None = None
    catch_up: Annotated[CatchUp, BeforeValidator(_catch_up)] = Field(default_factory=CatchUp)
    expected_drops: list[DropReason] = Field(
        default_factory=list,
        description="Drop reasons that are normal for this schedule (logged at info, not warning).",
    )
    enabled: bool = True

    _check_cron = field_validator("cron")(check_cron)
    _check_timezone = field_validator("timezone")(check_timezone)
    _check_singleton_key = field_validator("singleton_key")(check_template)


class Watcher(_Model):
    """A periodic scan for stuck work that re-emits one job per stuck entity."""

    every: Duration = Field(timedelta(seconds=30))
    stuck_after: Duration = Field(timedelta(seconds=90))
    sql: str | None = Field(
        None, description="Query on the app database returning `key` (+ `data`, `source`)."
    )
    database: str = "app"
    queue: str | None = None
    lane: str | None = None
    singleton_key: str | None = Field(None, description="Defaults to `<watcher>:{key}`.")
    max_reemits: int = 3
    reemit_window: Duration = Field(timedelta(hours=1))
    statement_timeout: Duration = Field(
        timedelta(seconds=30),
        gt=timedelta(0),
        le=timedelta(days=1),
        description="Deadline of the whole read of `sql` (the query, every fetch, and the re-emits between "
        "fetches); nothing in the query can lift it.",
    )
    priority: int = 0
    queue_level: bool = Field(
        False,
        description="Report jobs of `queue` stuck in its active state (stale heartbeat or expiry, no live worker).",
    )
    reemit_stalled: bool = Field(
        False,
        description="With `queue_level`: also re-emit each stalled job (same payload and singleton key).",
    )

    _check_singleton_key = field_validator("singleton_key")(check_template)


class Config(_Model):
    """A whole configuration: one file, or several merged."""

    version: Literal[1] = 1
    databases: dict[str, DatabaseRef] = Field(default_factory=dict)
    queues: dict[str, QueueDef] = Field(default_factory=dict)
    lanes: dict[str, Lane] = Field(default_factory=dict)
    aliases: dict[str, str] = Field(default_factory=dict, description="old real queue name → logical queue.")
    schedules: dict[str, Schedule] = Field(default_factory=dict)
    watchers: dict[str, Watcher] = Field(default_factory=dict)


class ResolvedDatabase(_Model):
    """A database with its DSN read from the environment (never printed)."""

    name: str
    dsn: SecretStr
