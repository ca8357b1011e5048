"""The schema check: only pg-boss 12.38.0's schema version 46 is written to."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import psycopg
import pytest

from scheduler.errors import SchemaMismatch
from tests.integration.pgboss.interop import INCIDENT_QUEUE, queue_ref

if TYPE_CHECKING:
    from scheduler.backends.pgboss import PgBossBackend
    from tests.conftest import MakeDatabase

QUEUE = replace(queue_ref(INCIDENT_QUEUE), dsn_env="QUEUE_DATABASE_URL")
MIGRATE = 'npx --yes pg-boss@12.38.0 migrate --connection-string "$QUEUE_DATABASE_URL"'


def test_check_schema_accepts_version_46(
    conn: psycopg.Connection[tuple[object, ...]], backend: PgBossBackend
) -> None:
    """The schema the real pg-boss 12.38.0 created passes and reports "46"."""
    assert backend.check_schema(conn, QUEUE) == "46"


def test_check_schema_rejects_another_version(
    conn: psycopg.Connection[tuple[object, ...]], backend: PgBossBackend
) -> None:
    """A schema on version 45 raises SchemaMismatch naming the version found, the one supported and the fix."""
    conn.execute("UPDATE pgboss.version SET version = 45")
    with pytest.raises(SchemaMismatch) as caught:
        backend.check_schema(conn, QUEUE)
    assert str(caught.value) == (
        'pg-boss schema version 45 found in schema "pgboss"; this scheduler supports 46 (pg-boss 12.38.0). '
        f"Migrate it with pg-boss's own CLI (Node >= 22.12): `{MIGRATE}`, or point the queue at a schema on "
        "version 46."
    )


def test_check_schema_refuses_a_newer_version_without_suggesting_a_migration(
    conn: psycopg.Connection[tuple[object, ...]], backend: PgBossBackend
) -> None:
    """A schema on version 47 cannot be migrated back: the message says so instead of offering `migrate`."""
    conn.execute("UPDATE pgboss.version SET version = 47")
    with pytest.raises(SchemaMismatch) as caught:
        backend.check_schema(conn, QUEUE)
    assert str(caught.value) == (
        'pg-boss schema version 47 found in schema "pgboss"; this scheduler supports 46 (pg-boss 12.38.0). '
        "pg-boss does not migrate a schema back: point the queue at a schema on version 46, or run a "
        "scheduler built for version 47."
    )


def test_check_schema_reports_pg_boss_not_installed(
    make_database: MakeDatabase, backend: PgBossBackend
) -> None:
    """A database without pg-boss's schema raises SchemaMismatch saying so, and the transaction stays usable."""
    with psycopg.connect(make_database()) as conn:
        with pytest.raises(SchemaMismatch) as caught:
            backend.check_schema(conn, QUEUE)
        assert str(caught.value) == (
            'pg-boss is not installed in schema "pgboss" (no table "pgboss".version). Create it with '
            f"pg-boss's own CLI (Node >= 22.12): `{MIGRATE}`, or set the queue's `schema:` to the schema "
            "pg-boss uses."
        )
        assert conn.execute("SELECT 1").fetchone() == (1,)
