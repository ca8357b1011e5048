"""The ledger's statements on a real PostgreSQL: migrations, claims, failures, skips and the horizon."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from scheduler.runtime.catchup import Outcome, SkipReason
from scheduler.runtime.ledger import ALL_CLAIMS, LATEST_VERSION, MANUAL_CLAIMS, FiredBy, Ledger

TICK = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
NOW = TICK + timedelta(seconds=1)


def migrated(conn: psycopg.Connection[Any]) -> Ledger:
    ledger = Ledger()
    ledger.migrate(conn)
    return ledger


def test_migrate_is_idempotent(conn: psycopg.Connection[Any]) -> None:
    """A second migration applies nothing and the version stays the latest."""
    ledger = Ledger()
    first = ledger.migrate(conn)
    assert [m.version for m in first] == list(range(1, LATEST_VERSION + 1))
    assert ledger.migrate(conn) == []
    assert ledger.version(conn) == LATEST_VERSION


def test_version_of_missing_ledger_is_none(conn: psycopg.Connection[Any]) -> None:
    """Before any migration the ledger has no version."""
    assert Ledger("elsewhere").version(conn) is None


def test_replicas_migrating_together_do_not_race(queue_dsn: str) -> None:
    """Eight connections migrating at once all succeed under the advisory lock; each step is applied once."""
    errors: list[BaseException] = []

    def one() -> None:
        try:
            with psycopg.connect(queue_dsn) as c:
                Ledger().migrate(c)
        except BaseException as exc:  # the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    with psycopg.connect(queue_dsn) as c:
        assert c.execute("SELECT count(*) FROM scheduler.migration").fetchone() == (LATEST_VERSION,)


def test_custom_schema(conn: psycopg.Connection[Any]) -> None:
    """The ledger's schema name is configurable."""
    ledger = Ledger("ledger_two")
    ledger.migrate(conn)
    with conn.transaction():
        assert ledger.claim(conn, "s", TICK, "r1", NOW) == 1
    assert conn.execute("SELECT count(*) FROM ledger_two.tick").fetchone() == (1,)


def test_second_claim_of_done_tick_loses(conn: psycopg.Connection[Any], queue_dsn: str) -> None:
    """Once a claim committed, another replica's claim of the same tick returns nothing."""
    ledger = migrated(conn)
    with conn.transaction():
        assert ledger.claim(conn, "s", TICK, "r1", NOW) == 1
    with psycopg.connect(queue_dsn) as other, other.transaction():
        assert ledger.claim(other, "s", TICK, "r2", NOW) is None


def test_tick_lock_is_not_shared(conn: psycopg.Connection[Any], queue_dsn: str) -> None:
    """While one transaction holds a tick's lock, another fails to take it at once, and can after."""
    ledger = migrated(conn)
    with psycopg.connect(queue_dsn) as other:
        with conn.transaction():
            assert ledger.try_lock(conn, "s", TICK)
            with other.transaction():
                assert not ledger.try_lock(other, "s", TICK)
                assert ledger.try_lock(other, "s", TICK + timedelta(minutes=1))
        with other.transaction():
            assert ledger.try_lock(other, "s", TICK)


def test_failed_tick_is_reclaimed_with_next_attempt(conn: psycopg.Connection[Any]) -> None:
    """A failed tick can be claimed again; the attempt count goes up."""
    ledger = migrated(conn)
    assert ledger.fail(conn, "s", TICK, reason="boom", replica="r1", started_at=NOW, now=NOW) == 1
    assert ledger.fail(conn, "s", TICK, reason="boom", replica="r1", started_at=NOW, now=NOW) == 2
    with conn.transaction():
        assert ledger.claim(conn, "s", TICK, "r2", NOW) == 3
    rows = ledger.rows_since(conn, "s", TICK)
    assert rows[TICK].outcome is Outcome.DONE


def test_failure_never_overwrites_done(conn: psycopg.Connection[Any]) -> None:
    """Recording a failure for a tick that is done changes nothing."""
    ledger = migrated(conn)
    with conn.transaction():
        ledger.claim(conn, "s", TICK, "r1", NOW)
    assert ledger.fail(conn, "s", TICK, reason="late", replica="r2", started_at=NOW, now=NOW) is None
    assert ledger.rows_since(conn, "s", TICK)[TICK].outcome is Outcome.DONE


def test_skip_keeps_existing_rows(conn: psycopg.Connection[Any]) -> None:
    """Skipping records only ticks without a row."""
    ledger = migrated(conn)
    with conn.transaction():
        ledger.claim(conn, "s", TICK, "r1", NOW)
    later = TICK + timedelta(minutes=1)
    with conn.transaction():
        recorded = ledger.skip_many(
            conn, "s", [(TICK, SkipReason.TOO_OLD), (later, SkipReason.TOO_OLD)], "r1", NOW
        )
    assert recorded == [later]
    rows = ledger.rows_since(conn, "s", TICK)
    assert (rows[TICK].outcome, rows[later].outcome) == (Outcome.DONE, Outcome.SKIPPED)


def test_horizon_starts_at_first_sighting_and_never_goes_back(conn: psycopg.Connection[Any]) -> None:
    """The first replica to see a schedule sets its horizon; advancing to an earlier instant is ignored."""
    ledger = migrated(conn)
    with conn.transaction():
        assert ledger.horizon(conn, "s", TICK) == TICK
        assert ledger.horizon(conn, "s", TICK + timedelta(hours=1)) == TICK
        ledger.advance(conn, "s", TICK + timedelta(minutes=5))
        ledger.advance(conn, "s", TICK + timedelta(minutes=1))
        assert ledger.horizon(conn, "s", NOW) == TICK + timedelta(minutes=5)


def test_two_replicas_seeing_a_new_schedule_at_once_both_read_its_horizon(queue_dsn: str) -> None:
    """The second replica's first pass waits on the first one's uncommitted insert of the schedule's state,
    then reads the horizon the first one recorded (it found no row at all before: an AssertionError)."""
    with psycopg.connect(queue_dsn) as setup:
        Ledger().migrate(setup)
    first = psycopg.connect(queue_dsn)
    second = psycopg.connect(queue_dsn)
    results: list[datetime | BaseException] = []

    def second_pass() -> None:
        try:
            with second.transaction():
                results.append(Ledger().horizon(second, "new-schedule", NOW + timedelta(hours=1)))
        except BaseException as exc:  # the assertion below reports it
            results.append(exc)

    try:
        with first.transaction():
            assert Ledger().horizon(first, "new-schedule", NOW) == NOW
            pid = second.info.backend_pid
            thread = threading.Thread(target=second_pass)
            thread.start()
            with psycopg.connect(queue_dsn) as watch:
                for _ in range(500):  # until the second insert waits on the first one's row lock
                    row = watch.execute(
                        "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
                    ).fetchone()
                    if row and row[0] == "Lock":
                        break
                    threading.Event().wait(0.01)
                else:
                    raise AssertionError("the second replica's insert never waited on the first one")
        thread.join(timeout=10)
    finally:
        first.close()
        second.close()
    assert results == [NOW]


def test_a_manual_claim_takes_a_skipped_or_failed_tick_never_a_done_one(
    conn: psycopg.Connection[Any],
) -> None:
    """`scheduler fire`'s claim: a skipped tick (never fanned out) and a failed one are claimed as manual; a
    done tick is refused unless the claim is over every outcome (--force), which counts one more attempt."""
    ledger = migrated(conn)
    done, skipped, failed = TICK, TICK + timedelta(hours=1), TICK + timedelta(hours=2)
    with conn.transaction():
        ledger.claim(conn, "s", done, "r1", NOW)
        ledger.skip_many(conn, "s", [(skipped, SkipReason.TOO_OLD)], "r1", NOW)
    ledger.fail(conn, "s", failed, reason="boom", replica="r1", started_at=NOW, now=NOW)

    def manual(tick: datetime, over: tuple[Outcome, ...] = MANUAL_CLAIMS) -> int | None:
        with conn.transaction():
            return ledger.claim(conn, "s", tick, "me", NOW, fired_by=FiredBy.MANUAL, over=over)

    assert (manual(done), manual(skipped), manual(failed)) == (None, 1, 2)
    assert manual(done, ALL_CLAIMS) == 2
    rows = {t: ledger.get(conn, "s", t) for t in (done, skipped, failed)}
    assert {t: (r.outcome, r.fired_by, r.replica, r.reason) for t, r in rows.items() if r} == {
        done: ("done", "manual", "me", None),
        skipped: ("done", "manual", "me", None),
        failed: ("done", "manual", "me", None),
    }


def test_the_sidecar_never_claims_a_tick_fired_by_hand(conn: psycopg.Connection[Any], queue_dsn: str) -> None:
    """A tick claimed by `scheduler fire` is done: the replica that reaches it later loses its claim."""
    ledger = migrated(conn)
    with conn.transaction():
        assert ledger.claim(conn, "s", TICK, "me", NOW, fired_by=FiredBy.MANUAL, over=MANUAL_CLAIMS) == 1
    with psycopg.connect(queue_dsn) as other, other.transaction():
        assert ledger.claim(other, "s", TICK, "r1", NOW) is None
    row = ledger.get(conn, "s", TICK)
    assert row is not None
    assert (row.fired_by, row.replica) == ("manual", "me")


def test_recent_reads_a_ledger_from_before_step_5_as_scheduled(conn: psycopg.Connection[Any]) -> None:
    """`status` never migrates: on a ledger without `fired_by` every tick reads as the sidecar's."""
    ledger = Ledger("old_ledger")
    conn.execute("SET LOCAL client_min_messages = warning")
    schema = psycopg.sql.Identifier("old_ledger")
    conn.execute(psycopg.sql.SQL("CREATE SCHEMA {}").format(schema))
    conn.execute(
        psycopg.sql.SQL(
            "CREATE TABLE {}.tick (schedule text, tick timestamptz, outcome text, reason text, replica text, "
            "attempts integer, started_at timestamptz, finished_at timestamptz, accepted integer, "
            "dropped integer, dropped_by_reason jsonb)"
        ).format(schema)
    )
    conn.execute(
        psycopg.sql.SQL(
            "INSERT INTO {}.tick VALUES ('s', %s, 'done', NULL, 'r1', 1, %s, %s, 3, 0, '{{}}')"
        ).format(schema),
        (TICK, NOW, NOW),
    )
    [row] = ledger.recent(conn, ["s"], 5)
    assert (row.tick, row.outcome, row.fired_by, row.accepted) == (TICK, "done", "scheduled", 3)
