"""Fixtures for the runtime on a real PostgreSQL: a procrastinate queue database (schema applied by
procrastinate itself) and connections to it.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import procrastinate
import psycopg
import pytest

from tests.conftest import MakeDatabase, create_database, drop_database

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="session")
def runtime_template() -> Iterator[str]:
    """A database whose schema procrastinate applied itself (`apply_schema`)."""
    name = f"sched_tpl_runtime_{uuid.uuid4().hex[:8]}"
    dsn = create_database(name)
    try:
        app = procrastinate.App(connector=procrastinate.SyncPsycopgConnector(conninfo=dsn))
        with app.open():
            app.schema_manager.apply_schema()
        yield name
    finally:
        drop_database(name)


@pytest.fixture
def queue_dsn(make_database: MakeDatabase, runtime_template: str) -> str:
    return make_database(template=runtime_template)


@pytest.fixture
def conn(queue_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(queue_dsn) as conn:
        yield conn
