"""One statement per batch, whatever its size; bad payloads never reach the database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import psycopg
import pytest

from scheduler.errors import BackendError, PlanError
from scheduler.types import Accepted, Dropped
from tests.integration.procrastinate.conftest import batch, spec

if TYPE_CHECKING:
    from typing import LiteralString

    from scheduler.backends.procrastinate import ProcrastinateBackend

BULK = 20_000


class CountingCursor(psycopg.Cursor[Any]):
    """A real cursor that counts the statements sent through it (pg_stat_statements is not preloaded here)."""

    statements = 0

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> CountingCursor:
        CountingCursor.statements += 1
        super().execute(query, params, **kwargs)
        return self


@pytest.fixture
def counted(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    conn.cursor_factory = CountingCursor
    CountingCursor.statements = 0
    return conn


def _count(conn: psycopg.Connection[Any], query: LiteralString) -> Any:
    row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def test_twenty_thousand_rows_are_one_statement(
    backend: ProcrastinateBackend, counted: psycopg.Connection[Any]
) -> None:
    """A 20,000-job batch with no conflict is sent as exactly one statement and all jobs are accepted."""
    result = backend.enqueue_many(counted, batch(*(spec(f"e{i}", f"lock:{i}") for i in range(BULK))))
    assert CountingCursor.statements == 1
    assert len(result.outcomes) == BULK
    assert all(isinstance(o, Accepted) for o in result.outcomes)
    assert _count(counted, "SELECT count(*) FROM procrastinate_jobs") == BULK


def test_drops_cost_one_more_bounded_statement(
    backend: ProcrastinateBackend, counted: psycopg.Connection[Any]
) -> None:
    """A batch with conflicts is one insert plus one holder lookup, however many rows were dropped."""
    backend.enqueue_many(counted, batch(*(spec(f"old{i}", f"lock:{i}") for i in range(0, 2_000, 2))))
    CountingCursor.statements = 0
    result = backend.enqueue_many(counted, batch(*(spec(f"e{i}", f"lock:{i}") for i in range(2_000))))
    assert CountingCursor.statements == 2
    dropped = [o for o in result.outcomes if isinstance(o, Dropped)]
    assert [d.key for d in dropped] == [f"e{i}" for i in range(0, 2_000, 2)]
    assert all(d.holder_id and d.holder_state == "todo" for d in dropped)


def test_non_object_args_are_rejected_before_any_write(
    backend: ProcrastinateBackend, counted: psycopg.Connection[Any]
) -> None:
    """A job whose data is a JSON array fails the batch with PlanError before a single statement is sent."""
    jobs = [spec("a", "A"), spec("b", "B", data=cast(Any, [1, 2])), spec("c", "C")]
    with pytest.raises(PlanError) as caught:
        backend.enqueue_many(counted, batch(*jobs))
    assert str(caught.value) == (
        "queue 'records', key 'b': procrastinate job args must be a JSON object with string keys (they become "
        "the task's keyword arguments), got list. Nothing was enqueued for this batch."
    )
    assert CountingCursor.statements == 0
    assert _count(counted, "SELECT count(*) FROM procrastinate_jobs") == 0
    assert _count(counted, "SELECT is_called FROM procrastinate_jobs_id_seq") is False


def test_unserializable_args_are_rejected_before_any_write(
    backend: ProcrastinateBackend, counted: psycopg.Connection[Any]
) -> None:
    """A payload that is an object but not JSON (a set inside) fails with PlanError before any statement."""
    with pytest.raises(PlanError) as caught:
        backend.enqueue_many(counted, batch(spec("a", "A", data={"tags": {1, 2}})))
    assert str(caught.value) == (
        "queue 'records', key 'a': procrastinate job args are not JSON (Object of type set is not JSON "
        "serializable). Nothing was enqueued for this batch."
    )
    assert CountingCursor.statements == 0


def test_text_that_is_not_unicode_is_a_plan_error(
    backend: ProcrastinateBackend, counted: psycopg.Connection[Any]
) -> None:
    """A queueing lock with a lone surrogate (no UTF-8 form) is refused as a plan error, not a crash."""
    with pytest.raises(PlanError, match="not valid Unicode"):
        backend.enqueue_many(counted, batch(spec("a", "lock \ud800")))


def test_database_errors_become_backend_errors(
    backend: ProcrastinateBackend, conn: psycopg.Connection[Any]
) -> None:
    """A value the database rejects (priority beyond int) raises BackendError with the driver error as cause."""
    with pytest.raises(BackendError) as caught:
        backend.enqueue_many(conn, batch(spec("a", "A", priority=2**40)))
    assert isinstance(caught.value.__cause__, psycopg.errors.NumericValueOutOfRange)
    assert str(caught.value) == (
        "procrastinate queue 'interop' (records): statement job_insert_many failed [22003]: integer out of "
        "range. Nothing of this batch is committed by the scheduler; the caller's transaction must be rolled back."
    )
