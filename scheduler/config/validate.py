"""Validation of a merged configuration, and the lookups other packages make on a valid one. Pure.

Two passes, both collecting every finding:
- `validate_model` runs pydantic over the merged data and maps each error's `loc` to `file:line:col`. Entries
  that fail are set aside and the rest is validated again, so the caller still gets a `Config` of the valid part.
- `check_references` checks what one model cannot see on its own: exactly-one rules (`queue`/`lane`,
  `sql`/`static`), references between sections, procrastinate's `task`, and singleton-key fields a static
  cohort does not provide. It reads the merged data defensively, so an entry pydantic rejected is still checked.

Codes of the findings made while loading (lint rules are listed in `lint.py`):

| code   | severity | meaning |
| ------ | -------- | ------- |
| CFG001 | error    | malformed YAML (indentation, tabs, unclosed quote, a character YAML refuses), an unsupported tag, a value its tag cannot read (a calendar-invalid date), a NUL or a lone surrogate in text |
| CFG002 | error    | a key appears twice in one YAML mapping |
| CFG003 | error    | a schedule, queue, lane, watcher, database or alias is defined twice (across files) |
| CFG004 | error    | unknown key (with the closest allowed key) |
| CFG005 | error    | a value that does not validate: type, cron (standard 5 fields only), time zone, duration or a bound of one, policy, template, version, missing key, a name outside the allowed characters, static data that is not JSON |
| CFG006 | error    | both or neither of `queue`/`lane` (schedule, watcher), `sql`/`static` (cohort); a watcher without `sql` that is not `queue_level` |
| CFG007 | error    | a reference to an undeclared queue, lane or database; an alias to an undeclared queue |
| CFG008 | error    | a singleton_key field that a static cohort row does not provide |
| CFG009 | error    | a procrastinate queue without `task` |
| CFG010 | warning  | an alias whose target queue's real name is itself aliased (lint) |
| CFG011 | error    | a path that does not exist, an empty directory, an unreadable file |
| CFG012 | error    | a file past a limit: larger than 1 MiB, nested more than 64 deep, or expanding (through aliases) to more than 200,000 values |
| CFG013 | error    | an unexpected error while loading (a bug): reported as a finding instead of a traceback |
"""

from __future__ import annotations

import difflib
import types
from typing import TYPE_CHECKING, Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr, ValidationError

from scheduler.config.findings import ConfigPath, Finding, Locations, Severity
from scheduler.config.models import Cohort, Config, QueueDef, Schedule
from scheduler.errors import ConfigError
from scheduler.planning.keys import TemplateError, template_fields
from scheduler.types import BackendKind, QueueRef

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

SECTIONS = ("databases", "queues", "lanes", "aliases", "schedules", "watchers")
"""The top-level sections that merge by name across files."""

_SINGULAR = {
    "databases": "database",
    "queues": "queue",
    "lanes": "lane",
    "aliases": "alias",
    "schedules": "schedule",
    "watchers": "watcher",
}


def singular(section: str) -> str:
    """`schedules` → `schedule` (for messages)."""
    return _SINGULAR.get(section, section)


def dotted(path: ConfigPath) -> str:
    """`("schedules", "a", "cohort", "static", 1, "key")` → `schedules.a.cohort.static[1].key`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "top level"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# ---------------------------------------------------------------------------------------------------------
# pydantic pass


def validate_model(merged: Mapping[str, Any], locations: Locations) -> tuple[Config | None, list[Finding]]:
    """Validate merged data as a `Config`; return the config of its valid part and one finding per error."""
    findings: list[Finding] = []
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in merged.items()}
    for _ in range(3):  # pruning removes whole entries, so a second round normally validates
        try:
            return Config.model_validate(data), findings
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
        if not findings:
            findings = _map_errors(errors, merged, locations)
        for error in errors:
            _prune(data, tuple(error["loc"]))
    return None, findings


def _prune(data: dict[str, Any], loc: ConfigPath) -> None:
    if not loc:
        return
    top = str(loc[0])
    section = data.get(top)
    if len(loc) >= 2 and top in SECTIONS and isinstance(section, dict):
        section.pop(loc[1], None)
    else:
        data.pop(top, None)


def _existing_prefix(path: ConfigPath, merged: Mapping[str, Any]) -> ConfigPath:
    # pydantic adds union member tags (`str`, `int`, `function-before[...]`) to `loc`; keep only real keys.
    node: object = merged
    for n, part in enumerate(path):
        if isinstance(node, dict) and part in node:
            node = node[part]
            continue
        if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            continue
        return path[:n]
    return path


def _map_errors(errors: list[Any], merged: Mapping[str, Any], locations: Locations) -> list[Finding]:
    grouped: dict[tuple[ConfigPath, str], list[Any]] = {}
    for error in errors:
        loc: ConfigPath = tuple(error["loc"])
        if error["type"] == "missing":
            prefix = _existing_prefix(loc[:-1], merged)
            path = (*prefix, loc[len(prefix)])
        else:
            path = _existing_prefix(loc, merged)
        kind = error["type"] if error["type"] in {"missing", "extra_forbidden"} else "value"
        grouped.setdefault((path, kind), []).append(error)
    findings: list[Finding] = []
    for (path, kind), group in grouped.items():
        if kind == "extra_forbidden":
            findings.append(_unknown_key(path, locations))
        elif kind == "missing":
            parent = path[:-1]
            what = dotted(parent)
            findings.append(
                Finding(
                    "CFG005",
                    Severity.ERROR,
                    f"{what}: required key {path[-1]!r} is missing; add `{path[-1]}: ...`{_describe(path)}",
                    locations.of(parent),
                )
            )
        else:
            findings.append(_bad_value(path, group, locations))
    return findings


def _bad_value(path: ConfigPath, group: list[Any], locations: Locations) -> Finding:
    messages: list[str] = []
    for error in group:
        ctx = error.get("ctx") or {}
        if error["type"] == "value_error" and "error" in ctx:
            text = str(ctx["error"])  # our own validators' messages already name the value and the fix
        else:
            got = repr(error["input"])
            if len(got) > 80:
                got = got[:80] + "…"
            text = f"{error['msg'][:1].lower()}{error['msg'][1:]}, got {got}{_describe(path)}"
        if text not in messages:
            messages.append(text)
    return Finding("CFG005", Severity.ERROR, f"{dotted(path)}: {'; or '.join(messages)}", locations.of(path))


def _describe(path: ConfigPath) -> str:
    model = _model_at(path[:-1])
    if model is None or not path or not isinstance(path[-1], str):
        return ""
    field = _fields_by_key(model).get(path[-1])
    return f" ({field.description})" if field is not None and field.description else ""


def _unknown_key(path: ConfigPath, locations: Locations) -> Finding:
    key = path[-1]
    parent = path[:-1]
    model = _model_at(parent)
    allowed = sorted(_fields_by_key(model)) if model is not None else []
    hint = did_you_mean(str(key), allowed)
    where = "at the top level" if not parent else f"in {dotted(parent)}"
    return Finding(
        "CFG004",
        Severity.ERROR,
        f"unknown key {key!r} {where}{hint}; allowed keys: {', '.join(allowed)}",
        locations.key_of(path),
    )


def _fields_by_key(model: type[BaseModel]) -> dict[str, Any]:
    return {(field.alias or name): field for name, field in model.model_fields.items()}


def _unwrap(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin is Union or origin is types.UnionType:
            args = [a for a in get_args(tp) if a is not type(None)]
            structured = [a for a in args if get_origin(a) in {dict, list} or _is_model(a)]
            tp = (structured or args)[0]
        else:
            return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _model_at(path: ConfigPath) -> type[BaseModel] | None:
    """The model class that validates the mapping at `path`, walking dicts and lists by their item types."""
    tp: Any = Config
    for part in path:
        tp = _unwrap(tp)
        if _is_model(tp):
            field = _fields_by_key(tp).get(str(part))
            if field is None:
                return None
            tp = field.annotation
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        elif get_origin(tp) is list:
            tp = get_args(tp)[0]
        else:
            return None
    tp = _unwrap(tp)
    return tp if _is_model(tp) else None


# ---------------------------------------------------------------------------------------------------------
# reference pass (over the merged data, so that entries pydantic rejected are still checked)


def _entries(merged: Mapping[str, Any], section: str) -> dict[Any, Any]:
    value = merged.get(section)
    return value if isinstance(value, dict) else {}


def _text(entry: object, key: str) -> str | None:
    if isinstance(entry, dict):
        value = entry.get(key)
        return value if isinstance(value, str) else None
    return None


def _default(model: type[BaseModel], field: str) -> str:
    default = model.model_fields[field].default
    assert isinstance(default, str)
    return default


def check_references(merged: Mapping[str, Any], locations: Locations) -> list[Finding]:
    """Exactly-one rules, cross-section references, procrastinate tasks and static-cohort key fields."""
    findings: list[Finding] = []
    databases = _entries(merged, "databases")
    queues = _entries(merged, "queues")
    lanes = _entries(merged, "lanes")

    def ref(section: str, declared: Mapping[Any, Any], name: str | None, path: ConfigPath) -> None:
        if name is None or name in declared:
            return
        known = ", ".join(sorted(map(str, declared))) or "none"
        hint = did_you_mean(name, map(str, declared))
        # A default database name the user never wrote gets a message that says it is the default.
        default = "" if path in locations else f" (the default of `{path[-1]}`)"
        findings.append(
            Finding(
                "CFG007",
                Severity.ERROR,
                f"{dotted(path)}: {singular(section)} {name!r}{default} is not declared{hint}; "
                f"declare it under `{section}:` or use one of: {known}",
                locations.of(path),
            )
        )

    for name, queue in queues.items():
        path: ConfigPath = ("queues", name)
        ref(
            "databases",
            databases,
            _text(queue, "database") or _default(QueueDef, "database"),
            (*path, "database"),
        )
        if _text(queue, "backend") == BackendKind.PROCRASTINATE.value and not _text(queue, "task"):
            findings.append(
                Finding(
                    "CFG009",
                    Severity.ERROR,
                    f"queues.{name}: a procrastinate queue needs `task`, the registered task name every job of "
                    "this queue runs; add e.g. `task: billing.rollup`",
                    locations.of(path),
                )
            )
    for name, lane in lanes.items():
        path = ("lanes", name)
        ref("queues", queues, _text(lane, "default"), (*path, "default"))
        routes = lane.get("routes") if isinstance(lane, dict) else None
        if isinstance(routes, dict):
            for source, target in routes.items():
                if isinstance(target, str):
                    ref("queues", queues, target, (*path, "routes", source))
    for old, target in _entries(merged, "aliases").items():
        if isinstance(target, str):
            ref("queues", queues, target, ("aliases", old))
    for name, schedule in _entries(merged, "schedules").items():
        if isinstance(schedule, dict):
            findings.extend(_check_schedule(name, schedule, databases, queues, lanes, locations, ref))
    for name, watcher in _entries(merged, "watchers").items():
        path = ("watchers", name)
        ref("queues", queues, _text(watcher, "queue"), (*path, "queue"))
        ref("lanes", lanes, _text(watcher, "lane"), (*path, "lane"))
        if isinstance(watcher, dict):
            ref("databases", databases, _text(watcher, "database") or "app", (*path, "database"))
            findings.extend(_check_watcher(name, watcher, locations))
    return findings


def _check_watcher(name: str, watcher: dict[str, Any], locations: Locations) -> list[Finding]:
    """Exactly one of `queue`/`lane` (a queue-level watcher needs `queue`); `sql` unless queue-level."""
    path: ConfigPath = ("watchers", name)
    queue, lane = watcher.get("queue"), watcher.get("lane")
    queue_level = watcher.get("queue_level") is True
    message: str | None = None
    where: ConfigPath = path
    if queue_level and queue is None:
        message = (
            f"watchers.{name}: `queue_level: true` scans one queue's tables; add `queue: <a key of queues:>`"
        )
    elif queue is not None and lane is not None:
        message = (
            f"watchers.{name}: has both `queue: {queue}` and `lane: {lane}`; keep `queue` to re-emit every "
            "entity to one queue, or `lane` to route each row by its source"
        )
        where = (*path, "lane")
    elif queue is None and lane is None:
        message = (
            f"watchers.{name}: has neither `queue` nor `lane`; add `queue: <a key of queues:>` "
            "or `lane: <a key of lanes:>` (where re-emitted jobs go)"
        )
    elif watcher.get("sql") is None and not queue_level:
        message = (
            f"watchers.{name}: has no `sql`; add a query on the app database returning `key` (and `data`, "
            "`source`) for each stuck entity, or set `queue_level: true` to scan the queue's own tables"
        )
    if message is None and watcher.get("reemit_stalled") is True and not queue_level:
        message = f"watchers.{name}: `reemit_stalled: true` needs `queue_level: true`"
        where = (*path, "reemit_stalled")
    if message is None:
        return []
    return [Finding("CFG006", Severity.ERROR, message, locations.of(where))]


def _check_schedule(
    name: str,
    schedule: dict[str, Any],
    databases: Mapping[Any, Any],
    queues: Mapping[Any, Any],
    lanes: Mapping[Any, Any],
    locations: Locations,
    ref: Callable[[str, Mapping[Any, Any], str | None, ConfigPath], None],
) -> list[Finding]:
    findings: list[Finding] = []
    path: ConfigPath = ("schedules", name)
    queue, lane = schedule.get("queue"), schedule.get("lane")
    if queue is not None and lane is not None:
        findings.append(
            Finding(
                "CFG006",
                Severity.ERROR,
                f"schedules.{name}: has both `queue: {queue}` and `lane: {lane}`; keep `queue` to send every "
                "job to one queue, or `lane` to route each row by its source",
                locations.of((*path, "lane")),
            )
        )
    elif queue is None and lane is None:
        findings.append(
            Finding(
                "CFG006",
                Severity.ERROR,
                f"schedules.{name}: has neither `queue` nor `lane`; add `queue: <a key of queues:>` "
                "or `lane: <a key of lanes:>`",
                locations.of(path),
            )
        )
    ref("queues", queues, _text(schedule, "queue"), (*path, "queue"))
    ref("lanes", lanes, _text(schedule, "lane"), (*path, "lane"))
    cohort = schedule.get("cohort")
    if not isinstance(cohort, dict):
        return findings
    cpath: ConfigPath = (*path, "cohort")
    # A static list never touches a database: only an SQL cohort (or one naming a database) needs it declared.
    if cohort.get("sql") is not None or "database" in cohort:
        ref(
            "databases",
            databases,
            _text(cohort, "database") or _default(Cohort, "database"),
            (*cpath, "database"),
        )
    has_sql, static = cohort.get("sql") is not None, cohort.get("static")
    if has_sql and static is not None:
        findings.append(
            Finding(
                "CFG006",
                Severity.ERROR,
                f"schedules.{name}.cohort: has both `sql` and `static`; keep `sql` to query the app database "
                "at each tick, or `static` for a fixed list of rows",
                locations.of((*cpath, "static")),
            )
        )
    elif not has_sql and static is None:
        findings.append(
            Finding(
                "CFG006",
                Severity.ERROR,
                f"schedules.{name}.cohort: has neither `sql` nor `static`; add `sql: select id as key ...` "
                "or `static: [{key: ...}]`",
                locations.of(cpath),
            )
        )
    template = schedule.get("singleton_key")
    if isinstance(static, list) and isinstance(template, str):
        findings.extend(_check_static_fields(name, template, static, locations))
    return findings


def _check_static_fields(name: str, template: str, rows: list[Any], locations: Locations) -> list[Finding]:
    try:
        fields = template_fields(template)
    except TemplateError:
        return []  # reported by the model pass
    findings: list[Finding] = []
    for field in dict.fromkeys(fields):
        if field in {"key", "schedule", "tick"}:
            continue
        missing = [
            (index, row.get("key") if isinstance(row, dict) else None)
            for index, row in enumerate(rows)
            if not _row_has(row, field)
        ]
        if not missing:
            continue
        rows_text = ", ".join(f"row {i} (key {k!r})" for i, k in missing[:5])
        if len(missing) > 5:
            rows_text += f" and {len(missing) - 5} more"
        if field == "source":
            fix = "give every row a `source`, or drop {source} from the template"
        else:
            fix = f"add `{field[5:]}` to the `data` of every row, or drop {{{field}}} from the template"
        findings.append(
            Finding(
                "CFG008",
                Severity.ERROR,
                f"schedules.{name}.singleton_key: {template!r} needs {{{field}}}, but static {rows_text} "
                f"{'has' if len(missing) == 1 else 'have'} none; {fix}",
                locations.of(("schedules", name, "singleton_key")),
            )
        )
    return findings


def _row_has(row: object, field: str) -> bool:
    if not isinstance(row, dict):
        return True  # the model pass reports a row that is not a mapping
    if field == "source":
        return row.get("source") is not None
    value: object = row.get("data")
    for part in field[5:].split("."):
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    return True


# ---------------------------------------------------------------------------------------------------------
# lookups on a valid config


def resolve_queue(config: Config, logical: str) -> QueueRef:
    """The `QueueRef` of the queue declared as `logical` under `queues:`; ConfigError if there is none."""
    queue = config.queues.get(logical)
    if queue is None:
        known = ", ".join(sorted(config.queues)) or "none"
        raise ConfigError(
            f"queue {logical!r} is not declared{did_you_mean(logical, config.queues)}; "
            f"declare it under `queues:` or use one of: {known}"
        )
    return QueueRef(
        logical=logical,
        name=queue.name,
        backend=queue.backend,
        database=queue.database,
        policy=queue.policy,
        task=queue.task,
        schema=queue.db_schema,
        create_missing=queue.create_missing,
        dsn_env=database.dsn_env if (database := config.databases.get(queue.database)) else None,
    )


def lane_queues(config: Config, lane: str) -> list[str]:
    """The logical queues a lane routes to: its default first, then its routes in order, without repeats."""
    found = config.lanes.get(lane)
    if found is None:
        known = ", ".join(sorted(config.lanes)) or "none"
        raise ConfigError(
            f"lane {lane!r} is not declared{did_you_mean(lane, config.lanes)}; "
            f"declare it under `lanes:` or use one of: {known}"
        )
    return list(dict.fromkeys([found.default, *found.routes.values()]))


def queues_of(config: Config, schedule: Schedule) -> list[QueueRef]:
    """The schedule's queue, or every queue its lane can route to (default first, then routes), once each."""
    if schedule.queue is not None:
        return [resolve_queue(config, schedule.queue)]
    if schedule.lane is not None:
        return [resolve_queue(config, q) for q in lane_queues(config, schedule.lane)]
    raise ConfigError("the schedule has neither `queue` nor `lane`; add one of them")


def resolve_dsn(config: Config, database: str, environ: Mapping[str, str]) -> SecretStr:
    """The DSN of a declared database, read from its environment variable. The DSN is never put in a message."""
    ref = config.databases.get(database)
    if ref is None:
        known = ", ".join(sorted(config.databases)) or "none"
        raise ConfigError(
            f"database {database!r} is not declared{did_you_mean(database, config.databases)}; "
            f"declare it under `databases:` with `dsn_env: <VARIABLE>`, or use one of: {known}"
        )
    value = environ.get(ref.dsn_env, "").strip()
    if not value:
        raise ConfigError(
            f"database {database!r} takes its DSN from the environment variable {ref.dsn_env}, which is "
            f"not set or empty; set it, e.g. {ref.dsn_env}=postgresql://user@host:5432/dbname"
        )
    return SecretStr(value)


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the schedule-file format, keys as written in YAML."""
    schema = Config.model_json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "title": "scheduler configuration (version 1)",
    }
