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


def apply_procrastinate_schema(dsn: str) -> None:
    """Let procrastinate create its own schema in `dsn` (`apply_schema`), plus the interop app's
    `interop_done` table."""
    import procrastinate

    from tests.interop.procrastinate_app import DONE_TABLE

    app = procrastinate.App(connector=procrastinate.SyncPsycopgConnector(conninfo=dsn))
    with app.open():
        app.schema_manager.apply_schema()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(DONE_TABLE)


@pytest.fixture(scope="session")
def procrastinate_template() -> Iterator[str]:
    """Name of a database whose schema procrastinate applied itself, plus `interop_done`."""
    name = f"sched_tpl_procrastinate_{uuid.uuid4().hex[:8]}"
    dsn = create_database(name)
    try:
        apply_procrastinate_schema(dsn)
        yield name
    finally:
        drop_database(name)


@pytest.fixture
def queue_dsn(make_database: MakeDatabase, procrastinate_template: str) -> str:
    """DSN of this test's clone of `procrastinate_template`."""
    return make_database(template=procrastinate_template)


QUEUES_TEMPLATE_PGBOSS_QUEUES = [
    {"name": "generate-insight-post", "options": {"policy": "stately"}},
    {"name": "lane-ui", "options": {"policy": "standard"}},
    {"name": "lane-batch", "options": {"policy": "standard"}},
    {"name": "bulk", "options": {"policy": "standard"}},
]
"""The pg-boss queues of `queues_template` (name, pg-boss Queue options)."""


@pytest.fixture(scope="session")
def queues_template() -> Iterator[str]:
    """Name of a database holding BOTH queue systems, each schema created by the real library: pg-boss's
    `start()` (plus `QUEUES_TEMPLATE_PGBOSS_QUEUES`) and procrastinate's `apply_schema` (plus the interop
    app's `interop_done` table)."""
    import json

    from tests.integration.pgboss.interop import node, to_url

    name = f"sched_tpl_queues_{uuid.uuid4().hex[:8]}"
    dsn = create_database(name)
    try:
        setup = node("setup.mjs", to_url(dsn), json.dumps(QUEUES_TEMPLATE_PGBOSS_QUEUES))
        assert setup == {"version": 46}
        apply_procrastinate_schema(dsn)
        yield name
    finally:
        drop_database(name)


@pytest.fixture
def queues_db(make_database: MakeDatabase, queues_template: str) -> str:
    """DSN of this test's clone of `queues_template` (pg-boss and procrastinate side by side)."""
    return make_database(template=queues_template)
