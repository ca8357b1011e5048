"""PostgreSQL's binary COPY format, the parts both backends render rows with (in their planning thread, so
the enqueue loop only forwards bytes and the server parses no text).

A binary COPY is `SIGNATURE`, then per row its field count (int16) and per field its length (int32, -1
for NULL) and bytes, then `TRAILER`. Timestamps are microseconds since `PG_EPOCH`; jsonb is a version
byte (1) followed by the JSON text.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from typing import Final

PG_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)
MICROSECOND: Final = timedelta(microseconds=1)
SIGNATURE: Final = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags 0, no header extension
TRAILER: Final = b"\xff\xff"
NULL: Final = b"\xff\xff\xff\xff"
length: Final = struct.Struct(">i").pack
jsonb_header: Final = struct.Struct(">ib").pack
"""A jsonb field's length, then its binary format version (1); the JSON text follows."""
int4_field: Final = struct.Struct(">ii").pack
timestamp_field: Final = struct.Struct(">iq").pack


def text_field(text: str) -> bytes:
    """A text (or varchar) field: its UTF-8 bytes, length first."""
    data = text.encode("utf-8")
    return length(len(data)) + data


def int_field(value: int | None) -> bytes:
    """An int4 field, or NULL."""
    return NULL if value is None else int4_field(4, value)


def jsonb_field(text: str) -> bytes:
    """A jsonb field holding the JSON `text` (already valid JSON)."""
    data = text.encode("utf-8")
    return jsonb_header(len(data) + 1, 1) + data


def microseconds(when: datetime) -> int:
    """An aware instant as a binary timestamptz value: microseconds since `PG_EPOCH`."""
    return (when - PG_EPOCH) // MICROSECOND


def body(data: bytes) -> memoryview:
    """A whole binary COPY's rows, without its signature and trailer (to send several into one COPY)."""
    return memoryview(data)[len(SIGNATURE) : -len(TRAILER)]
