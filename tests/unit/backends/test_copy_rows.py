"""The binary COPY the pg-boss adapter renders itself, read back field by field (the integration tests
compare the rows it writes with pg-boss's own send())."""

from __future__ import annotations

import json
import struct
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.backends.pgboss.adapter import _copy_rows, _QueueSettings
from scheduler.errors import PlanError

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
NOW = datetime(2026, 11, 24, 14, 0, 0, 123456, tzinfo=UTC)
SETTINGS = _QueueSettings(
    policy="stately",
    retry_limit=4,
    retry_delay=3,
    retry_backoff=True,
    retry_delay_max=None,
    expire_seconds=120,
    deletion_seconds=60,
    retention_seconds=3600,
    dead_letter="dead",
    heartbeat_seconds=None,
    now=NOW,
)


def read_copy(data: bytes) -> list[list[bytes | None]]:
    """Split binary COPY data into rows of raw fields (None for NULL), checking signature and trailer."""
    assert data.startswith(SIGNATURE)
    at, rows = len(SIGNATURE), []
    while True:
        (count,) = struct.unpack_from(">h", data, at)
        at += 2
        if count == -1:
            assert at == len(data)
            return rows
        fields: list[bytes | None] = []
        for _ in range(count):
            (length,) = struct.unpack_from(">i", data, at)
            at += 4
            if length == -1:
                fields.append(None)
            else:
                fields.append(data[at : at + length])
                at += length
        rows.append(fields)


def timestamp(field: bytes | None) -> datetime:
    assert field is not None
    return PG_EPOCH + timedelta(microseconds=struct.unpack(">q", field)[0])


def int4(field: bytes | None) -> int | None:
    return None if field is None else int(struct.unpack(">i", field)[0])


def test_every_column_of_a_row() -> None:
    """One row: the 18 columns of `job_copy`, in order, the queue's settings where the job sets none."""
    job_id = str(uuid.uuid4())
    start = datetime(2026, 11, 24, 15, 30, tzinfo=timezone(timedelta(hours=1)))
    (row,) = read_copy(_copy_rows("q", SETTINGS, [(job_id, '{"a": 1}', 7, start, "k", None, 9, None)]))

    assert len(row) == 18
    assert row[0] == uuid.UUID(job_id).bytes
    assert row[1] == b"q"
    assert row[2] == b'\x01{"a": 1}'  # jsonb: version 1, then the text
    assert int4(row[3]) == 7
    assert row[4] == b"created"
    assert timestamp(row[5]) == start
    assert timestamp(row[6]) == NOW
    assert row[7] == b"k"
    assert [int4(row[8]), int4(row[9]), row[10], int4(row[11]), int4(row[12]), int4(row[13])] == [
        4,
        9,
        b"\x01",
        None,
        120,
        60,
    ]
    assert timestamp(row[14]) == start + timedelta(seconds=3600)
    assert row[15:] == [b"stately", b"dead", None]


@given(
    st.lists(
        st.tuples(
            st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))),
            st.none()
            | st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))),
            st.datetimes(
                min_value=datetime(1990, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
            ),
        ),
        max_size=20,
    )
)
def test_payloads_keys_and_starts_read_back_exactly(jobs: list[tuple[str, str | None, datetime]]) -> None:
    """Any text (NUL and lone surrogates aside, which PostgreSQL text cannot hold) and any instant read
    back unchanged."""
    rows = [
        (str(uuid.uuid4()), json.dumps({"t": text}, ensure_ascii=False), 0, start, key, None, None, None)
        for text, key, start in jobs
    ]
    read = read_copy(_copy_rows("q", SETTINGS, rows))

    assert len(read) == len(rows)
    for (_, data, _, start, key, *_), fields in zip(rows, read, strict=True):
        assert fields[2] == b"\x01" + data.encode()
        assert fields[7] == (None if key is None else key.encode())
        assert timestamp(fields[5]) == start


def test_a_setting_outside_the_integer_range_is_a_plan_error() -> None:
    row = (str(uuid.uuid4()), "{}", 2**31, NOW, None, None, None, None)
    with pytest.raises(PlanError, match="integer range"):
        _copy_rows("q", SETTINGS, [row])


def test_a_lone_surrogate_is_a_plan_error() -> None:
    row = (str(uuid.uuid4()), "{}", 0, NOW, "key \ud800", None, None, None)
    with pytest.raises(PlanError, match="not valid Unicode"):
        _copy_rows("q", SETTINGS, [row])
