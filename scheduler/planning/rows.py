"""Whether a queue can hold one planned row: its entity key, singleton key and payload. Pure.

`check_row` runs once per planned job of cohorts of millions, in the fan-out's planning thread, so the
common row (ASCII keys, a payload the cohort sent as json/jsonb text with no escape in it) is decided by a
few C-level string tests; only a row that might be bad takes the slow path, which says exactly what is wrong.
Measured on the 2-core VM (timeit, best of 7): 0.37-0.56 µs per job with a json/jsonb text payload, 1.1 µs
with a flat object payload, against about 6 µs per row for the plan itself.

What no queue can hold (PostgreSQL's text and jsonb, whichever backend):
- a NUL character in text: text columns refuse it, and jsonb refuses the escape `\\u0000`;
- a lone surrogate (half of a UTF-16 pair): it has no UTF-8 form, so it is not text at all;
- a non-finite number (NaN, Infinity): JSON has none, and jsonb refuses the `NaN` Python would write;
- a number outside jsonb's numeric range (more than 131,072 digits before the point or 16,383 after);
- a value JSON has no form for (a date, a set, bytes, ...) in a payload built from columns.

What one queue cannot hold is data from its backend (`RowLimits`, `Backend.row_limits`): how long a
singleton key its unique index takes, and whether payload object keys must be text.

A json (not jsonb) cohort column keeps its text as written: a number in exponent form whose exponent is out
of numeric's range is found only when the text also holds an escape or is long (`LONG_PAYLOAD`); a jsonb
column never prints one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Final

from scheduler.types import Dropped, DropReason, JsonText

if TYPE_CHECKING:
    from scheduler.types import JobSpec

__all__ = ["LONG_PAYLOAD", "RowLimits", "check_row", "invalid_drop", "printable"]

LONG_PAYLOAD: Final = 16_000
"""Payload text at least this long is parsed and checked in full (a number of more than 16,383 decimals
needs that much text); shorter text is only searched for escapes."""
NUMERIC_DIGITS_BEFORE: Final = 131_072
NUMERIC_DIGITS_AFTER: Final = 16_383
"""jsonb numbers are PostgreSQL numerics: at most this many digits before and after the decimal point
(`'[1e131072]'::json::jsonb` and `'[1e-16384]'::json::jsonb` overflow; one less does not)."""
SHOWN: Final = 60
"""Characters of a bad value a reason quotes."""


@dataclass(frozen=True, slots=True)
class RowLimits:
    """What one queue's tables can hold beyond plain text and JSON: facts from its backend."""

    singleton_key_bytes: int
    """The longest singleton key, in UTF-8 bytes, that the queue's unique index takes (measured against the
    real schema with incompressible keys: a longer key fails the whole statement)."""
    singleton_key_name: str = "singleton key"
    """What the backend calls it, for reasons (`queueing lock` for procrastinate)."""
    text_object_keys: bool = False
    """Payload objects may only have text keys (procrastinate passes them as keyword arguments); otherwise
    a number or boolean key is written as JSON writes it, as text."""


def check_row(job: JobSpec, limits: RowLimits) -> str | None:
    """None when the queue can hold the job; else why not, in one sentence naming the value at fault."""
    key = job.key
    # Each test first asks what is cheap and nearly always false; only then the exact question.
    if (not key.isascii() or "\x00" in key) and (problem := _text_problem(key)) is not None:
        return f"the entity key {problem}"
    lock = job.singleton_key
    if (
        lock is not None
        and (len(lock) * 4 > limits.singleton_key_bytes or not lock.isascii() or "\x00" in lock)
        and (problem := _lock_problem(lock, limits)) is not None
    ):
        return problem
    data = job.data
    if type(data) is JsonText:
        text = data.text
        if "\\u" in text or len(text) >= LONG_PAYLOAD:
            return _json_text_problem(text, limits)
        return None
    return _object_problem(data, limits)


def invalid_drop(job: JobSpec, reason: str) -> Dropped:
    """The `invalid_row` drop of a job `check_row` refused for `reason`: its key and singleton key as
    printable text (either may be what is wrong; a long singleton key is cut at 80 characters)."""
    lock = job.singleton_key
    return Dropped(
        key=printable(job.key),
        reason=DropReason.INVALID_ROW,
        singleton_key=None if lock is None else printable(lock if len(lock) <= 80 else lock[:80] + "…"),
        detail=reason,
    )


def printable(text: str) -> str:
    """`text` with what no output can carry written as escapes: a lone surrogate as `\\udc80` and the like,
    NUL and other C0 control characters as `\\xNN`, so a report, a log line or `--json` can name a bad value."""
    if text.isascii() and text.isprintable():
        return text
    shown = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(c if c.isprintable() or c == " " else f"\\x{ord(c):02x}" for c in shown)


def _shown(text: str) -> str:
    short = text if len(text) <= SHOWN else text[:SHOWN] + "…"
    return f"'{printable(short)}'"


def _text_problem(text: str) -> str | None:
    """Why `text` is no PostgreSQL text, or None."""
    if "\x00" in text:
        return f"{_shown(text)} holds a NUL character, which PostgreSQL text cannot hold"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return f"{_shown(text)} holds a lone surrogate, which is not Unicode text (it has no UTF-8 form)"
    return None


def _lock_problem(lock: str, limits: RowLimits) -> str | None:
    name = limits.singleton_key_name
    if (problem := _text_problem(lock)) is not None:
        return f"the {name} {problem}"
    size = len(lock.encode("utf-8"))
    if size > limits.singleton_key_bytes:
        return (
            f"the {name} {_shown(lock)} is {size:,} bytes; the queue's unique index holds at most "
            f"{limits.singleton_key_bytes:,} (shorten the singleton_key template, or hash the long part)"
        )
    return None


def _json_text_problem(text: str, limits: RowLimits) -> str | None:
    """Parse payload text the cohort sent (valid JSON: the server checked it) and check every value."""
    try:
        value = json.loads(text, parse_float=_number, parse_int=_number, parse_constant=float)
    except _NumberOutOfRange as exc:
        return f"the payload holds the number {exc.args[0]}, outside jsonb's numeric range"
    except (ValueError, RecursionError) as exc:
        return f"the payload is not JSON jsonb can hold ({exc})"
    return _value_problem(value, "data", limits)


def _object_problem(data: object, limits: RowLimits) -> str | None:
    if type(data) is dict:
        # The common payload, a flat object of ASCII text, integers and finite floats, in one loop.
        for name, item in data.items():
            kind = type(item)
            if not (
                type(name) is str
                and name.isascii()
                and "\x00" not in name
                and (
                    (kind is str and item.isascii() and "\x00" not in item)
                    or kind is int
                    or kind is bool
                    or item is None
                    or (kind is float and math.isfinite(item))
                )
            ):
                break
        else:
            return None
    try:
        return _value_problem(data, "data", limits)
    except RecursionError:
        return "the payload is nested too deeply for JSON"


class _NumberOutOfRange(ValueError):
    pass


def _number(text: str) -> object:
    """A JSON number as `json.loads` parses it, refusing one that a numeric cannot hold (raises)."""
    if len(text) <= 20 and "e" not in text and "E" not in text:
        return 0  # short plain numbers always fit; only their presence matters here
    if not _numeric_fits(Decimal(text)):
        raise _NumberOutOfRange(text if len(text) <= SHOWN else text[:SHOWN] + "…")
    return 0


def _numeric_fits(value: Decimal) -> bool:
    if not value.is_finite():
        return False
    if value.is_zero():
        return True
    _sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite
    before = len(digits) + exponent  # digits before the point (<= 0: none)
    after = -exponent  # decimals written (numeric keeps them all)
    return before <= NUMERIC_DIGITS_BEFORE and after <= NUMERIC_DIGITS_AFTER


def _value_problem(value: object, path: str, limits: RowLimits) -> str | None:
    """Why JSON in jsonb cannot hold `value` (at `path`), or None. Recursive."""
    kind = type(value)
    if kind is str:
        assert isinstance(value, str)
        if value.isascii() and "\x00" not in value:
            return None
        problem = _text_problem(value)
        return None if problem is None else f"the payload value at {path} {problem}"
    if value is None or kind is bool or kind is int:
        return None
    if kind is float:
        assert isinstance(value, float)
        if math.isfinite(value):
            return None
        return f"the payload value at {path} is {value!r}; JSON has no NaN or Infinity"
    if isinstance(value, Mapping):
        for name, item in value.items():
            if type(name) is not str:
                if limits.text_object_keys or not (name is None or type(name) in (bool, int, float)):
                    return (
                        f"the payload object at {path} has the key {name!r} of type "
                        f"{type(name).__name__}; its keys must be text"
                    )
                if type(name) is float and not math.isfinite(name):
                    return f"the payload object at {path} has the key {name!r}; JSON has no NaN or Infinity"
                name = json.dumps(name)
            else:
                problem = _text_problem(name) if not name.isascii() or "\x00" in name else None
                if problem is not None:
                    return f"a payload key at {path} {problem}"
            if (problem := _value_problem(item, f"{path}.{printable(name)}", limits)) is not None:
                return problem
        return None
    if kind is list or kind is tuple:
        assert isinstance(value, list | tuple)
        for i, item in enumerate(value):
            if (problem := _value_problem(item, f"{path}[{i}]", limits)) is not None:
                return problem
        return None
    if isinstance(value, Decimal):
        try:
            fits = _numeric_fits(value)
        except InvalidOperation:
            fits = False
        if fits:
            return (
                f"the payload value at {path} is a Decimal ({value}), which JSON serialization cannot "
                "write; cast it in the cohort query (e.g. amount::float8, or to_jsonb(...))"
            )
        return f"the payload value at {path} is {value}, outside jsonb's numeric range"
    return (
        f"the payload value at {path} is a {kind.__name__} ({_shown(repr(value))}), which JSON has no form "
        "for; convert it in the cohort query"
    )
