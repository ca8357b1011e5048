"""pg-boss fixtures: one template database per session whose schema the REAL pg-boss 12.38.0 created
(`node tests/interop/setup.mjs`), cloned for each test."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

import psycopg
import pytest

from scheduler.backends.pgboss import PgBossBackend
from scheduler.backends.pgboss.adapter import COPY_THRESHOLD
from tests.conftest import MakeDatabase, create_database, drop_database
from tests.integration.pgboss.interop import TEMPLATE_QUEUES, node, to_url

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="session")
def pgboss_template() -> Iterator[str]:
    """Name of a database in which pg-boss's own start() built schema `pgboss` and the test queues."""
    name = f"sched_tpl_pgboss_{uuid.uuid4().hex[:8]}"
    dsn = create_database(name)
    try:
        setup = node("setup.mjs", to_url(dsn), json.dumps(TEMPLATE_QUEUES))
        assert setup == {"version": 46}
        yield name
    finally:
        drop_database(name)


@pytest.fixture
def pgboss_dsn(make_database: MakeDatabase, pgboss_template: str) -> str:
    """DSN of this test's clone of the pg-boss template."""
    return make_database(template=pgboss_template)


@pytest.fixture
def conn(pgboss_dsn: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A connection to the clone, outside autocommit: the test owns the transaction, like the runtime."""
    with psycopg.connect(pgboss_dsn) as connection:
        yield connection


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> PgBossBackend:
    """The adapter with its default COPY threshold; a test marked `@BOTH_PATHS` runs through both insert
    paths (the array INSERT, and the direct COPY with threshold 0)."""
    return PgBossBackend(copy_threshold=getattr(request, "param", COPY_THRESHOLD))


BOTH_PATHS = pytest.mark.parametrize("backend", [COPY_THRESHOLD, 0], ids=["arrays", "copy"], indirect=True)
"""Run a module's tests through the array INSERT and through the direct COPY."""
