"""`check_row` says exactly when a queue cannot hold a planned row, and why; the text and object paths agree."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.planning.rows import LONG_PAYLOAD, RowLimits, check_row, printable
from scheduler.types import JobSpec, JsonText

TICK = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
LIMITS = RowLimits(100)
PROCRASTINATE = RowLimits(100, singleton_key_name="queueing lock", text_object_keys=True)


def row(data: Any = None, *, key: str = "e1", lock: str | None = "k:e1") -> JobSpec:
    return JobSpec(key, lock, {} if data is None else data, TICK)


def test_an_ordinary_row_is_valid() -> None:
    """Text keys and an object payload, as text or as an object, pass."""
    assert check_row(row({"org": 1, "name": "naïve ☃ 𝄞", "x": [1.5, None, True]}), LIMITS) is None
    assert check_row(row(JsonText('{"org": 1, "name": "naïve ☃ 𝄞", "e": "\\u00e9"}')), LIMITS) is None
    assert check_row(row(lock=None), LIMITS) is None


@pytest.mark.parametrize(
    ("job", "reason"),
    [
        (
            row(key="e\x001"),
            "the entity key 'e\\x001' holds a NUL character, which PostgreSQL text cannot hold",
        ),
        (
            row(key="e\ud8001"),
            "the entity key 'e\\ud8001' holds a lone surrogate, which is not Unicode text (it has no UTF-8 form)",
        ),
        (
            row(lock="k\x00"),
            "the singleton key 'k\\x00' holds a NUL character, which PostgreSQL text cannot hold",
        ),
        (row(lock="\udc00"), "the singleton key '\\udc00' holds a lone surrogate"),
        (
            row({"a": {"b": [float("nan")]}}),
            "the payload value at data.a.b[0] is nan; JSON has no NaN or Infinity",
        ),
        (row({"a": float("-inf")}), "the payload value at data.a is -inf; JSON has no NaN or Infinity"),
        (row({"a": "x\x00"}), "the payload value at data.a 'x\\x00' holds a NUL character"),
        (row({"a\x00": 1}), "a payload key at data 'a\\x00' holds a NUL character"),
        (row({"a": ["\ud800"]}), "the payload value at data.a[0] '\\ud800' holds a lone surrogate"),
        (row(JsonText('{"a": "x\\u0000"}')), "the payload value at data.a 'x\\x00' holds a NUL character"),
        (
            row(JsonText('{"a": {"b": "\\ud800"}}')),
            "the payload value at data.a.b '\\ud800' holds a lone surrogate",
        ),
        (
            row(JsonText('{"a": "\\udc00\\ud800"}')),
            "the payload value at data.a '\\udc00\\ud800' holds a lone",
        ),
        (
            row(JsonText('{"a": 1e131072, "u": "\\u00e9"}')),
            "the payload holds the number 1e131072, outside jsonb",
        ),
        (row({"d": date(2026, 1, 2)}), "the payload value at data.d is a date ('datetime.date(2026, 1, 2)')"),
        (
            row({"n": Decimal("1.5")}),
            "the payload value at data.n is a Decimal (1.5), which JSON serialization",
        ),
        (row({"n": Decimal("NaN")}), "the payload value at data.n is NaN, outside jsonb's numeric range"),
    ],
)
def test_a_row_no_queue_can_hold_is_named(job: JobSpec, reason: str) -> None:
    """NUL, lone surrogates, non-finite or out-of-range numbers and values JSON has no form for: the reason
    names the value and where it is."""
    found = check_row(job, LIMITS)
    assert found is not None
    assert found.startswith(reason)


def test_a_valid_surrogate_pair_escape_passes() -> None:
    """`\\ud834\\udd1e` (𝄞 as a JSON escape pair) is text; only a half of a pair is not."""
    assert check_row(row(JsonText('{"a": "\\ud834\\udd1e", "b": "\\\\u0000"}')), LIMITS) is None


def test_the_singleton_key_limit_counts_utf8_bytes() -> None:
    """Up to the limit in UTF-8 bytes passes; one byte more is refused, naming the size and the limit."""
    assert check_row(row(lock="x" * 100), LIMITS) is None
    assert check_row(row(lock="é" * 50), LIMITS) is None
    assert check_row(row(lock="x" * 101), LIMITS) == (
        f"the singleton key '{'x' * 60}…' is 101 bytes; the queue's unique index holds at most 100 "
        "(shorten the singleton_key template, or hash the long part)"
    )
    long_lock = check_row(row(lock="é" * 50 + "x"), PROCRASTINATE)
    assert long_lock is not None
    assert long_lock.startswith("the queueing lock ")
    assert "is 101 bytes" in long_lock


def test_numbers_at_numerics_bounds() -> None:
    """The bounds measured on PostgreSQL 15 (`'[1e131071]'::json::jsonb` fits, `'[1e131072]'` overflows; the
    same for 1e-16383 and 1e-16384), found in text that also holds an escape."""
    for text, fits in [("1e131071", True), ("1e131072", False), ("1e-16383", True), ("1e-16384", False)]:
        found = check_row(row(JsonText(f'{{"u": "\\u00e9", "n": {text}}}')), LIMITS)
        assert (found is None) is fits, text


def test_long_payload_text_is_checked_in_full() -> None:
    """Text of LONG_PAYLOAD characters or more is parsed even without an escape in it."""
    filler = "x" * LONG_PAYLOAD
    assert check_row(row(JsonText(f'{{"f": "{filler}", "n": 1e-20000}}')), LIMITS) is not None
    assert check_row(row(JsonText(f'{{"f": "{filler}", "n": 1e-200}}')), LIMITS) is None


def test_object_keys_that_are_not_text() -> None:
    """JSON writes a number key as text (pg-boss); procrastinate passes keys as keyword arguments: text only."""
    assert check_row(row({1: "a", False: "b", None: "c", 2.5: "d"}), LIMITS) is None
    assert check_row(row({1: "a"}), PROCRASTINATE) == (
        "the payload object at data has the key 1 of type int; its keys must be text"
    )
    assert check_row(row({("a",): 1}), LIMITS) is not None


def test_printable_escapes_what_no_output_carries() -> None:
    """Lone surrogates and control characters become escapes; other text is unchanged."""
    assert printable("plain key") == "plain key"
    assert printable("naïve ☃") == "naïve ☃"
    assert printable("a\x00b\ud800\n") == "a\\x00b\\ud800\\x0a"
    printable("\udfff\x07").encode("utf-8")


# Any JSON value, with any text (NUL and lone surrogates included) and any float (NaN and infinities).
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)
_ESCAPED_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def oracle(value: Any) -> bool:
    """Whether jsonb can hold `value`, decided another way: JSON can write it (no NaN), its text has a UTF-8
    form, and it has no escaped NUL."""
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
        text.encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        return False
    return _ESCAPED_NUL.search(text) is None


@given(data=st.dictionaries(st.text(max_size=5), json_values, max_size=5))
def test_object_payloads_agree_with_an_independent_oracle(data: dict[str, Any]) -> None:
    """For any object payload, check_row passes it exactly when JSON can write it as jsonb would hold it."""
    assert (check_row(row(data), LIMITS) is None) is oracle(data)


@given(data=st.dictionaries(st.text(max_size=5), json_values, max_size=5))
def test_text_payloads_agree_with_object_payloads(data: dict[str, Any]) -> None:
    """The same payload as cohort JSON text (escaped, as json columns keep it) gets the same verdict."""
    try:
        text = json.dumps(data, allow_nan=False)  # ASCII: a NUL or a surrogate is an escape
    except ValueError:
        return  # NaN has no JSON text: a json column cannot hold it
    assert (check_row(row(JsonText(text)), LIMITS) is None) is (check_row(row(data), LIMITS) is None)


@given(key=st.text(), lock=st.text())
def test_keys_agree_with_postgresql_text(key: str, lock: str) -> None:
    """A key passes exactly when it is text PostgreSQL holds (UTF-8, no NUL) and fits the index."""

    def holds(text: str, limit: int | None = None) -> bool:
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError:
            return False
        return "\x00" not in text and (limit is None or size <= limit)

    assert (check_row(row(key=key, lock=lock), LIMITS) is None) is (holds(key) and holds(lock, 100))
