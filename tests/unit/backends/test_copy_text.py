"""The COPY text the pg-boss adapter renders itself: every value survives PostgreSQL's text-format parsing."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from scheduler.backends.pgboss.adapter import _copy_field

_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_MEANING = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}


def parse_copy_field(field: str) -> str:
    """How COPY FROM's text format reads one field (the subset of escapes `_copy_field` writes)."""
    return _ESCAPE.sub(lambda m: _MEANING[m.group(1)], field)


@given(st.text(alphabet=st.characters(blacklist_characters="\x00")))
def test_a_field_reads_back_as_written(text: str) -> None:
    """Any text (NUL aside, which PostgreSQL text cannot hold) reads back unchanged and cannot split a row."""
    field = _copy_field(text)

    assert parse_copy_field(field) == text
    assert not {"\t", "\n", "\r"} & set(field)


def test_a_literal_backslash_n_is_not_null() -> None:
    r"""The two characters \N are a value, not NULL: the backslash is doubled."""
    assert _copy_field("\\N") == "\\\\N"
