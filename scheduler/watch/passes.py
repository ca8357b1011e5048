"""The watcher pass and the alias pass, against the real databases.

A pass is one transaction on one connection to the queue database, which the caller owns (the service, or
`scheduler watch`): `pg_try_advisory_xact_lock` on the pass's name first, so exactly one replica runs a
given pass at a time (the others get `ran=False` and write nothing); then every read and write of the pass;
the caller commits. Time is an argument (`now`): SQL that needs it takes it as a bound parameter.

Watcher pass, for each stuck entity its SQL returns (READ ONLY on the app database, statement timeout,
bound `%(stuck_after)s` (an interval), `%(now)s`, `%(watcher)s`):

1. plan it like a cohort row (lane routing by `source`, singleton key default `<watcher>:{key}`);
2. `reemit_exhausted` when the ledger counts `max_reemits` re-emits of it within `reemit_window`: reported
   (and recorded in the ledger, kind `exhausted`) once per window per entity; later passes of the window
   leave it alone quietly (`WatchResult.exhausted_quiet`);
3. `already_queued` when a waiting job of the target queue holds its singleton key (`Backend.waiting_keys`:
   a pg-boss `standard` queue has no index that would refuse the second one), or when the queue's policy
   refuses the insert (`policy_conflict` of a re-emit);
4. otherwise enqueued, and recorded in the ledger (`reemit`), in the same transaction.

Queue-level (`queue_level: true`): jobs of the watcher's queue stuck in the active state with no worker
alive are reported (`job.stalled`): pg-boss `active` whose heartbeat is older than heartbeat_seconds, or
whose started_on + expire_seconds passed; procrastinate `doing` whose worker is gone or whose worker's
last_heartbeat is stale; `stuck_after` is added as a grace period to each. They are re-emitted (a new job,
same payload and singleton key, through steps 2-4, keyed by the stalled job's id) only with
`reemit_stalled: true`. The stalled job itself is never touched: pg-boss's supervisor expires it, and
procrastinate's `retry_stalled_jobs` is the worker side's call.

A dry pass (`dry=True`) predicts: `watch_once` runs it in a READ ONLY transaction that is rolled back;
nothing is pruned, recorded or enqueued, and a ledger that is missing (or older than this version) counts as
empty.

procrastinate's statements (stalled jobs, alias moves) resolve its tables through search_path: with the
queue's `schema:` set, it is pointed there transaction-locally around the statement, as its backend does.

Alias pass: jobs waiting on an old real queue name move to the target queue with one statement per alias
(`pgboss_alias_move_many`, `procrastinate_alias_move_many`); the count moved is exact, and a pg-boss row the
target's policy refuses stays on the old name and is reported as a collision.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, LiteralString

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from scheduler.cohorts import open_sql_cohort
from scheduler.planning.plan import PlanContext, plan_batches
from scheduler.planning.rows import check_row, invalid_drop
from scheduler.sqlfile import load_queries
from scheduler.types import (
    Accepted,
    BackendKind,
    Batch,
    ChunkResult,
    Dropped,
    DropReason,
    FanoutReport,
    JobOptions,
    JobSpec,
    Outcome,
    QueueInfo,
    QueueRef,
)
from scheduler.watch.plan import (
    AliasMove,
    alias_moves,
    as_reemit_outcome,
    split_reemits,
    watcher_database,
    watcher_queues,
    watcher_schedule,
)

if TYPE_CHECKING:
    from scheduler.fanout import Fanout

QUERIES = load_queries("scheduler.watch", "queries.sql")
STALLED_LIMIT = 1000
"""At most this many stalled jobs are read (and reported) per queue-level pass."""
ALIAS_PASS = "aliases"


@dataclass(frozen=True, slots=True)
class StalledJob:
    """A job stuck in its queue's active state with no worker alive."""

    queue: QueueRef
    id: str
    singleton_key: str | None
    data: Mapping[str, Any]
    priority: int
    state: str


@dataclass
class WatchResult:
    """One watcher pass: its re-emit report (`report.schedule` is the watcher's name) and stalled jobs."""

    watcher: str
    now: datetime
    ran: bool
    """False when another replica held this watcher's pass: nothing was read or written."""
    report: FanoutReport
    stalled: list[StalledJob] = field(default_factory=list)
    exhausted_quiet: list[str] = field(default_factory=list)
    """Entities still past their bound whose exhaustion an earlier pass of this window already reported:
    left alone, and not reported again (no `reemit_exhausted` drop, log line or metric)."""
    queue_infos: dict[str, QueueInfo] = field(default_factory=dict)

    def keys(self, reason: DropReason) -> list[str]:
        """Entities dropped for `reason` (up to the report's detail limit)."""
        return [d.key for t in self.report.queues.values() for d in t.dropped_sample if d.reason is reason]


@dataclass(frozen=True, slots=True)
class AliasOutcome:
    """What one alias moved: the ids moved to the target, and the ids left on the old name (collisions)."""

    old: str
    target: QueueRef
    moved: tuple[str, ...]
    collided: tuple[tuple[str, str | None], ...]
    """(job id, singleton key) of each waiting job the target's policy refused; it stays where it was."""


@dataclass
class AliasResult:
    database: str
    ran: bool
    outcomes: list[AliasOutcome] = field(default_factory=list)

    @property
    def moved(self) -> int:
        return sum(len(o.moved) for o in self.outcomes)

    @property
    def collided(self) -> int:
        return sum(len(o.collided) for o in self.outcomes)


class _Statements:
    def __init__(self, ledger_schema: str) -> None:
        self.ledger_schema = ledger_schema

    def get(self, name: str, pgboss: str = "pgboss") -> sql.Composed:
        text: LiteralString = QUERIES[name]
        return sql.SQL(text).format(schema=sql.Identifier(self.ledger_schema), pgboss=sql.Identifier(pgboss))


def try_pass_lock(conn: psycopg.Connection[Any], ledger_schema: str, name: str) -> bool:
    """Take the lock of pass `name` for the open transaction without waiting; False when a replica has it."""
    row = conn.execute(
        _Statements(ledger_schema).get("pass_lock"), {"key": f"scheduler:watch:{ledger_schema}:{name}"}
    ).fetchone()
    return bool(row and row[0])


def run_watcher(
    fanout: Fanout,
    conn: psycopg.Connection[Any],
    name: str,
    now: datetime,
    *,
    replica: str,
    ledger_schema: str = "scheduler",
    dry: bool = False,
) -> WatchResult:
    """Run one pass of watcher `name` inside the caller's open transaction on `conn` (see module docstring).

    `dry` reads only: predictions instead of inserts, nothing pruned or recorded (the caller's transaction
    can be READ ONLY, as `watch_once` makes it). A missing target queue writes
    nothing and sets `report.failure` (the caller rolls back).
    """
    started = time.perf_counter()
    config = fanout.loaded.config
    watcher = config.watchers[name]
    report = FanoutReport(
        schedule=name, tick=now, detail_limit=fanout.detail_limit, dry=dry, connections_used=1
    )
    result = WatchResult(watcher=name, now=now, ran=False, report=report)
    statements = _Statements(ledger_schema)
    if not try_pass_lock(conn, ledger_schema, name):
        return result
    result.ran = True
    since = now - watcher.reemit_window
    ledger = True
    if dry:
        ledger = ledger_ready(conn, ledger_schema)
    else:
        conn.execute(statements.get("reemit_prune"), {"watcher": name, "since": since})
    queues = watcher_queues(config, watcher)
    for queue in queues:
        backend = fanout.backends[queue.backend]
        info = backend.describe_queue(conn, queue)
        if not info.exists and queue.create_missing and not dry:
            info = backend.ensure_queue(conn, queue)
        result.queue_infos[queue.logical] = info
        if not info.exists:
            report.failure = (
                f"queue {queue.name!r} ({queue.backend.value}, logical {queue.logical!r}) does not exist"
            )
            return result
    emitter = _Emitter(
        fanout, conn, name, now, since, statements, replica=replica, dry=dry, ledger=ledger, result=result
    )
    if watcher.queue_level and watcher.queue is not None:
        queue = queues[0]
        result.stalled = stalled_jobs(conn, queue, now, watcher.stuck_after)
        if watcher.reemit_stalled and result.stalled:
            jobs = tuple(
                JobSpec(
                    key=job.id,
                    singleton_key=job.singleton_key,
                    data=job.data,
                    start_after=now,
                    options=JobOptions(priority=job.priority),
                )
                for job in result.stalled
            )
            emitter.emit(Batch(queue, jobs))
    if watcher.sql is not None:
        schedule = watcher_schedule(name, watcher)
        ctx = PlanContext(
            schedule_name=name,
            schedule=schedule,
            tick=now,
            queues={q.logical: q for q in queues},
            lanes=config.lanes,
        )
        with open_sql_cohort(
            fanout.dsn(watcher.database),
            watcher.sql,
            {"stuck_after": watcher.stuck_after, "now": now, "watcher": name},
            statement_timeout=watcher.statement_timeout,
            where=f"{fanout.loaded.locations.of(('watchers', name, 'sql'))}: watcher {name!r}",
        ) as stream:
            for batch in plan_batches(ctx, stream.rows, total=None, chunk_size=fanout.chunk_size):
                report.cohort_size += len(batch.jobs)
                emitter.emit(batch)
    report.duration_seconds = time.perf_counter() - started
    return result


class _Emitter:
    """Re-emits batches for one pass: ledger bound, waiting check, enqueue, ledger record."""

    def __init__(
        self,
        fanout: Fanout,
        conn: psycopg.Connection[Any],
        watcher: str,
        now: datetime,
        since: datetime,
        statements: _Statements,
        *,
        replica: str,
        dry: bool,
        ledger: bool,
        result: WatchResult,
    ) -> None:
        self.fanout = fanout
        self.conn = conn
        self.watcher = watcher
        self.max_reemits = fanout.loaded.config.watchers[watcher].max_reemits
        self.now = now
        self.since = since
        self.statements = statements
        self.replica = replica
        self.dry = dry
        self.ledger = ledger
        """False on a dry pass without a (current) ledger: every count is zero, nothing was reported."""
        self.result = result
        self.report = result.report
        self.seen: dict[tuple[str, str], str] = {}
        """(queue, singleton key) already handled in this pass → the entity that took it."""
        self.placed: set[str] = set()

    def emit(self, batch: Batch) -> None:
        jobs = batch.jobs
        backend = self.fanout.backends[batch.queue.backend]
        limits = backend.row_limits(batch.queue)
        # A row the queue cannot hold is dropped here, as in a schedule's fan-out: it claims no slot and
        # reaches neither the ledger nor the queue.
        outcomes: dict[int, Outcome] = {
            i: invalid_drop(job, reason)
            for i, job in enumerate(jobs)
            if (reason := check_row(job, limits)) is not None
        }
        for i, job in enumerate(jobs):
            if job.singleton_key is None or i in outcomes:
                continue
            slot = (batch.queue.logical, job.singleton_key)
            if slot in self.seen:
                outcomes[i] = Dropped(job.key, DropReason.DUPLICATE_IN_COHORT, job.singleton_key)
            else:
                self.seen[slot] = job.key
        rest = [i for i in range(len(jobs)) if i not in outcomes]
        counts = self._counts([jobs[i].key for i in rest])
        split = split_reemits([jobs[i] for i in rest], counts, self.max_reemits)
        exhausted = {rest[j]: drop for j, drop in split.exhausted.items()}
        known = self._reported([jobs[i].key for i in exhausted])
        quiet = {i for i in exhausted if jobs[i].key in known}
        for i, drop in exhausted.items():
            if i not in quiet:
                outcomes[i] = drop
        self.result.exhausted_quiet.extend(jobs[i].key for i in sorted(quiet))
        self._record_exhausted(batch.queue, [jobs[i].key for i in sorted(exhausted) if i not in quiet])
        rest = [i for i in rest if i not in outcomes and i not in quiet]
        keys = [k for i in rest if (k := jobs[i].singleton_key) is not None]
        waiting = backend.waiting_keys(self.conn, batch.queue, keys) if keys else {}
        for i in rest:
            key = jobs[i].singleton_key
            if key is not None and key in waiting:
                outcomes[i] = Dropped(
                    jobs[i].key,
                    DropReason.ALREADY_QUEUED,
                    key,
                    holder_id=waiting[key],
                    holder_state="waiting",
                )
        rest = [i for i in rest if i not in outcomes]
        if rest:
            sent = Batch(batch.queue, tuple(jobs[i] for i in rest))
            if self.dry:
                chunk = backend.predict_many(self.conn, sent, self.placed)
            else:
                chunk = backend.enqueue_many(self.conn, sent)
            for i, outcome in zip(rest, chunk.outcomes, strict=True):
                outcomes[i] = as_reemit_outcome(outcome)
            self._record(batch.queue, [(jobs[i].key, outcomes[i]) for i in rest])
        kept = tuple(outcomes[i] for i in range(len(jobs)) if i not in quiet)
        self.report.add(ChunkResult(batch.queue, kept))

    def _counts(self, entities: list[str]) -> dict[str, int]:
        if not entities or not self.ledger:
            return {}
        rows = self.conn.execute(
            self.statements.get("reemit_count_many"),
            {"watcher": self.watcher, "entities": entities, "since": self.since},
        ).fetchall()
        return {str(entity): int(n) for entity, n in rows}

    def _reported(self, entities: list[str]) -> set[str]:
        """The entities whose exhaustion was already reported in this window."""
        if not entities or not self.ledger:
            return set()
        rows = self.conn.execute(
            self.statements.get("reemit_exhausted_reported_many"),
            {"watcher": self.watcher, "entities": entities, "since": self.since},
        ).fetchall()
        return {str(entity) for (entity,) in rows}

    def _record_exhausted(self, queue: QueueRef, entities: list[str]) -> None:
        if self.dry or not entities:
            return
        self.conn.execute(
            self.statements.get("reemit_exhausted_record_many"),
            {
                "watcher": self.watcher,
                "now": self.now,
                "replica": self.replica,
                "entities": entities,
                "queues": [queue.name] * len(entities),
            },
        )

    def _record(self, queue: QueueRef, outcomes: list[tuple[str, Outcome]]) -> None:
        accepted = [(key, o.job_id) for key, o in outcomes if isinstance(o, Accepted)]
        if self.dry or not accepted:
            return
        self.conn.execute(
            self.statements.get("reemit_record_many"),
            {
                "watcher": self.watcher,
                "now": self.now,
                "replica": self.replica,
                "entities": [k for k, _ in accepted],
                "queues": [queue.name] * len(accepted),
                "job_ids": [j for _, j in accepted],
            },
        )


def stalled_jobs(
    conn: psycopg.Connection[Any], queue: QueueRef, now: datetime, grace: timedelta
) -> list[StalledJob]:
    """The jobs of `queue` stuck in its active state with no worker alive (see module docstring)."""
    name = "pgboss_stalled_many" if queue.backend is BackendKind.PGBOSS else "procrastinate_stalled_many"
    statement = _Statements("scheduler").get(name, queue.schema or "pgboss")
    with _procrastinate_schema(conn, queue), conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            statement, {"name": queue.name, "now": now, "grace": grace, "limit": STALLED_LIMIT}
        ).fetchall()
    return [
        StalledJob(
            queue=queue,
            id=r["id"],
            singleton_key=r["singleton_key"],
            data=r["data"] if isinstance(r["data"], dict) else {},
            priority=int(r["priority"]),
            state=r["state"],
        )
        for r in rows
    ]


@contextmanager
def _procrastinate_schema(conn: psycopg.Connection[Any], queue: QueueRef) -> Iterator[None]:
    """For a procrastinate queue with `schema:`, point search_path at it for the statements inside
    (transaction-local: the pass runs in a transaction), then put the previous value back."""
    if queue.backend is not BackendKind.PROCRASTINATE or queue.schema is None:
        yield
        return
    row = conn.execute("SELECT current_setting('search_path')").fetchone()
    previous = str(row[0]) if row else ""
    conn.execute(
        "SELECT set_config('search_path', %s, true)", (sql.Identifier(queue.schema).as_string(conn),)
    )
    try:
        yield
    finally:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.INERROR:
            conn.execute("SELECT set_config('search_path', %s, true)", (previous,))


def ledger_ready(conn: psycopg.Connection[Any], ledger_schema: str) -> bool:
    """Whether the ledger's reemit table exists at this version (read only; a dry pass never migrates)."""
    reemit = f"{sql.Identifier(ledger_schema).as_string(conn)}.reemit"
    row = conn.execute(_Statements(ledger_schema).get("ledger_ready"), {"reemit": reemit}).fetchone()
    return bool(row and row[0])


def move_aliases(
    fanout: Fanout, conn: psycopg.Connection[Any], database: str, *, ledger_schema: str = "scheduler"
) -> AliasResult:
    """Move the jobs waiting on every aliased old name into its target queue of `database`, inside the
    caller's open transaction (the caller commits, or rolls back for a dry run)."""
    result = AliasResult(database=database, ran=False)
    if not try_pass_lock(conn, ledger_schema, f"{ALIAS_PASS}:{database}"):
        return result
    result.ran = True
    for move in alias_moves(fanout.loaded.config).get(database, []):
        result.outcomes.append(_move(fanout, conn, move))
    return result


def _move(fanout: Fanout, conn: psycopg.Connection[Any], move: AliasMove) -> AliasOutcome:
    target = move.target
    backend = fanout.backends[target.backend]
    if not backend.describe_queue(conn, target).exists:
        return AliasOutcome(move.old, target, (), ())  # nothing can be moved into it; the fan-out reports it
    name = (
        "pgboss_alias_move_many" if target.backend is BackendKind.PGBOSS else "procrastinate_alias_move_many"
    )
    statement = _Statements("scheduler").get(name, target.schema or "pgboss")
    with _procrastinate_schema(conn, target):
        rows = conn.execute(statement, {"old": move.old, "new": target.name}).fetchall()
    moved = tuple(str(id_) for id_, _, ok in rows if ok)
    collided = tuple((str(id_), key) for id_, key, ok in rows if not ok)
    return AliasOutcome(move.old, target, moved, collided)


def watch_once(
    fanout: Fanout,
    name: str,
    now: datetime,
    *,
    replica: str,
    ledger_schema: str = "scheduler",
    dry: bool = False,
) -> WatchResult:
    """One pass of watcher `name` on its own connection and transaction: committed, or rolled back when
    `dry` (then the transaction is READ ONLY too), when the report has a failure, or on any error. The
    ledger must be migrated, except for a dry pass (which counts a missing ledger as empty)."""
    database = watcher_database(fanout.loaded.config, name)
    with ExitStack() as stack:
        conn = stack.enter_context(psycopg.connect(fanout.dsn(database), application_name="scheduler:watch"))
        conn.read_only = dry
        with conn.transaction() as txn:
            result = run_watcher(
                fanout, conn, name, now, replica=replica, ledger_schema=ledger_schema, dry=dry
            )
            if dry or result.report.failure or not result.ran:
                raise psycopg.Rollback(txn)
        if not dry and result.ran and not result.report.failure:
            notify_after_commit(fanout, conn, result)
        return result


def notify_after_commit(fanout: Fanout, conn: psycopg.Connection[Any], result: WatchResult) -> None:
    """Wake the listeners of the queues that got re-emits (pg-boss `notify` queues)."""
    for totals in result.report.queues.values():
        info = result.queue_infos.get(totals.queue.logical)
        if info is not None and totals.accepted:
            fanout.backends[totals.queue.backend].after_commit(conn, totals.queue, info)
    if not conn.autocommit:
        conn.commit()


def aliases_once(
    fanout: Fanout, database: str, *, ledger_schema: str = "scheduler", dry: bool = False
) -> AliasResult:
    """The alias pass of `database` on its own connection: committed, or rolled back when `dry`."""
    with psycopg.connect(fanout.dsn(database), application_name="scheduler:watch") as conn:
        with conn.transaction() as txn:
            result = move_aliases(fanout, conn, database, ledger_schema=ledger_schema)
            if dry:
                raise psycopg.Rollback(txn)
        return result


def iter_dropped(result: WatchResult) -> Iterator[Dropped]:
    for totals in result.report.queues.values():
        yield from totals.dropped_sample
