"""The cohort sandbox on a real PostgreSQL: one deadline bounds the whole read, whatever the query sets, and
nothing a cohort or watcher query does outlives it (its transaction is rolled back and its session closed)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from scheduler.cohorts import APPLICATION_NAME, open_sql_cohort
from scheduler.config import ConfigInvalid, load_config
from scheduler.errors import CohortError
from scheduler.fanout import Fanout, default_backends, fire
from scheduler.runtime.ledger import Ledger
from scheduler.watch.passes import watch_once
from tests.integration.watcher.conftest import db_now

if TYPE_CHECKING:
    from pathlib import Path

LIFTS_STATEMENT_TIMEOUT = """
select i as key, set_config('statement_timeout', '0', true) as lifted,
       pg_sleep(case when i > 5000 then 5 else 0 end) as slept
from generate_series(1, 5001) as i
"""
"""The first FETCH (5,000 rows) switches the server's statement timeout off; the second sleeps 5 s."""

DEADLINE = r"the cohort read passed its deadline of 1s and was cancelled; its `statement_timeout` bounds"


def cohort_backends(dsn: str, *, state: str | None = None) -> list[tuple[Any, ...]]:
    """The cohort reader's sessions on `dsn`'s database (in `state`, if given), seen from another session."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT pid, state, query FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = %s AND (%s::text IS NULL OR state = %s)",
            (APPLICATION_NAME, state, state),
        ).fetchall()


def large_objects(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone()
        assert row is not None
        return int(row[0])


def read_all(dsn: str, query: str, **kwargs: Any) -> list[Any]:
    with open_sql_cohort(
        dsn, query, {}, statement_timeout=kwargs.pop("limit", timedelta(seconds=5)), **kwargs
    ) as s:
        return [row["key"] for row in s.rows]


def test_the_deadline_cancels_a_query_that_lifted_statement_timeout(database: str) -> None:
    """A query that switches the server's statement timeout off in one fetch and sleeps in the next is
    cancelled at the reader's deadline: a CohortError naming the limit and the fix, and the backend no longer
    runs the statement (a cut connection alone would leave it sleeping)."""
    started = time.monotonic()
    with pytest.raises(CohortError, match=rf"^s\.yaml:4:7: schedule 'a': {DEADLINE}") as caught:
        read_all(
            database, LIFTS_STATEMENT_TIMEOUT, limit=timedelta(seconds=1), where="s.yaml:4:7: schedule 'a'"
        )
    assert isinstance(caught.value.__cause__, psycopg.errors.QueryCanceled)
    assert "raise it or make the query cheaper" in str(caught.value)
    assert cohort_backends(database, state="active") == []
    assert time.monotonic() - started < 5  # bounded: the 5 s sleep did not run out


STUBBORN = """
CREATE FUNCTION stubborn() RETURNS int LANGUAGE plpgsql AS $$
DECLARE started timestamptz := clock_timestamp();
BEGIN
    WHILE clock_timestamp() < started + interval '10 seconds' LOOP
        BEGIN
            PERFORM pg_sleep(0.05);
        EXCEPTION WHEN query_canceled THEN NULL;  -- swallows every cancel
        END;
    END LOOP;
    RETURN 1;
END $$
"""


def test_the_deadline_holds_against_a_statement_that_swallows_its_cancel(database: str) -> None:
    """A function that catches query_canceled outlives the cancel; the reader then cuts the connection, so
    the read still ends at its deadline, with the deadline's error, well before the function's 10 s."""
    with psycopg.connect(database, autocommit=True) as admin:
        admin.execute(STUBBORN)
    started = time.monotonic()
    with pytest.raises(CohortError, match=DEADLINE) as caught:
        read_all(database, "select stubborn() as key", limit=timedelta(seconds=1))
    # The cause is the cut connection, or, on a loaded machine, a cancel that reached the function outside its
    # handler (between two of its statements): either way the read ended at the deadline, not with the function.
    assert isinstance(caught.value.__cause__, psycopg.OperationalError)
    assert time.monotonic() - started < 10  # bounded: the function did not return first


def test_the_deadline_holds_for_the_count_too(database: str) -> None:
    """The count of a `spread` cohort runs under the same deadline: a query sleeping past it is cancelled."""
    query = "select 1 as key from (select set_config('statement_timeout', '0', true)) as s, pg_sleep(5)"
    with pytest.raises(CohortError, match=DEADLINE):
        read_all(database, query, limit=timedelta(seconds=1), count=True)
    assert cohort_backends(database, state="active") == []


def test_a_consumer_stalled_past_the_deadline_loses_the_session_and_its_next_fetch_fails(
    database: str,
) -> None:
    """A consumer that stalls between fetches past the deadline does not hold the snapshot: the session is
    ended while it stalls (although the query lifted the server's idle-in-transaction limit too), and the
    next fetch raises the deadline's error instead of reading on."""
    query = (
        "select i as key, set_config('idle_in_transaction_session_timeout', '0', true) as lifted,"
        " set_config('statement_timeout', '0', true) as lifted_too from generate_series(1, 12000) as i"
    )
    seen: list[int] = []

    def stall_after_the_first_row() -> None:
        with open_sql_cohort(database, query, {}, statement_timeout=timedelta(seconds=1)) as stream:
            for row in stream.rows:
                seen.append(row["key"])
                if len(seen) == 1:
                    assert len(cohort_backends(database)) == 1
                    for _ in range(200):  # the consumer stalls until the session is gone (at most 20 s)
                        if not cohort_backends(database):
                            break
                        time.sleep(0.1)
                    assert cohort_backends(database) == []

    with pytest.raises(CohortError, match=DEADLINE):
        stall_after_the_first_row()
    assert seen == list(range(1, 5001))  # the first fetch, not one row of the second


def test_the_server_limits_are_set_for_the_read(database: str) -> None:
    """Both server-side limits are the read's deadline."""
    query = (
        "select current_setting('statement_timeout') as key union all "
        "select current_setting('idle_in_transaction_session_timeout')"
    )
    assert read_all(database, query, limit=timedelta(seconds=7)) == ["7s", "7s"]


def test_a_large_object_written_by_a_cohort_query_does_not_persist(database: str) -> None:
    """PostgreSQL lets a READ ONLY transaction create a large object (committed, it stays: the control);
    the cohort's transaction is rolled back, so the count is unchanged."""
    before = large_objects(database)
    assert len(read_all(database, "select lo_from_bytea(0, 'x') as key")) == 1
    assert len(read_all(database, "select lo_from_bytea(0, 'x') as key", count=True)) == 1
    assert large_objects(database) == before
    with psycopg.connect(database) as control:
        control.read_only = True
        control.execute("select lo_from_bytea(0, 'x')")
    assert large_objects(database) == before + 1


def test_a_notify_from_a_cohort_query_is_never_delivered(database: str) -> None:
    """pg_notify is allowed in a READ ONLY transaction and delivered at commit (the control shows the
    listener would see it); the cohort's is never delivered."""
    with psycopg.connect(database, autocommit=True) as listener:
        heard: list[str] = []
        listener.add_notify_handler(lambda n: heard.append(n.payload))
        listener.execute("LISTEN cohort_probe")
        assert len(read_all(database, "select pg_notify('cohort_probe', 'from-cohort') as key")) == 1
        with psycopg.connect(database) as control:
            control.read_only = True
            control.execute("select pg_notify('cohort_probe', 'control')")
        listener.execute("SELECT 1")
        assert heard == ["control"]


def test_session_state_of_a_cohort_query_does_not_outlive_it(database: str) -> None:
    """A session-level advisory lock taken by the query is released with the read's session."""
    assert len(read_all(database, "select pg_advisory_lock(4242) as key")) == 1
    with psycopg.connect(database, autocommit=True) as other:
        assert other.execute("select pg_try_advisory_lock(4242)").fetchone() == (True,)


def test_a_read_abandoned_by_its_consumer_ends_its_session(database: str) -> None:
    """A consumer leaving the block mid-stream (an error of its own) leaves no session open."""

    def leave_after_the_first_row() -> None:
        query = "select i as key from generate_series(1, 12000) as i"
        with open_sql_cohort(database, query, {}, statement_timeout=timedelta(seconds=5)) as stream:
            next(iter(stream.rows))
            raise RuntimeError("consumer")

    with pytest.raises(RuntimeError, match="consumer"):
        leave_after_the_first_row()
    assert cohort_backends(database) == []


WATCHER_CONFIG = """
version: 1
databases:
  app: { dsn_env: APP_DATABASE_URL }
  queue: { dsn_env: QUEUE_DATABASE_URL }
queues:
  ui: { name: lane-ui, backend: pgboss, policy: standard }
schedules:
  slow-cohort:
    cron: "0 * * * *"
    cohort:
      sql: >
        select i::text as key, set_config('statement_timeout', '0', true) as lifted,
        pg_sleep(case when i > 5000 then 5 else 0 end) as slept from generate_series(1, 5001) as i
      statement_timeout: 1s
    queue: ui
    singleton_key: "slow:{key}"
watchers:
  leaky:
    sql: select lo_from_bytea(0, 'x')::text as key
    queue: ui
  slow:
    sql: >
      select i::text as key, set_config('statement_timeout', '0', true) as lifted,
      pg_sleep(case when i > 5000 then 5 else 0 end) as slept from generate_series(1, 5001) as i
    queue: ui
    statement_timeout: 1s
"""


@pytest.fixture
def watcher_fanout(queues_db: str, tmp_path: Path) -> Fanout:
    with psycopg.connect(queues_db) as conn:
        Ledger().migrate(conn)
    path = tmp_path / "w.yaml"
    path.write_text(WATCHER_CONFIG)
    env = {"APP_DATABASE_URL": queues_db, "QUEUE_DATABASE_URL": queues_db}
    return Fanout(load_config([path]), env, default_backends(), detail_limit=None)


def test_a_watcher_query_leaves_nothing_behind_and_holds_its_deadline(
    queues_db: str, watcher_fanout: Fanout
) -> None:
    """Watcher SQL goes through the same reader: its large object is rolled back (its re-emit is
    committed), and a watcher query that lifts the statement timeout is cancelled at its deadline."""
    before = large_objects(queues_db)
    result = watch_once(watcher_fanout, "leaky", db_now(queues_db), replica="r1")
    assert result.report.cohort_size == 1
    assert large_objects(queues_db) == before
    with psycopg.connect(queues_db) as conn:
        assert conn.execute("select count(*) from pgboss.job where name = 'lane-ui'").fetchone() == (1,)
    with pytest.raises(CohortError, match=rf"w\.yaml:\d+:\d+: watcher 'slow': {DEADLINE}"):
        watch_once(watcher_fanout, "slow", db_now(queues_db), replica="r1")
    assert cohort_backends(queues_db, state="active") == []


@pytest.mark.parametrize(
    ("timeout", "why"), [("0s", "greater than 0 seconds"), ("2d", "less than or equal to 1 day")]
)
def test_a_deadline_of_zero_or_past_a_day_is_refused_at_its_place(
    tmp_path: Path, timeout: str, why: str
) -> None:
    """PostgreSQL reads a statement_timeout of 0 as no limit at all (and the reader's deadline would end
    every read at once): `validate` refuses it, and one past a day, where it is written."""
    path = tmp_path / "w.yaml"
    text = WATCHER_CONFIG.replace("statement_timeout: 1s", f"statement_timeout: {timeout}")
    path.write_text(text)
    lines = [i + 1 for i, t in enumerate(text.splitlines()) if t.strip().startswith("statement_timeout:")]
    with pytest.raises(ConfigInvalid) as caught:
        load_config([path])
    found = caught.value.findings
    assert [(f.code, f.location.line if f.location else None) for f in found] == [
        ("CFG005", n) for n in lines
    ]
    assert [f.message.split(": input should be ")[0] for f in found] == [
        "schedules.slow-cohort.cohort.statement_timeout",
        "watchers.slow.statement_timeout",
    ]
    assert all(f"input should be {why}" in f.message for f in found)


def test_a_fanout_whose_cohort_passes_its_deadline_enqueues_nothing(
    queues_db: str, watcher_fanout: Fanout
) -> None:
    """The fan-out streams the first 5,000 rows into the queue, then the cohort's next fetch (after the
    query lifted the statement timeout) is cancelled at the deadline: the tick fails with the schedule's
    deadline error and its transaction leaves no job behind."""
    with pytest.raises(CohortError, match=rf"w\.yaml:\d+:\d+: schedule 'slow-cohort': {DEADLINE}"):
        fire(watcher_fanout, "slow-cohort", db_now(queues_db))
    with psycopg.connect(queues_db) as conn:
        assert conn.execute("select count(*) from pgboss.job where name = 'lane-ui'").fetchone() == (0,)
    assert cohort_backends(queues_db, state="active") == []
