"""What psycopg will make of the `%` signs in cohort and watcher SQL, decided from the text alone. Pure.

Cohort and watcher queries run with bound parameters (a mapping: `%(tick)s`, `%(hour)s`, …), so psycopg
reads every `%` of the query text as the start of a placeholder, inside string literals and comments too:
`%(name)s` (or `%(name)b`, `%(name)t`) binds a parameter, `%%` is a literal `%`, and anything else fails
every run of the query (`LIKE 'a%'` ends in "only '%s', '%b', '%t' are allowed as placeholders"). A `%`
at the very end of the query or of a line is left as it is (psycopg's own rule).

`problems` mirrors psycopg's `_split_query` (psycopg 3.3's placeholder pattern and checks, plus the two
errors it raises at binding: a name with no parameter, and a positional `%s` against named parameters,
and one it raises while splitting: a name used with two formats);
`tests/unit/config/test_placeholders.py` checks it against the real psycopg.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Collection

COHORT_PARAMETERS = ("tick", "hour", "minute", "date", "weekday", "schedule")
"""What a schedule's cohort query binds (`cohorts.cohort_params`)."""
WATCHER_PARAMETERS = ("stuck_after", "now", "watcher")
"""What a watcher's query binds (`watch.passes`)."""

# psycopg's pattern: `%`, then a name in parentheses and one format character, or else any one character.
_PLACEHOLDER = re.compile(r"%(?:\(([^)]+)\)(.)|.)")
_FORMATS = "sbt"


@dataclass(frozen=True, slots=True)
class Problem:
    """One `%` sequence psycopg would refuse, at 1-based `line` and `column` of the query text."""

    text: str
    line: int
    column: int
    message: str
    """What is wrong with `text` and how to write it."""


def statement(query: str) -> str:
    """The statement the cohort reader sends for `query` as written: without surrounding whitespace and a
    trailing `;` (the query is wrapped in `SELECT count(*) FROM (…)` to be counted)."""
    return query.strip().rstrip(";")


def problems(query: str, names: Collection[str]) -> list[Problem]:
    """Every `%` sequence of `query` (as written) that psycopg would refuse when its `statement` runs with the
    named parameters `names`, in text order (psycopg stops at the first); positions are in `query`."""
    bound = ", ".join(f"%({n})s" for n in names)
    found: list[Problem] = []
    sent = statement(query)
    shift = len(query) - len(query.lstrip())
    formats: dict[str, str] = {}  # psycopg binds a name in one format only
    for match in _PLACEHOLDER.finditer(sent):
        text = match.group(0)
        name = match.group(1)
        if text == "%%":
            continue
        if text == "%(":
            text = sent[match.start() :].split()[0]
            message = (
                "is an incomplete placeholder: write `%(name)s` with one of the parameters "
                f"({bound}), or `%%` for a literal `%`"
            )
        elif text[-1] not in _FORMATS:
            if name is not None:
                message = (
                    f"is not a placeholder psycopg accepts (parameters are bound, not formatted): "
                    f"write `%({name})s`"
                )
            else:
                message = (
                    "is not a placeholder: parameters are bound into this query, so psycopg reads every `%` "
                    "(in string literals and comments too); write a literal `%` (LIKE 'a%', the modulo "
                    "operator) as `%%`"
                )
        elif name is None:
            message = (
                f"is a positional placeholder, but this query's parameters are named: use one of {bound}"
            )
        elif name not in names:
            message = (
                f"names no parameter this query is given: use one of {bound} (or `%%` for a literal `%`)"
            )
        elif formats.setdefault(name, text[-1]) != text[-1]:
            message = (
                f"binds `{name}` in another format than its first use (`%({name}){formats[name]}`): "
                "psycopg binds a parameter in one format; use the same letter everywhere"
            )
        else:
            continue
        at = shift + match.start()
        line = query.count("\n", 0, at) + 1
        column = at - (query.rfind("\n", 0, at) + 1) + 1
        found.append(Problem(text, line, column, f"`{text}` {message}"))
    return found
