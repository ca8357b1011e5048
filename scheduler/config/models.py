"""The schedule-file format as typed models (pydantic v2). Pure: no I/O.

The YAML format in DESIGN.md is public: these models keep its keys and their meaning, and extend it.
Locations (file, line, column) are not stored on the models; the loader keeps them beside the config in a
`Locations` map keyed by the path of a value (`("schedules", "insight-digest", "cron")`).
"""

from __future__ import annotations

import difflib
import enum
import functools
import math
import re
import zoneinfo
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from croniter import CroniterBadDateError, croniter
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    field_validator,
    model_validator,
)

from scheduler.planning.keys import template_fields
from scheduler.types import BackendKind, DropReason

if TYPE_CHECKING:
    from collections.abc import Callable

_DURATION = re.compile(r"(?P<n>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>ms|s|m|h|d)", re.ASCII)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_TEXT_LIMIT = 100
_DURATION_MAX = timedelta(days=3660)
"""No duration is longer than about ten years, whatever the field (each field has its own, smaller bound)."""

MAX_WINDOW = timedelta(days=366)
"""The longest stagger, catch-up or re-emit window and `stuck_after`: a year, the longest gap of a yearly cron.
Bounded so that `tick ± window` and `now - window` stay far inside datetime's range."""
MAX_EXPIRE_IN = timedelta(hours=24)
"""The longest `expire_in` (pg-boss refuses an expiration above 24 hours)."""
MIN_WATCH_EVERY = timedelta(seconds=1)
"""The shortest interval between two scans of a watcher."""


def parse_duration(value: object) -> timedelta:
    """Parse `90s`, `60m`, `1h30m`, `2d`, or a number of seconds, into a timedelta.

    Raises ValueError with the accepted forms when the value does not parse.
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; write e.g. 90s, 60m, 1h30m, 2d")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"duration {value!r} is not a finite number; write e.g. 90s, 60m, 1h30m, 2d")
        if value < 0:
            raise ValueError(f"duration {value!r} is negative")
        return _seconds(float(value), value)
    if isinstance(value, str) and len(value) <= _DURATION_TEXT_LIMIT:
        text = value.strip().replace(" ", "")
        pos = 0
        total = 0.0
        for match in _DURATION.finditer(text):
            if match.start() != pos:
                break
            total += float(match.group("n")) * _UNIT_SECONDS[match.group("unit")]
            pos = match.end()
        if text and pos == len(text):
            return _seconds(total, value)
    shown = repr(value) if not isinstance(value, str) or len(value) <= 40 else repr(value[:40] + "…")
    raise ValueError(
        f"{shown} is not a duration; write a number with a unit (ms, s, m, h, d), e.g. 90s, 60m, 1h30m, 2d"
    )


def _seconds(total: float, written: object) -> timedelta:
    # Past any bound a field has (`bounded`), and far below where timedelta overflows.
    if not math.isfinite(total) or total > _DURATION_MAX.total_seconds():
        raise ValueError(
            f"duration {written!r} is too long; no duration may exceed {format_duration(_DURATION_MAX)}"
        )
    return timedelta(seconds=total)


def bounded(
    what: str, most: timedelta, *, least: timedelta = timedelta(0), why: str = ""
) -> Callable[[timedelta], timedelta]:
    """An after-validator keeping a duration field within `[least, most]`, with a message naming the bound."""
    because = f" ({why})" if why else ""

    def check(value: timedelta) -> timedelta:
        if value > most:
            raise ValueError(
                f"{what} {format_duration(value)} is longer than {format_duration(most)}, the limit{because}; "
                f"write at most {format_duration(most)}"
            )
        if value < least:
            raise ValueError(
                f"{what} {format_duration(value)} is shorter than {format_duration(least)}, the minimum"
                f"{because}; write at least {format_duration(least)}"
            )
        return value

    return check


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


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_CRON_FIELD_RULES: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day-of-month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 7, _DAYS),
)
_CRON_ITEM = re.compile(
    r"(?P<range>\*|(?P<low>[0-9]+|[a-z]{3})(?:-(?P<high>[0-9]+|[a-z]{3}))?)(?:/(?P<step>[0-9]+))?"
)
_CRON_TEXT_LIMIT = 200


def _cron_value(text: str, low: int, high: int, names: tuple[str, ...]) -> int | None:
    if text.isdigit():
        value = int(text)
    elif text in names:
        value = names.index(text) + low
    else:
        return None
    return value if low <= value <= high else None


def _check_cron_field(field: str, name: str, low: int, high: int, names: tuple[str, ...]) -> str | None:
    """Why one field is not standard cron, or None if it is (numbers, names, `*`, ranges, lists, steps)."""
    named = f" or a name ({names[0]}…{names[-1]})" if names else ""
    for item in field.lower().split(","):
        match = _CRON_ITEM.fullmatch(item)
        if match is None:
            return (
                f"the {name} field {field!r} is not standard cron: write numbers ({low}-{high}){named}, `*`, "
                "ranges `a-b`, lists `a,b` and steps `*/n` or `a-b/n` (croniter's extensions such as R, H, "
                "L, W, # and ? are not deterministic or not portable, and are refused)"
            )
        first = last = None
        if match["low"] is not None:
            first = _cron_value(match["low"], low, high, names)
            last = _cron_value(match["high"], low, high, names) if match["high"] is not None else first
            if first is None or last is None:
                return f"the {name} field {field!r} has a value that is not {low}-{high}{named}"
            if first > last:
                return f"the {name} field {field!r} has a range that runs backwards; write it low-high"
        step = match["step"]
        if step is not None and not 1 <= int(step) <= high - low + 1:
            return f"the {name} field {field!r} has a step outside 1-{high - low + 1}"
    return None


def check_cron(expr: str) -> str:
    """Return `expr` if it is standard 5-field cron (or a macro) that fires; raise ValueError saying how to fix it.

    Standard means what every cron reads the same way: numbers, month and day names, `*`, ranges, lists and
    steps. croniter's extensions are refused: `R` (random) gives each replica its own ticks, `H` (hashed)
    depends on an id, and `L`, `W`, `#`, `?`, seconds and year fields are not portable cron.
    """
    shown = repr(expr) if len(expr) <= 60 else repr(expr[:60] + "…")
    if len(expr) > _CRON_TEXT_LIMIT:
        raise ValueError(f"cron {shown} is longer than {_CRON_TEXT_LIMIT} characters; write 5 fields")
    if expr.strip().lower() in CRON_MACROS:
        return expr
    fields = expr.split()
    fix = f'write 5 fields: {_CRON_FIELDS}, e.g. "0 * * * *" for every hour, or a macro such as @daily'
    if len(fields) == 1 and fields[0].startswith("@"):
        raise ValueError(
            f"cron {shown} is not a macro this scheduler knows (it knows {', '.join(CRON_MACROS)}); {fix}"
        )
    if len(fields) != 5:
        raise ValueError(f"cron {shown} has {len(fields)} fields, not 5; {fix}")
    for field, (name, low, high, names) in zip(fields, _CRON_FIELD_RULES, strict=True):
        problem = _check_cron_field(field, name, low, high, names)
        if problem is not None:
            raise ValueError(f"cron {shown}: {problem}")
    try:
        # Two leap cycles from a fixed anchor: enough to see any 5-field expression fire, and pure.
        croniter(expr, _CRON_ANCHOR).get_next(datetime)
    except CroniterBadDateError:
        raise ValueError(
            f"cron {shown} never fires (no such day in any month); fix the day-of-month or month field"
        ) from None
    except Exception as exc:  # croniter's own checks, whatever it raises
        raise ValueError(f"cron {shown} is not a valid cron expression ({exc}); {fix}") from None
    return expr


_HOST_ZONES = frozenset({"localtime", "posixrules"})
"""Zone files that name the host's own setting, not a place: two replicas could read them differently."""
_ZONE_PREFIXES = ("posix/", "right/")
"""Copies of the zone database (`right/` counts leap seconds): write the zone without the prefix."""


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(
        z for z in zoneinfo.available_timezones() if z not in _HOST_ZONES and not z.startswith(_ZONE_PREFIXES)
    )


def check_timezone(name: str) -> str:
    """Return `name` if it is an IANA time zone; raise ValueError suggesting close names.

    Only the zones of the IANA database are accepted (`zoneinfo.available_timezones`): not a directory
    (`America`), a file of the zone database that is not a zone, the host's `localtime`, or a `posix/` or
    `right/` copy.
    """
    if name in _zones():
        try:
            zoneinfo.ZoneInfo(name)
        except Exception:
            pass
        else:
            return name
    shown = repr(name) if len(name) <= 60 else repr(name[:60] + "…")
    hint = ""
    if len(name) <= 60:
        by_lower = {z.lower(): z for z in sorted(_zones())}
        wanted = name.lower().removeprefix("posix/").removeprefix("right/")
        close = [by_lower[z] for z in difflib.get_close_matches(wanted, by_lower, n=3, cutoff=0.6)]
        if wanted in by_lower and by_lower[wanted] not in close:
            close.insert(0, by_lower[wanted])
        hint = f"did you mean {', '.join(repr(z) for z in close)}? " if close else ""
    raise ValueError(f"unknown time zone {shown}; {hint}write an IANA name such as 'UTC' or 'Europe/Berlin'")


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

Window = Annotated[Duration, AfterValidator(bounded("the window", MAX_WINDOW))]
"""A stagger, catch-up or re-emit window (at most `MAX_WINDOW`)."""
RetryDelay = Annotated[Duration, AfterValidator(bounded("the retry delay", MAX_WINDOW))]
ExpireIn = Annotated[
    Duration,
    AfterValidator(
        bounded(
            "the expiry",
            MAX_EXPIRE_IN,
            least=timedelta(milliseconds=1),
            why="pg-boss expires a job after at most 24 hours",
        )
    ),
]
WatchEvery = Annotated[
    Duration, AfterValidator(bounded("the scan interval", MAX_WINDOW, least=MIN_WATCH_EVERY))
]

INT4_MIN, INT4_MAX = -(2**31), 2**31 - 1
"""The range of PostgreSQL's `integer`, the column type of priorities and retry limits in both queue systems."""
Int4 = Annotated[int, Field(ge=INT4_MIN, le=INT4_MAX)]
Count = Annotated[int, Field(ge=0, le=INT4_MAX)]
Int4Key = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
"""A static row's numeric key: a bigint, like an id column."""

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/]{0,127}", re.ASCII)
_PGBOSS_QUEUE_NAME = re.compile(r"[A-Za-z0-9_.\-/]+", re.ASCII)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}", re.ASCII)


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 60 else repr(text[:60] + "…")


def check_name(name: str) -> str:
    """Return `name` if it is a sane name for a database, queue, lane, schedule or watcher; else ValueError.

    Names are ASCII letters, digits, `_`, `-`, `.` and `/` (pg-boss's own rule for queue names), start with a
    letter, digit or `_`, and are at most 128 characters: they are printed in logs, findings, metrics and
    `status`, written into the ledger and job keys, and typed on the command line, so a newline or a terminal
    escape in one could forge a log line.
    """
    if _NAME.fullmatch(name):
        return name
    raise ValueError(
        f"name {_shown(name)} is not allowed; a name holds ASCII letters, digits, `_`, `-`, `.` and `/`, starts "
        "with a letter, digit or `_`, and has at most 128 characters; rename it"
    )


def check_label(text: str) -> str:
    """Return `text` if it is printable on one line (a real queue name, a task, a source); else ValueError."""
    if text and len(text) <= 200 and text.isprintable():
        return text
    if not text:
        raise ValueError("the name is empty; write a name")
    raise ValueError(
        f"{_shown(text)} is not allowed: it must be printable text on one line (no control characters, "
        "line breaks or terminal escapes), at most 200 characters"
    )


def check_env_name(name: str) -> str:
    """Return `name` if it is an environment variable name (`APP_DATABASE_URL`); else ValueError."""
    if _ENV_NAME.fullmatch(name):
        return name
    raise ValueError(
        f"{_shown(name)} is not an environment variable name; write letters, digits and `_`, "
        "e.g. APP_DATABASE_URL"
    )


_NAMES_SCHEMA: dict[str, Any] = {"propertyNames": {"pattern": f"^{_NAME.pattern}$"}}

Name = Annotated[str, AfterValidator(check_name)]
"""A key of `databases:`, `queues:`, `lanes:`, `schedules:` or `watchers:` (see `check_name`)."""
Label = Annotated[str, AfterValidator(check_label)]
"""A name this scheduler does not own (a real queue name, a task, a row's source): printable, one line."""


def check_json(value: object, path: str = "data") -> None:
    """Raise ValueError unless `value` is JSON that both queue systems store as it is (jsonb).

    Refused: values YAML reads but JSON has not (a date, bytes), numbers that are not finite (`.nan`,
    `.inf`), keys that are not strings; they would fail the enqueue at every tick.
    """
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{path}: {value!r} is not a JSON number; write a finite number, or quote it")
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            check_json(item, f"{path}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{path}: key {key!r} is not a string; quote it")
            check_json(item, f"{path}.{key}")
        return
    raise ValueError(
        f"{path}: {type(value).__name__} {str(value)[:40]!r} is not a JSON value; quote it to keep it as text"
    )


def _json_data(value: dict[str, Any]) -> dict[str, Any]:
    check_json(value)
    return value


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

    dsn_env: Annotated[str, AfterValidator(check_env_name)] = Field(
        description="Name of the environment variable holding the DSN."
    )


class QueueDef(_Model):
    """A queue: logical name (the key) → real queue in a queue system."""

    name: Label = Field(description="The real queue name in the queue system.")
    backend: BackendKind
    database: str = Field("queue", description="Key of `databases:` holding the queue tables.")
    policy: str | None = Field(
        None,
        description="Declared pg-boss policy: standard, short, singleton, stately, exclusive, key_strict_fifo.",
    )
    task: Label | None = Field(None, description="procrastinate: the registered task name (required).")
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

    @model_validator(mode="after")
    def _check_pgboss_name(self) -> QueueDef:
        if self.backend is BackendKind.PGBOSS and not _PGBOSS_QUEUE_NAME.fullmatch(self.name):
            raise ValueError(
                f"pg-boss queue name {_shown(self.name)} is not allowed: pg-boss queue names hold only ASCII "
                "letters, digits, `_`, `-`, `.` and `/`; use the queue's real name"
            )
        return self


class Lane(_Model):
    """A routing rule: a row's `source` picks the queue; unknown sources go to `default`."""

    default: str = Field(description="Logical queue for rows whose source has no route.")
    routes: dict[Label, str] = Field(default_factory=dict, description="source → logical queue.")


class StaticRow(_Model):
    """One entity of a static cohort."""

    key: Annotated[str, Field(min_length=1)] | Int4Key
    data: Annotated[dict[str, Any], AfterValidator(_json_data)] = Field(default_factory=dict)
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

    window: Window = Field(timedelta(0), description="At most 366d.")
    strategy: StaggerStrategy = StaggerStrategy.NONE


class CatchUp(_Model):
    """Missed ticks inside `window` are fanned out once (per `policy`); older ones are recorded as skipped."""

    window: Window = Field(timedelta(hours=1), description="At most 366d.")
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
    priority: Int4 = 0
    retry_limit: Count | None = None
    retry_delay: RetryDelay | None = Field(None, description="At most 366d.")
    expire_in: ExpireIn | None = Field(None, description="More than 0, at most 24h (pg-boss's limit).")
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

    every: WatchEvery = Field(timedelta(seconds=30), description="At least 1s, at most 366d.")
    stuck_after: Window = Field(timedelta(seconds=90), description="At most 366d.")
    sql: str | None = Field(
        None, description="Query on the app database returning `key` (+ `data`, `source`)."
    )
    database: str = "app"
    queue: str | None = None
    lane: str | None = None
    singleton_key: str | None = Field(None, description="Defaults to `<watcher>:{key}`.")
    max_reemits: Count = 3
    reemit_window: Window = Field(timedelta(hours=1), description="At most 366d.")
    statement_timeout: Duration = Field(
        timedelta(seconds=30),
        gt=timedelta(0),
        le=timedelta(days=1),
        description="Deadline of the whole read of `sql` (the query, every fetch, and the re-emits between "
        "fetches); nothing in the query can lift it.",
    )
    priority: Int4 = 0
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
    databases: dict[Name, DatabaseRef] = Field(default_factory=dict, json_schema_extra=_NAMES_SCHEMA)
    queues: dict[Name, QueueDef] = Field(default_factory=dict, json_schema_extra=_NAMES_SCHEMA)
    lanes: dict[Name, Lane] = Field(default_factory=dict, json_schema_extra=_NAMES_SCHEMA)
    aliases: dict[Label, str] = Field(
        default_factory=dict, description="old real queue name → logical queue."
    )
    schedules: dict[Name, Schedule] = Field(default_factory=dict, json_schema_extra=_NAMES_SCHEMA)
    watchers: dict[Name, Watcher] = Field(default_factory=dict, json_schema_extra=_NAMES_SCHEMA)


class ResolvedDatabase(_Model):
    """A database with its DSN read from the environment (never printed)."""

    name: str
    dsn: SecretStr
