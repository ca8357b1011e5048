"""Fixtures for the runtime on a real PostgreSQL: a procrastinate queue database (schema applied by
procrastinate itself) and connections to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg
import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def conn(queue_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(queue_dsn) as conn:
        yield conn
