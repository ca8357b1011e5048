"""Singleton-key templates: `"insight:{key}"` rendered over a cohort row. Pure.

Fields a template may name:
- `{key}`: the row's entity key; `{source}`: the row's source (lanes);
- `{data.<field>}` (dotted paths allowed): a field of the row's payload;
- `{schedule}` and `{tick}` (the tick instant, ISO 8601 UTC): the same for every row of a tick.

A template with no `{key}` or `{data.…}` field renders the same key for every row of a tick: under a
one-per-key policy that keeps one job and drops the rest (lint SCH001 and dry-run flag it).
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from scheduler.errors import PlanError

ROW_FIELDS = frozenset({"key", "source"})
TICK_FIELDS = frozenset({"schedule", "tick"})
_FORMATTER = string.Formatter()


class TemplateError(ValueError):
    """A key template does not parse or names a field that cannot exist."""


def template_fields(template: str) -> list[str]:
    """The field names a template uses, in order (`data.org.id` stays dotted).

    Raises TemplateError for unbalanced braces, empty fields, positional fields, format specs, or a
    field outside `key`, `source`, `schedule`, `tick`, `data.<path>`.
    """
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError as exc:
        raise TemplateError(
            f"template {template!r} does not parse: {exc}; escape a brace as {{{{ or }}}}"
        ) from exc
    fields: list[str] = []
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if field == "" or field.isdigit():
            raise TemplateError(
                f"template {template!r} has an empty field {{}}; name a field such as {{key}}"
            )
        if spec or conversion:
            raise TemplateError(
                f"template {template!r}: field {{{field}}} may not have a format spec or conversion"
            )
        if field not in ROW_FIELDS | TICK_FIELDS and not (field.startswith("data.") and len(field) > 5):
            raise TemplateError(
                f"template {template!r} names unknown field {{{field}}}; "
                "use {key}, {source}, {schedule}, {tick} or {data.<field>}"
            )
        fields.append(field)
    return fields


def is_per_entity(template: str | None) -> bool:
    """True when the template can differ between rows of one tick (it names `key`, `source` or `data.…`)."""
    if template is None:
        return False
    return any(f in ROW_FIELDS or f.startswith("data.") for f in template_fields(template))


KeyRenderer = Callable[[Mapping[str, Any]], str]
"""A compiled template: row → singleton key (see `compile_key`)."""


def compile_key(template: str, *, schedule: str, tick: datetime) -> KeyRenderer:
    """Parse `template` once for one tick of one schedule; the result renders a row like `render_key`.

    `{schedule}` and `{tick}` are folded into the literals up front, so per row only the row's own fields
    are looked up. Raises PlanError (when called) naming the schedule and the missing field.
    """
    tick_text = tick.astimezone(UTC).isoformat().replace("+00:00", "Z")
    # Alternating parts: a literal string, or a (field, data path) lookup of the row.
    parts: list[str | tuple[str, tuple[str, ...] | None]] = []
    for literal, field, _spec, _conv in _FORMATTER.parse(template):
        text = literal
        if field == "schedule":
            text += schedule
        elif field == "tick":
            text += tick_text
        if parts and isinstance(parts[-1], str):
            parts[-1] += text
        elif text:
            parts.append(text)
        if field is not None and field not in TICK_FIELDS:
            parts.append((field, tuple(field[5:].split(".")) if field.startswith("data.") else None))

    def missing(row: Mapping[str, Any], field: str) -> PlanError:
        return PlanError(
            f"schedule {schedule!r}: singleton_key {template!r} needs field {{{field}}}, "
            f"but cohort row with key {row.get('key')!r} has no such field; "
            "add it to the cohort (a column or a data field) or change the template"
        )

    def value(row: Mapping[str, Any], field: str, path: tuple[str, ...] | None) -> str:
        if path is None:
            found = row.get(field)
            if found is None:
                raise missing(row, field)
            return found if type(found) is str else str(found)
        current: object = row.get("data")
        for part in path:
            if not isinstance(current, Mapping) or part not in current:
                raise missing(row, field)
            current = current[part]
        return str(current)

    # The shapes of nearly every real template, specialised so a row costs one lookup and one concat.
    if len(parts) == 2 and isinstance(parts[0], str) and not isinstance(parts[1], str):
        prefix, (field, path) = parts[0], parts[1]
        return lambda row: prefix + value(row, field, path)
    if len(parts) == 1 and isinstance(parts[0], str):
        constant = parts[0]
        return lambda row: constant

    def render(row: Mapping[str, Any]) -> str:
        return "".join(p if isinstance(p, str) else value(row, p[0], p[1]) for p in parts)

    return render


def render_key(template: str, row: Mapping[str, Any], *, schedule: str, tick: datetime) -> str:
    """Render `template` over `row`. Raises PlanError naming the schedule and the missing field.

    Parses the template on every call; to render a whole cohort, `compile_key` once instead.
    """
    return compile_key(template, schedule=schedule, tick=tick)(row)
