"""The SQL cohort source on a real PostgreSQL: which errors it labels as the cohort's, and which it passes on."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from scheduler.cohorts import open_sql_cohort
from scheduler.errors import CohortError


def test_cohort_statement_error_is_a_cohort_error(database: str) -> None:
    """A failing cohort query raises CohortError prefixed with where it was written."""
    with (
        pytest.raises(CohortError, match=r"^s\.yaml:3:5: cohort query failed: division by zero"),
        open_sql_cohort(
            database, "select 1/0 as key", {}, statement_timeout=timedelta(seconds=5), where="s.yaml:3:5"
        ),
    ):
        pass


def test_error_of_the_callers_own_statement_passes_through(database: str) -> None:
    """A database error raised by the caller inside the block keeps its own type and is not called a cohort error."""

    def run() -> None:
        with open_sql_cohort(
            database, "select 1 as key", {}, statement_timeout=timedelta(seconds=5)
        ) as stream:
            assert [row["key"] for row in stream.rows] == [1]
            other.execute("select * from no_such_table")

    with psycopg.connect(database) as other, pytest.raises(psycopg.errors.UndefinedTable):
        run()


def test_fetch_error_while_streaming_is_a_cohort_error(database: str) -> None:
    """An error that surfaces while rows are fetched is reported as the cohort's."""
    query = "select i as key from generate_series(1, 20000) as i where 1 / (i - 15000) is not null"
    with (
        pytest.raises(CohortError, match="cohort query failed: division by zero"),
        open_sql_cohort(database, query, {}, statement_timeout=timedelta(seconds=5)) as stream,
    ):
        for _ in stream.rows:
            pass


def test_the_count_and_the_rows_come_from_one_snapshot(database: str) -> None:
    """The cohort is counted and read in one REPEATABLE READ transaction, so a row committed between the
    count and the read is in neither (a `spread` stagger and a procrastinate stream's ids rely on the
    count)."""
    query = "select current_setting('transaction_isolation') as key"
    with open_sql_cohort(database, query, {}, statement_timeout=timedelta(seconds=5), count=True) as stream:
        assert (stream.total, [row["key"] for row in stream.rows]) == (1, ["repeatable read"])
