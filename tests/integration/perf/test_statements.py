"""The structural facts behind the throughput (benchmarks/ measures the speed; this only counts): whatever
the cohort size, a fan-out uses one queue connection and one COPY straight into the queue's job table
(pg-boss's `job`, procrastinate's `procrastinate_jobs`; no INSERT), plus a fixed handful of small
statements, also when jobs hold some of the tick's slots as it begins (read once, left out of the COPY);
more held slots than it keeps, or a slot taken during the fan-out, turn it into one statement per chunk,
with the same exact report."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import psycopg
import pytest
from psycopg import sql

from scheduler.backends.pgboss import PgBossBackend
from scheduler.backends.procrastinate import ProcrastinateBackend
from scheduler.config import load_config
from scheduler.fanout import QUEUE_APPLICATION_NAME, Fanout, default_backends, fire
from scheduler.types import Dropped, DropReason
from tests.integration.fanout.conftest import HEADER, job_count
from tests.integration.pgboss.interop import send_steps
from tests.integration.procrastinate.conftest import defer_holder

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from scheduler.backends.base import Backend
    from scheduler.types import Batch, FanoutReport, QueueRef

TICK = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
CHUNK = 2500
"""Above the pg-boss adapter's copy threshold, so every chunk takes the COPY path."""
SCHEDULE = """\
schedules:
  everyone:
    cron: "0 * * * *"
    cohort:
      sql: select i as key, json_build_object('n', i) as data from generate_series(1, %(size)s) as i
    queue: %(queue)s
    singleton_key: "n:{key}"
    stagger: { window: 60m, strategy: hash }
"""
QUEUES = {"bulk": "bulk", "insights": "generate-insight-post", "records": "records"}
"""Logical → queue name: `bulk` is pg-boss `standard` (no index can refuse a row), `insights` is pg-boss
`stately`, `records` is procrastinate (one todo job per queueing lock)."""


class CountingConnection(psycopg.Connection[Any]):
    """A connection that keeps the text of every statement and COPY its cursors sent."""

    statements: list[str]


class CountingCursor(psycopg.Cursor[Any]):
    """A cursor that notes the text of every statement and COPY sent through it, on its connection."""

    def _note(self, query: Any) -> None:
        cast(CountingConnection, self.connection).statements.append(_text(self, query))

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        self._note(query)
        return super().execute(query, params, **kwargs)

    def copy(self, statement: Any, params: Any = None, **kwargs: Any) -> Any:
        self._note(statement)
        return super().copy(statement, params, **kwargs)


def _text(cur: psycopg.Cursor[Any], query: Any) -> str:
    if isinstance(query, sql.Composable):
        return query.as_string(cur)
    return query.decode() if isinstance(query, bytes) else str(query)


@dataclass(frozen=True)
class CountingFanout(Fanout):
    """A Fanout whose queue connections count their statements; keeps every connection it opened."""

    opened: list[CountingConnection] | None = None

    def connect_queue_db(self, name: str) -> psycopg.Connection[Any]:
        conn = CountingConnection.connect(
            self.dsn(self.queue_database(name)),
            application_name=QUEUE_APPLICATION_NAME,
            cursor_factory=CountingCursor,
        )
        conn.statements = []
        assert self.opened is not None
        self.opened.append(conn)
        return conn


def _fan_out(
    tmp_path: Path,
    queues_db: str,
    size: int,
    queue: str = "bulk",
    backend: Backend | None = None,
    spill_after: int = 250_000,
    schedule: str = SCHEDULE,
) -> tuple[FanoutReport, list[str]]:
    """Fire schedule `everyone` (`schedule`, with `%(size)s` and `%(queue)s` filled in) on a counting
    connection; the report and the statements the queue database saw."""
    path = tmp_path / f"schedules-{queue}-{size}.yaml"
    path.write_text(HEADER + schedule.replace("%(size)s", str(size)).replace("%(queue)s", queue))
    environ = {"APP_DATABASE_URL": queues_db, "QUEUE_DATABASE_URL": queues_db}
    backends = default_backends()
    if backend is not None:
        backends[backend.kind] = backend
    opened: list[CountingConnection] = []
    fanout = CountingFanout(
        load_config([path]),
        environ,
        backends,
        chunk_size=CHUNK,
        detail_limit=None,
        spill_after=spill_after,
        opened=opened,
    )
    report = fire(fanout, "everyone", TICK).report
    assert (report.planned, report.connections_used) == (size, 1)
    assert len(opened) == 1, "a fan-out opens exactly one queue connection"
    return report, opened[0].statements


def _count(statements: list[str], start: str) -> int:
    return sum(" ".join(s.split()).startswith(start) for s in statements)


def _empty(queues_db: str, queue: str) -> None:
    with psycopg.connect(queues_db, autocommit=True) as db:
        if queue == "records":
            db.execute("DELETE FROM procrastinate_jobs")
        else:
            db.execute("DELETE FROM pgboss.job WHERE name = %s", (QUEUES[queue],))


def _hold(queues_db: str, queue: str, key: int) -> str:
    """A waiting job holding slot `n:<key>`, sent by the real pg-boss; its id."""
    sent = send_steps(
        queues_db,
        [{"op": "send", "queue": QUEUES[queue], "data": {"n": key}, "options": {"singletonKey": f"n:{key}"}}],
    )
    return str(sent[0]["id"])


def _only_drop(report: FanoutReport) -> Dropped:
    (drop,) = [d for totals in report.queues.values() for d in totals.dropped_sample]
    return drop


@pytest.mark.parametrize("queue", ["bulk", "insights"])
def test_one_copy_per_fan_out_whatever_the_cohort_size(tmp_path: Path, queues_db: str, queue: str) -> None:
    """Cohorts of 5,000 and 25,000 (2 and 10 chunks) into an empty queue, under a policy that never refuses
    a row and under one that would: one COPY into pgboss.job for the whole fan-out, no INSERT, and the same
    statements for both sizes; nothing is sent per job or per chunk. Also when the tick's keys outgrow the
    memory (`spill_after`, 250,000 by default; 5,000 here, so 20,000 keys move to the local store): the
    queue database sees the same statements."""
    runs = {}
    for size, spill_after in ((5_000, 250_000), (25_000, 250_000), (25_000, 5_000)):
        _empty(queues_db, queue)
        report, runs[size, spill_after] = _fan_out(tmp_path, queues_db, size, queue, spill_after=spill_after)
        assert report.accepted == size
        with psycopg.connect(queues_db) as db:
            assert job_count(db, QUEUES[queue]) == size

    for statements in runs.values():
        assert _count(statements, 'COPY "pgboss".job ') == 1
        assert _count(statements, "COPY ") == 1
        assert _count(statements, "INSERT ") == 0
    assert len({len(statements) for statements in runs.values()}) == 1, runs


def test_a_queue_with_a_held_slot_reads_it_once_and_keeps_one_copy(tmp_path: Path, queues_db: str) -> None:
    """A job already waits under one of the tick's keys: the fan-out reads the queue's held slots once as it
    begins, leaves that key's job out of its one COPY, and reports the drop exactly, naming the waiting job."""
    _empty(queues_db, "insights")
    holder = _hold(queues_db, "insights", 7_000)
    report, statements = _fan_out(tmp_path, queues_db, 10_000, "insights")
    assert (report.accepted, report.dropped) == (9_999, 1)
    drop = _only_drop(report)
    assert (drop.key, drop.reason, drop.holder_id, drop.holder_state) == (
        "7000",
        DropReason.POLICY_CONFLICT,
        holder,
        "created",
    )
    assert _count(statements, 'COPY "pgboss".job ') == 1
    assert _count(statements, "INSERT ") == 0
    with psycopg.connect(queues_db) as db:
        assert job_count(db, QUEUES["insights"]) == 10_000


def test_a_queue_with_more_held_slots_than_it_keeps_goes_chunk_by_chunk(
    tmp_path: Path, queues_db: str
) -> None:
    """More jobs hold slots than `held_limit` allows to keep: the fan-out does not try one COPY for
    everything but one statement per chunk, and reports the drops exactly."""
    _empty(queues_db, "insights")
    holders = {key: _hold(queues_db, "insights", key) for key in (3_000, 7_000)}
    report, statements = _fan_out(tmp_path, queues_db, 10_000, "insights", PgBossBackend(held_limit=1))
    assert (report.accepted, report.dropped) == (9_998, 2)
    drops = [d for totals in report.queues.values() for d in totals.dropped_sample]
    assert sorted((d.key, d.reason, d.holder_id, d.holder_state) for d in drops) == [
        (str(key), DropReason.POLICY_CONFLICT, holder, "created") for key, holder in sorted(holders.items())
    ]
    assert _count(statements, "COPY ") + _count(statements, "INSERT ") >= 10_000 // CHUNK
    with psycopg.connect(queues_db) as db:
        assert job_count(db, QUEUES["insights"]) == 10_000


class TakesSlotAfterRead(ABC):
    """A backend where another client takes slot `n:<key>` (`_take`) just after the fan-out read what is
    held (so the fan-out believes it free, and its one COPY is refused at its end). Mixed in before the
    backend class."""

    def __init__(self, queues_db: str, key: int) -> None:
        super().__init__()
        self.queues_db, self.key, self.holder = queues_db, key, ""

    @abstractmethod
    def _take(self) -> str:
        """Make another client hold slot `n:<key>`; the holding job's id."""

    def preparer(
        self, conn: psycopg.Connection[Any], queue: QueueRef, *, dry: bool = False, keyed: bool = True
    ) -> Callable[[Batch], object]:
        prepare = super().preparer(conn, queue, dry=dry, keyed=keyed)  # the backend's, next in the MRO
        if not self.holder:
            self.holder = self._take()
        return prepare


class HoldingBackend(TakesSlotAfterRead, PgBossBackend):
    """pg-boss, where a job sent by the real pg-boss takes the slot after the fan-out read the settings."""

    def _take(self) -> str:
        return _hold(self.queues_db, "insights", self.key)


def test_a_fan_out_whose_one_copy_is_refused_is_done_again_chunk_by_chunk(
    tmp_path: Path, queues_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A slot taken by another client while the fan-out runs fails its one COPY at the end: that COPY is
    rolled back and the tick done again chunk by chunk; the report is exact, nothing is written twice."""
    _empty(queues_db, "insights")
    backend = HoldingBackend(queues_db, 7_000)
    with caplog.at_level("INFO", logger="scheduler.fanout"):
        report, statements = _fan_out(tmp_path, queues_db, 10_000, "insights", backend)
    assert (report.accepted, report.dropped, report.planned) == (9_999, 1, 10_000)
    drop = _only_drop(report)
    assert (drop.key, drop.reason, drop.holder_id) == ("7000", DropReason.POLICY_CONFLICT, backend.holder)
    assert len({a.job_id for t in report.queues.values() for a in t.accepted_sample}) == 9_999
    assert "one statement per queue was refused" in caplog.text
    # The refused COPY; then, as the queue's slots are known to be taken on this connection, each chunk
    # goes through the staging table and one INSERT … ON CONFLICT.
    assert _count(statements, 'COPY "pgboss".job ') == 1
    assert _count(statements, "INSERT ") == 10_000 // CHUNK
    with psycopg.connect(queues_db) as db:
        assert job_count(db, QUEUES["insights"]) == 10_000


def _defer(queues_db: str, key: int) -> str:
    """A todo job holding queueing lock `n:<key>`, deferred by procrastinate's own API; its id."""
    return defer_holder(queues_db, f"n:{key}", QUEUES["records"], {"n": key})


def _procrastinate_rows(queues_db: str) -> tuple[int, int, set[str]]:
    """Jobs in `records`, their `deferred` events (one per job the insert trigger saw), and their ids."""
    with psycopg.connect(queues_db) as db:
        ids = {
            str(r[0]) for r in db.execute("SELECT id FROM procrastinate_jobs WHERE queue_name = 'records'")
        }
        events = db.execute(
            "SELECT count(*) FROM procrastinate_events e JOIN procrastinate_jobs j ON j.id = e.job_id "
            "WHERE j.queue_name = 'records' AND e.type = 'deferred'"
        ).fetchone()
    assert events is not None
    return len(ids), int(events[0]), ids


def _accepted_ids(report: FanoutReport) -> set[str]:
    return {a.job_id for totals in report.queues.values() for a in totals.accepted_sample}


def test_one_copy_into_procrastinate_per_fan_out_whatever_the_cohort_size(
    tmp_path: Path, queues_db: str
) -> None:
    """Cohorts of 5,000 and 25,000 into a procrastinate queue, and 25,000 with the tick's keys spilled: one
    COPY into procrastinate_jobs for the whole fan-out, no INSERT, the same statements at every size; the
    ids reported are the rows written, and procrastinate's insert triggers saw every row."""
    runs = {}
    for size, spill_after in ((5_000, 250_000), (25_000, 250_000), (25_000, 5_000)):
        _empty(queues_db, "records")
        report, runs[size, spill_after] = _fan_out(
            tmp_path, queues_db, size, "records", spill_after=spill_after
        )
        assert report.accepted == size
        jobs, events, ids = _procrastinate_rows(queues_db)
        assert (jobs, events) == (size, size)
        assert _accepted_ids(report) == ids

    for statements in runs.values():
        assert _count(statements, "COPY procrastinate_jobs ") == 1
        assert _count(statements, "COPY ") == 1
        assert _count(statements, "INSERT ") + _count(statements, "WITH input ") == 0
    assert len({len(statements) for statements in runs.values()}) == 1, runs


def test_a_held_queueing_lock_is_read_once_and_keeps_one_copy(tmp_path: Path, queues_db: str) -> None:
    """A todo job deferred by procrastinate already holds one of the tick's queueing locks: the fan-out
    reads the held locks once as it begins, leaves that job out of its one COPY and names the holder."""
    _empty(queues_db, "records")
    holder = _defer(queues_db, 7_000)
    report, statements = _fan_out(tmp_path, queues_db, 10_000, "records")
    assert (report.accepted, report.dropped) == (9_999, 1)
    drop = _only_drop(report)
    assert (drop.key, drop.reason, drop.policy, drop.holder_id, drop.holder_state) == (
        "7000",
        DropReason.POLICY_CONFLICT,
        "queueing_lock",
        holder,
        "todo",
    )
    assert _count(statements, "COPY procrastinate_jobs ") == 1
    assert _count(statements, "WITH input ") == 0
    assert _procrastinate_rows(queues_db)[0] == 10_000


def test_more_held_queueing_locks_than_kept_go_chunk_by_chunk(tmp_path: Path, queues_db: str) -> None:
    """More todo jobs hold queueing locks than `held_limit` keeps: one `job_insert_many` per chunk, no COPY,
    and the same exact drops."""
    _empty(queues_db, "records")
    holders = {key: _defer(queues_db, key) for key in (3_000, 7_000)}
    report, statements = _fan_out(tmp_path, queues_db, 10_000, "records", ProcrastinateBackend(held_limit=1))
    assert (report.accepted, report.dropped) == (9_998, 2)
    drops = [d for totals in report.queues.values() for d in totals.dropped_sample]
    assert sorted((d.key, d.reason, d.holder_id, d.holder_state) for d in drops) == [
        (str(key), DropReason.POLICY_CONFLICT, holder, "todo") for key, holder in sorted(holders.items())
    ]
    assert _count(statements, "COPY ") == 0
    assert _count(statements, "WITH input ") == 10_000 // CHUNK


class LockTakingBackend(TakesSlotAfterRead, ProcrastinateBackend):
    """procrastinate, where a job deferred by procrastinate takes the lock after the fan-out read the held
    locks."""

    def _take(self) -> str:
        return _defer(self.queues_db, self.key)


def test_a_procrastinate_copy_refused_is_done_again_chunk_by_chunk(
    tmp_path: Path, queues_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A queueing lock taken by another client while the fan-out runs refuses its one COPY: it is rolled
    back and the tick done again chunk by chunk; exact report, nothing written twice, no id reused."""
    _empty(queues_db, "records")
    backend = LockTakingBackend(queues_db, 7_000)
    with caplog.at_level("INFO", logger="scheduler.fanout"):
        report, statements = _fan_out(tmp_path, queues_db, 10_000, "records", backend)
    assert (report.accepted, report.dropped, report.planned) == (9_999, 1, 10_000)
    drop = _only_drop(report)
    assert (drop.key, drop.reason, drop.holder_id, drop.holder_state) == (
        "7000",
        DropReason.POLICY_CONFLICT,
        backend.holder,
        "todo",
    )
    assert "one statement per queue was refused" in caplog.text
    assert _count(statements, "COPY procrastinate_jobs ") == 1
    assert _count(statements, "WITH input ") == 10_000 // CHUNK
    jobs, events, ids = _procrastinate_rows(queues_db)
    assert (jobs, events) == (10_000, 10_000)
    assert _accepted_ids(report) | {backend.holder} == ids


MIXED = """\
schedules:
  everyone:
    cron: "0 * * * *"
    cohort:
      sql: >-
        select i as key, json_build_object('n', i) as data, case when i %% 2 = 0 then 'proc' end as source
        from generate_series(1, %(size)s) as i
    lane: %(queue)s
    singleton_key: "n:{key}"
    stagger: { window: 60m, strategy: hash }
"""
"""A lane whose rows alternate between a pg-boss queue (`insights`) and a procrastinate one (`records`)."""


def _fan_out_mixed(
    tmp_path: Path, queues_db: str, backend: Backend | None = None
) -> tuple[FanoutReport, list[str]]:
    _empty(queues_db, "records")
    _empty(queues_db, "insights")
    return _fan_out(tmp_path, queues_db, 20_000, "mixed", backend, schedule=MIXED)


@pytest.mark.parametrize("spool_memory", [8 << 20, 1000])
def test_a_lane_alternating_between_pg_boss_and_procrastinate_still_sends_one_copy_per_queue(
    tmp_path: Path, queues_db: str, monkeypatch: pytest.MonkeyPatch, spool_memory: int
) -> None:
    """20,000 rows, every other one routed to procrastinate, in chunks of 2,500: the chunks alternate between
    the two queues, but one connection holds one COPY at a time, so the first queue's COPY stays open and
    the other's chunks are spooled (in memory, or past `spool_memory` bytes in a temporary file) and sent in
    one COPY after it: one COPY per queue, the procrastinate ids taken once. Every job lands, with the ids
    reported."""
    monkeypatch.setattr("scheduler.backends.copystream.SPOOL_MEMORY", spool_memory)
    report, statements = _fan_out_mixed(tmp_path, queues_db)
    assert report.accepted == 20_000
    assert _count(statements, "SELECT min(id) AS first") == 1
    assert _count(statements, "COPY procrastinate_jobs ") == 1
    assert _count(statements, 'COPY "pgboss".job ') == 1
    assert _count(statements, "COPY ") == 2
    assert _count(statements, "INSERT ") + _count(statements, "WITH input ") == 0
    jobs, events, ids = _procrastinate_rows(queues_db)
    assert (jobs, events) == (10_000, 10_000)
    assert {a.job_id for a in report.queues["records"].accepted_sample} == ids
    with psycopg.connect(queues_db) as db:
        assert job_count(db, QUEUES["insights"]) == 10_000


def test_a_spooled_copy_refused_redoes_the_whole_lane_chunk_by_chunk(
    tmp_path: Path, queues_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The spooled queue's COPY (sent last) is refused by a queueing lock taken meanwhile: the pg-boss
    queue's COPY, already landed inside the fan-out's savepoint, is rolled back with it, and the tick is
    done again chunk by chunk: exact report, each job written once."""
    backend = LockTakingBackend(queues_db, 7_000)
    with caplog.at_level("INFO", logger="scheduler.fanout"):
        report, statements = _fan_out_mixed(tmp_path, queues_db, backend)
    assert (report.accepted, report.dropped) == (19_999, 1)
    drop = _only_drop(report)
    assert (drop.key, drop.reason, drop.holder_id) == ("7000", DropReason.POLICY_CONFLICT, backend.holder)
    assert "one statement per queue was refused" in caplog.text
    assert _count(statements, "COPY procrastinate_jobs ") == 1
    assert _count(statements, "WITH input ") == 10_000 // CHUNK
    assert _procrastinate_rows(queues_db)[0] == 10_000
    with psycopg.connect(queues_db) as db:
        assert job_count(db, QUEUES["insights"]) == 10_000


def test_a_fan_out_without_queueing_locks_reads_no_held_locks(tmp_path: Path, queues_db: str) -> None:
    """A schedule with no `singleton_key` into procrastinate: no lock can refuse a row, so the held-lock read
    (every todo job's lock) is skipped; with keys it is made once. One COPY either way."""
    held_reads = {}
    for keyed in (True, False):
        _empty(queues_db, "records")
        schedule = SCHEDULE if keyed else SCHEDULE.replace('    singleton_key: "n:{key}"\n', "")
        report, statements = _fan_out(tmp_path, queues_db, 5_000, "records", schedule=schedule)
        assert report.accepted == 5_000
        held_reads[keyed] = sum("queueing_lock IS NOT NULL" in s for s in statements)
        assert _count(statements, "COPY procrastinate_jobs ") == 1
    assert held_reads == {True: 1, False: 0}
