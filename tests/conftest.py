"""Shared fixtures: a real PostgreSQL, one throwaway database per test (or per template).

Set SCHEDULER_TEST_ADMIN_DSN to point the suite at another server (default: the local trust-auth one).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg import sql

ADMIN_DSN = os.environ.get("SCHEDULER_TEST_ADMIN_DSN", "postgresql://root@127.0.0.1/postgres")


def dsn_for(dbname: str) -> str:
    """The admin DSN with its database swapped for `dbname`."""
    info = psycopg.conninfo.conninfo_to_dict(ADMIN_DSN)
    info["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items() if v is not None})


def create_database(name: str, template: str | None = None) -> str:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        conn.execute(query)
    return dsn_for(name)


def drop_database(name: str) -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


MakeDatabase = Callable[..., str]


@pytest.fixture
def make_database() -> Iterator[MakeDatabase]:
    """Factory: `make_database(template=None) -> dsn` of a new database, dropped after the test."""
    created: list[str] = []

    def make(template: str | None = None) -> str:
        name = f"sched_test_{uuid.uuid4().hex[:12]}"
        created.append(name)
        return create_database(name, template)

    yield make
    for name in created:
        drop_database(name)


@pytest.fixture
def database(make_database: MakeDatabase) -> str:
    """DSN of a fresh, empty database for this test."""
    return make_database()
