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
from collections.abc import Mapping
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


def _lookup(row: Mapping[str, Any], field: str) -> object:
    if field.startswith("data."):
        value: object = row.get("data")
        for part in field[5:].split("."):
            if not isinstance(value, Mapping) or part not in value:
                raise KeyError(field)
            value = value[part]
        return value
    if field not in row or row[field] is None:
        raise KeyError(field)
    return row[field]


def render_key(template: str, row: Mapping[str, Any], *, schedule: str, tick: datetime) -> str:
    """Render `template` over `row`. Raises PlanError naming the schedule and the missing field."""
    out: list[str] = []
    for literal, field, _spec, _conv in _FORMATTER.parse(template):
        out.append(literal)
        if field is None:
            continue
        if field == "schedule":
            out.append(schedule)
        elif field == "tick":
            out.append(tick.astimezone(UTC).isoformat().replace("+00:00", "Z"))
        else:
            try:
                out.append(str(_lookup(row, field)))
            except KeyError:
                raise PlanError(
                    f"schedule {schedule!r}: singleton_key {template!r} needs field {{{field}}}, "
                    f"but cohort row with key {row.get('key')!r} has no such field; "
                    "add it to the cohort (a column or a data field) or change the template"
                ) from None
    return "".join(out)
