"""One tick of one schedule, end to end: cohort → plan → enqueue (or predict) → report.

`run`, `dry-run`, `fire` and the watcher all go through `fanout_in_transaction` (write) or `predict`
(read only), so a preview and the real thing share the cohort, plan and key code.

The queue database sees one connection per fan-out and one transaction for all the queues of the
schedule; the caller may put its own statements (the ledger claim) in the same transaction. The cohort
is read on its own read-only connection to the app database and streamed in chunks.

Each chunk is planned, split against the tick's singleton keys (`TickKeys`: in memory, past `spill_after`
in a local SQLite file) and encoded by its backend (`preparer`) in a planning thread, while the enqueue
loop writes the chunk before it; only the enqueue and the report use the queue connection, always from
the enqueue loop.

The chunks of the queues of one pg-boss or procrastinate schema go into one COPY for the whole fan-out
(a `ChunkStream`), whatever the cohort size, while that is safe: the slots held when the fan-out began are
known (none, or few enough to read then and leave their jobs out). A procrastinate stream takes its job ids
from the sequence before it starts (a COPY returns none), so a fan-out into procrastinate counts its cohort
first, in the cohort's snapshot, to know how many. A fan-out into two schemas (a lane routing to pg-boss
and to procrastinate) keeps the first one's COPY open and spools the other's chunks, sent in one COPY after
it. Each chunk's results are known as it is written,
because the COPY lands whole or not at all; if it is refused (a slot taken meanwhile), the fan-out is
rolled back to a savepoint and done again one statement per chunk, each chunk then finding its own held
slots.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Mapping
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from itertools import repeat
from operator import floordiv, sub
from typing import TYPE_CHECKING, Any, cast

import psycopg

from scheduler.backends.base import Backend, ChunkStream, StreamRefused
from scheduler.cohorts import CohortStream, cohort_params, open_sql_cohort, static_rows
from scheduler.config import LoadedConfig, queues_of, resolve_dsn
from scheduler.errors import ConfigError, PlanError
from scheduler.observe.log import event
from scheduler.pipeline import ahead, collector_paused
from scheduler.planning.plan import PlanContext, PlanStats, plan_batches
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
    JobSpec,
    Outcome,
    QueueInfo,
    QueueRef,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from scheduler.config.models import Schedule
    from scheduler.planning.rows import RowLimits

QUEUE_APPLICATION_NAME = "scheduler:enqueue"
PREVIEW_JOBS = 50
HISTOGRAM_BUCKET = timedelta(minutes=5)
STAGGER_SAMPLES = 1000
"""At most this many `job.stagger_delay` samples per fan-out, taken evenly over the plan, of accepted jobs."""
INVALID_ROWS_LOGGED = 10
"""A fan-out logs this many `row_invalid` lines (one per row its queue cannot hold), then one
`rows_invalid` line counting the rest."""
FANOUT_QUERIES = load_queries("scheduler", "fanout.sql")
log = logging.getLogger(__name__)


def default_backends() -> dict[BackendKind, Backend]:
    """One adapter per queue system."""
    from scheduler.backends.pgboss import PgBossBackend
    from scheduler.backends.procrastinate import ProcrastinateBackend

    return {BackendKind.PGBOSS: PgBossBackend(), BackendKind.PROCRASTINATE: ProcrastinateBackend()}


@dataclass
class PlanPreview:
    """What the plan looked like: the first jobs, the stagger spread, a per-5-minute histogram."""

    first_jobs: list[tuple[str, JobSpec]] = field(default_factory=list)
    earliest: datetime | None = None
    latest: datetime | None = None
    histogram: Counter[int] = field(default_factory=Counter)
    """Bucket index (minutes after the tick // 5) → job count."""
    stagger_samples: list[float] = field(default_factory=list)
    stats: PlanStats = field(default_factory=PlanStats)

    def observe(self, tick: datetime, batch: Batch, limit: int) -> None:
        """Fold one batch into the preview (mutates it)."""
        if not batch.jobs:
            return
        room = limit - len(self.first_jobs)
        if room > 0:
            self.first_jobs.extend((batch.queue.logical, job) for job in batch.jobs[:room])
        starts = [job.start_after for job in batch.jobs]
        low, high = min(starts), max(starts)
        if self.earliest is None or low < self.earliest:
            self.earliest = low
        if self.latest is None or high > self.latest:
            self.latest = high
        # Floor division: a job never starts before its tick, so this is the 5-minute bucket it falls in.
        # (`(start - tick) // HISTOGRAM_BUCKET` per job, with C iterators: this runs once per planned job.)
        self.histogram.update(map(floordiv, map(sub, starts, repeat(tick)), repeat(HISTOGRAM_BUCKET)))


@dataclass
class FanoutResult:
    report: FanoutReport
    preview: PlanPreview
    queue_infos: dict[str, QueueInfo]


@dataclass(frozen=True)
class Fanout:
    """What a fan-out needs from the outside world, built once per process (or CLI call)."""

    loaded: LoadedConfig
    environ: Mapping[str, str] = field(repr=False)  # the process environment, DSNs included: never shown
    backends: Mapping[BackendKind, Backend]
    chunk_size: int = 5000
    detail_limit: int | None = 10_000
    preview_limit: int = PREVIEW_JOBS
    spill_after: int = 250_000
    """Singleton keys a tick holds in memory (about 50 MB at this default) before `TickKeys` moves them to
    a private SQLite database on local disk (a temporary file under $TMPDIR or /tmp, with a 16 MB page
    cache), which the planning thread claims keys in without the queue connection."""
    plan_ahead: int = 2
    """Batches the cohort read, the plan, the tick-key split and the backend's encoding may run ahead of the
    enqueue, in a thread of their own, so the client builds the next chunk while the queue database writes
    this one; 0 does all of it in line."""
    stream: bool = True
    """Send a queue's chunks as one statement (`ChunkStream`) while that is safe: the slots held when the
    fan-out starts known (none, or read then). False: one statement per chunk."""

    def schedule(self, name: str) -> Schedule:
        try:
            return self.loaded.config.schedules[name]
        except KeyError:
            known = ", ".join(sorted(self.loaded.config.schedules)) or "(none)"
            raise ConfigError(f"no schedule named {name!r}; the config has: {known}") from None

    def where(self, name: str) -> str:
        """file:line of a schedule, for messages."""
        return str(self.loaded.locations.of(("schedules", name)))

    def queue_database(self, name: str) -> str:
        """The one database holding every queue the schedule can write to."""
        schedule = self.schedule(name)
        databases = {q.database for q in queues_of(self.loaded.config, schedule)}
        if len(databases) != 1:
            raise ConfigError(
                f"{self.where(name)}: schedule {name!r} routes to queues in several databases "
                f"({', '.join(sorted(databases))}); a fan-out commits in one transaction, so put its "
                "queues in one database or split the lane"
            )
        return databases.pop()

    def dsn(self, database: str) -> str:
        return resolve_dsn(self.loaded.config, database, self.environ).get_secret_value()

    def connect_queue_db(self, name: str) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn(self.queue_database(name)), application_name=QUEUE_APPLICATION_NAME)

    @contextmanager
    def open_cohort(self, name: str, tick: datetime, *, count: bool = False) -> Iterator[CohortStream]:
        """The schedule's cohort at `tick`, streamed; with `count`, its size known (`total`) before the first
        row (a SQL cohort is then counted first, in the same snapshot; the `spread` stagger always is)."""
        schedule = self.schedule(name)
        cohort = schedule.cohort
        if cohort.static is not None:
            rows = static_rows(cohort)
            yield CohortStream(rows=iter(rows), total=len(rows), columns=("key", "data", "source"))
            return
        assert cohort.sql is not None  # the config guarantees one of static and sql
        from scheduler.config.models import StaggerStrategy

        with open_sql_cohort(
            self.dsn(cohort.database),
            cohort.sql,
            cohort_params(name, schedule.timezone, tick),
            statement_timeout=cohort.statement_timeout,
            count=count or schedule.stagger.strategy is StaggerStrategy.SPREAD,
            where=f"{self.loaded.locations.of(('schedules', name, 'cohort', 'sql'))}: schedule {name!r}",
        ) as stream:
            yield stream

    def plan(self, name: str, tick: datetime, stream: CohortStream, preview: PlanPreview) -> Iterator[Batch]:
        """Plan the cohort into batches, folding each into `preview` as it passes."""
        config = self.loaded.config
        ctx = PlanContext(
            schedule_name=name,
            schedule=self.schedule(name),
            tick=tick,
            queues={logical: _queue_ref(config, logical) for logical in config.queues},
            lanes=config.lanes,
        )
        for batch in plan_batches(
            ctx, stream.rows, total=stream.total, chunk_size=self.chunk_size, stats=preview.stats
        ):
            preview.observe(tick, batch, self.preview_limit)
            yield batch


def _queue_ref(config: Any, logical: str) -> QueueRef:
    from scheduler.config import resolve_queue

    return resolve_queue(config, logical)


class TickKeys:
    """The non-null singleton keys already planned in this tick, per queue, so a repeat is reported as
    `duplicate_in_cohort` naming the job that holds its key, even when it arrives in a later chunk.

    Keys (and their holders) are held in memory up to `spill_after`; past that (cohorts of millions) they
    move to a private SQLite database on local disk (`fanout.sql`), keeping memory bounded without the queue
    connection, which the fan-out's one COPY keeps busy: one table with a primary key that claims keys, one
    appended with their holders. Both paths report the same outcomes. `close` removes the database.

    `split` runs in the planning thread while `remember` and `name_holders` run in the enqueue loop: every
    method takes the lock. Batches must be split in plan order.
    """

    def __init__(self, spill_after: int = 250_000) -> None:
        self._spill_after = spill_after
        self._memory: dict[str, dict[str, str | None]] = {}
        """Queue → key → the job holding it (None until its batch is enqueued, or when it was dropped)."""
        self._size = 0
        self._store: sqlite3.Connection | None = None
        self._holders_indexed = False
        self._lock = threading.Lock()

    def split(self, batch: Batch) -> tuple[Batch, dict[int, Dropped]]:
        """Split a batch into the jobs whose key is new in this tick and drops for the repeats (by index).

        The drops name no holder yet: a repeat of a key first seen in this same batch is held by a job
        that does not exist until the batch is enqueued; `name_holders` fills them in after `remember`.
        A batch with no repeat is returned as it is.
        """
        queue = batch.queue.logical
        keys = [j.singleton_key for j in batch.jobs]
        keyed = len(keys) - keys.count(None)
        if not keyed:
            return batch, {}
        with self._lock:
            if self._store is None and self._size + keyed > self._spill_after:
                self._spill()
            if self._store is None and keyed == len(keys):
                known = self._memory.setdefault(queue, {})
                new: dict[str, str | None] = dict.fromkeys(cast("list[str]", keys))
                if len(new) == len(keys) and known.keys().isdisjoint(new):
                    # The usual case, without a loop: every job keyed, no key repeated or seen before.
                    known.update(new)
                    self._size += len(new)
                    return batch, {}
            fresh = self._claim(queue, [(i, k) for i, k in enumerate(keys) if k is not None])
        drops = {
            i: Dropped(key=job.key, reason=DropReason.DUPLICATE_IN_COHORT, singleton_key=job.singleton_key)
            for i, job in enumerate(batch.jobs)
            if job.singleton_key is not None and i not in fresh
        }
        if not drops:
            return batch, {}
        return Batch(batch.queue, tuple(j for i, j in enumerate(batch.jobs) if i not in drops)), drops

    def _claim(self, queue: str, keyed: list[tuple[int, str]]) -> set[int]:
        """Claim the keys (index, key) of a batch; return the indexes of the jobs whose key was new."""
        first: dict[str, int] = {}
        for i, key in keyed:
            first.setdefault(key, i)
        if self._store is not None:
            rows = self._store.execute(
                FANOUT_QUERIES["tick_keys_claim_many"], {"queue": queue, "keys": _key_list(first)}
            ).fetchall()
            return {first[key] for (key,) in rows}
        known = self._memory.setdefault(queue, {})
        fresh = [key for key in first if key not in known]
        known.update(dict.fromkeys(fresh))
        self._size += len(fresh)
        return {first[key] for key in fresh}

    def remember(self, queue: str, jobs: Iterable[JobSpec], outcomes: Iterable[Outcome]) -> None:
        """Note which job id now holds each key (for the holder named on a duplicate)."""
        held = [
            (job.singleton_key, outcome.job_id)
            for job, outcome in zip(jobs, outcomes, strict=True)
            if job.singleton_key is not None and isinstance(outcome, Accepted) and outcome.job_id
        ]
        if not held:
            return
        with self._lock:
            if self._store is not None:
                self._store.executemany(
                    FANOUT_QUERIES["tick_holders_add_many"], [(queue, key, job_id) for key, job_id in held]
                )
                return
            self._memory.setdefault(queue, {}).update(held)

    def name_holders(self, queue: str, drops: dict[int, Dropped]) -> dict[int, Dropped]:
        """The drops with the job holding each one's key filled in, where one is known."""
        keys = {d.singleton_key for d in drops.values() if d.singleton_key is not None}
        if not keys:
            return drops
        holders: dict[str, str]
        with self._lock:
            if self._store is not None:
                if not self._holders_indexed:
                    # Only a cohort with repeats past the spill reads holders: index them then, not before.
                    self._store.execute(FANOUT_QUERIES["tick_holders_index"])
                    self._holders_indexed = True
                rows = self._store.execute(
                    FANOUT_QUERIES["tick_holders_many"], {"queue": queue, "keys": json.dumps(sorted(keys))}
                ).fetchall()
                holders = {str(k): str(j) for k, j in rows}
            else:
                known = self._memory.get(queue, {})
                holders = {k: h for k in keys if (h := known.get(k))}
        return {
            i: replace(d, holder_id=holders.get(d.singleton_key or "")) if d.singleton_key in holders else d
            for i, d in drops.items()
        }

    def close(self) -> None:
        """Remove the store, if the keys spilled (its temporary file goes with it)."""
        with self._lock:
            store, self._store = self._store, None
        if store is not None:
            store.close()

    def _spill(self) -> None:
        """Move the keys and holders held in memory to the store (the caller holds the lock)."""
        # "": a private temporary database on disk, removed when closed; the threads take turns (the lock).
        store = sqlite3.connect("", check_same_thread=False, isolation_level=None)
        store.executescript(FANOUT_QUERIES["tick_store_open"])
        for queue, known in self._memory.items():
            store.executemany(FANOUT_QUERIES["tick_keys_add_many"], ((queue, key) for key in known))
            store.executemany(
                FANOUT_QUERIES["tick_holders_add_many"],
                ((queue, key, job_id) for key, job_id in known.items() if job_id is not None),
            )
        self._memory.clear()
        self._store = store


def _key_list(keys: Iterable[str]) -> str:
    """Singleton keys as the JSON array the key store reads; raises PlanError for a key no queue's text can
    hold (a NUL, or a lone surrogate), which SQLite would not hand back unchanged."""
    listed = list(keys)
    text = json.dumps(listed, ensure_ascii=False)
    try:
        text.encode()
        bad = next((key for key in listed if "\x00" in key), None)
    except UnicodeEncodeError:
        bad = next(key for key in listed if not _encodes(key))
    if bad is not None:
        raise PlanError(
            f"singleton key {bad!r} holds a NUL character or a lone surrogate, which PostgreSQL text cannot "
            "hold; fix the schedule's singleton_key template or the cohort row it renders from"
        )
    return text


def _encodes(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _merge(batch: Batch, sent: Batch, result: ChunkResult, drops: dict[int, Dropped]) -> ChunkResult:
    """Put the backend's outcomes for the jobs it was sent back among the duplicates, in batch order."""
    if not drops:
        return result
    backend_outcomes = iter(result.outcomes)
    outcomes: list[Outcome] = []
    for i in range(len(batch.jobs)):
        drop = drops.get(i)
        outcomes.append(drop if drop is not None else next(backend_outcomes))
    return ChunkResult(batch.queue, tuple(outcomes))


@dataclass(frozen=True, slots=True)
class _Chunk:
    """A planned batch as the planning thread hands it to the enqueue loop: split against the tick's keys
    and encoded for its backend where that needs no database."""

    batch: Batch
    split: tuple[Batch, dict[int, Dropped]]
    """The jobs whose key is new in the tick and the drops of the repeats."""
    prepared: object | None = None
    """What the backend's `preparer` made of the split's jobs, or None."""
    invalid: tuple[Batch, dict[int, Dropped]] | None = None
    """The batch less the rows its queue cannot hold, and their `invalid_row` drops by index in `batch`;
    None when every row is valid. The split is of the valid rows."""


def _chunks(
    batches: Iterable[Batch],
    keys: TickKeys,
    preparers: Mapping[str, Callable[[Batch], object]],
    limits: Mapping[str, RowLimits],
) -> Iterator[_Chunk]:
    """Leave out each batch's rows its queue cannot hold (`limits`: per logical queue; none: not checked),
    split the rest against the tick's keys and encode them for their backend, in plan order (the planning
    thread never touches the queue connection). A row left out claims no key."""
    try:
        for batch in batches:
            row_limits = limits.get(batch.queue.logical)
            invalid = None if row_limits is None else _screen(batch, row_limits)
            split = keys.split(batch if invalid is None else invalid[0])
            sent = split[0]
            prepare = preparers.get(batch.queue.logical)
            yield _Chunk(batch, split, prepare(sent) if prepare is not None and sent.jobs else None, invalid)
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()


def _screen(batch: Batch, limits: RowLimits) -> tuple[Batch, dict[int, Dropped]] | None:
    """The batch less the rows its queue cannot hold, and their drops by index; None when all are valid."""
    jobs = batch.jobs
    reasons = list(map(check_row, jobs, repeat(limits)))  # C iteration: once per planned job
    if reasons.count(None) == len(reasons):
        return None
    drops = {i: invalid_drop(jobs[i], reason) for i, reason in enumerate(reasons) if reason is not None}
    return Batch(batch.queue, tuple(j for i, j in enumerate(jobs) if i not in drops)), drops


def _log_invalid(report: FanoutReport) -> None:
    """One `row_invalid` warning per row left out as `invalid_row`, up to `INVALID_ROWS_LOGGED` per fan-out,
    then one `rows_invalid` warning counting them all (a cohort that is bad throughout logs a dozen lines,
    not a million)."""
    total = report.dropped_by_reason().get(DropReason.INVALID_ROW, 0)
    if not total:
        return
    logged = 0
    for totals in report.queues.values():
        for drop in totals.dropped_sample:
            if drop.reason is not DropReason.INVALID_ROW:
                continue
            if logged == INVALID_ROWS_LOGGED:
                break
            logged += 1
            event(
                log,
                logging.WARNING,
                "row_invalid",
                schedule=report.schedule,
                tick=report.tick.isoformat(),
                queue=totals.queue.name,
                key=drop.key,
                detail=drop.detail,
            )
    if total > logged:
        event(
            log,
            logging.WARNING,
            "rows_invalid",
            schedule=report.schedule,
            tick=report.tick.isoformat(),
            invalid=total,
            not_logged=total - logged,
        )


def _missing(batch: Batch) -> ChunkResult:
    return ChunkResult(
        batch.queue,
        tuple(
            Dropped(key=j.key, reason=DropReason.QUEUE_MISSING, singleton_key=j.singleton_key, policy=None)
            for j in batch.jobs
        ),
    )


class _StaggerSampler:
    """Keeps the stagger delay (seconds after the tick) of every `every`-th planned job that was accepted
    (or, in a prediction, would be), up to `STAGGER_SAMPLES`: a dropped job never starts, so its delay
    says nothing about the load the tick puts on the workers."""

    def __init__(self, preview: PlanPreview, tick: datetime, every: int) -> None:
        self.preview, self.tick, self.every, self.seen = preview, tick, every, 0

    def __call__(self, batch: Batch, outcomes: tuple[Outcome, ...]) -> None:
        """Sample one batch, given its outcomes (one per job, in order)."""
        samples, jobs = self.preview.stagger_samples, batch.jobs
        room = STAGGER_SAMPLES - len(samples)
        if room > 0:
            # The batch's jobs whose index in the plan is a multiple of `every`, without a loop over the rest.
            start = (-self.seen) % self.every
            picked = [
                job
                for job, outcome in zip(jobs[start :: self.every], outcomes[start :: self.every], strict=True)
                if type(outcome) is Accepted
            ][:room]
            samples.extend((job.start_after - self.tick).total_seconds() for job in picked)
        self.seen += len(jobs)


class _Streams:
    """The fan-out's `ChunkStream`s, one per schema of its target queues, opened together at its first chunk
    (a procrastinate stream takes its ids then, while the connection is free). One of them is active: its
    COPY holds the connection; the others spool their chunks (a lane alternating between a pg-boss and a
    procrastinate queue) and send them in one COPY each when the active one ends. A chunk no stream
    accepts ends the active COPY and takes the per-chunk path."""

    def __init__(
        self, backends: Mapping[BackendKind, Backend], conn: psycopg.Connection[Any], queues: list[QueueRef]
    ) -> None:
        self._backends = backends
        self._conn = conn
        self._queues = queues
        self._streams: list[ChunkStream] | None = None
        self._active: ChunkStream | None = None
        self.total: int | None = None
        """The cohort's size when it was counted (each row plans at most one job): a stream that takes its
        ids first needs it."""

    def write(self, batch: Batch, prepared: object | None) -> ChunkResult | None:
        """The batch's results if it went into a stream; None if it must be enqueued on its own (the active
        stream's COPY is ended first, so the connection is free)."""
        stream = next((s for s in self._opened() if s.serves(batch.queue)), None)
        if stream is None or not stream.accepts(batch.queue, prepared):
            self._end_active()
            return None
        if self._active is None:
            self._active = stream
        return stream.write(batch, prepared, spool=stream is not self._active)

    def close(self) -> None:
        """End every stream's statement, the active one's first, then each spooling one's in turn; raises
        `StreamRefused` when one failed as a whole."""
        self._end_active()
        for stream in self._streams or ():
            stream.close()

    def on_error(self, kind: type[BaseException] | None, error: BaseException | None, tb: object) -> None:
        """ExitStack callback: a fan-out that fails ends its streams with its error (spools dropped)."""
        streams, self._streams, self._active = self._streams or [], [], None
        if error is not None:
            for stream in streams:
                stream.abort(error)

    def _opened(self) -> list[ChunkStream]:
        if self._streams is None:
            streams: list[ChunkStream] = []
            for queue in self._queues:
                if not any(s.serves(queue) for s in streams):
                    stream = self._backends[queue.backend].open_stream(self._conn, queue, self.total)
                    if stream is not None:
                        streams.append(stream)
            self._streams = streams
        return self._streams

    def _end_active(self) -> None:
        active, self._active = self._active, None
        if active is not None:
            active.close()


def _describe_all(
    fanout: Fanout, conn: psycopg.Connection[Any], queues: list[QueueRef], *, create: bool
) -> tuple[dict[str, QueueInfo], list[QueueRef]]:
    """Check each backend's schema once, read (or create) each queue; return the infos and the missing."""
    infos: dict[str, QueueInfo] = {}
    missing: list[QueueRef] = []
    checked: set[tuple[BackendKind, str | None]] = set()
    for queue in queues:
        backend = fanout.backends[queue.backend]
        if (queue.backend, queue.schema) not in checked:
            backend.check_schema(conn, queue)
            checked.add((queue.backend, queue.schema))
        if create and queue.create_missing:
            infos[queue.logical] = backend.ensure_queue(conn, queue)
        else:
            infos[queue.logical] = backend.describe_queue(conn, queue)
        if not infos[queue.logical].exists:
            if not create and queue.create_missing:
                # A dry run: the queue as the real fan-out's `ensure_queue` would create it (or its error).
                infos[queue.logical] = backend.describe_new_queue(queue)
            missing.append(queue)
    return infos, missing


def fanout_in_transaction(
    fanout: Fanout, conn: psycopg.Connection[Any], name: str, tick: datetime
) -> FanoutResult:
    """Enqueue the cohort of schedule `name` at `tick` on `conn`, inside the caller's open transaction.

    When a target queue is missing nothing is written and every entity is reported `queue_missing`
    (`report.failure` says which queue). The caller commits, then calls `after_commit`. The fan-out's
    writes sit in a savepoint of their own: a one-COPY attempt refused by a slot taken meanwhile is rolled
    back to it and the tick done again (the cohort read again), without touching the caller's statements.
    """
    return _run(fanout, conn, name, tick, dry=False)


def predict(fanout: Fanout, conn: psycopg.Connection[Any], name: str, tick: datetime) -> FanoutResult:
    """What `fanout_in_transaction` would report now, without writing anything (dry-run, `fire --dry`)."""
    return _run(fanout, conn, name, tick, dry=True)


def plan_only(fanout: Fanout, name: str, tick: datetime) -> FanoutResult:
    """The plan of a tick with no queue database at all: the report stays empty (nothing is predicted)."""
    return _run(fanout, None, name, tick, dry=True)


def _run(
    fanout: Fanout, conn: psycopg.Connection[Any] | None, name: str, tick: datetime, *, dry: bool
) -> FanoutResult:
    """One fan-out. A real one first tries to send each queue's chunks as one statement (`ChunkStream`)
    under a savepoint; if a stream is refused (a slot turned out held), the savepoint is rolled back and
    the tick is done again, cohort and all, chunk by chunk (each chunk then finds its own held slots).
    The cyclic garbage collector is paused meanwhile (`collector_paused`)."""
    started = time.perf_counter()
    with collector_paused():
        if dry or conn is None:
            return _run_once(fanout, conn, name, tick, dry=dry, stream=False, started=started)
        if not fanout.stream:
            result = _run_once(fanout, conn, name, tick, dry=False, stream=False, started=started)
        else:
            try:
                with conn.transaction():
                    result = _run_once(fanout, conn, name, tick, dry=False, stream=True, started=started)
            except StreamRefused as refused:
                log.info(
                    "schedule %r, tick %s: one statement per queue was refused (%s); enqueuing chunk by chunk",
                    name,
                    tick.isoformat(),
                    refused,
                )
                result = _run_once(fanout, conn, name, tick, dry=False, stream=False, started=started)
    # Logged once the fan-out is done: a stream refused and done again would log its rows twice.
    _log_invalid(result.report)
    return result


def _run_once(
    fanout: Fanout,
    conn: psycopg.Connection[Any] | None,
    name: str,
    tick: datetime,
    *,
    dry: bool,
    stream: bool,
    started: float,
) -> FanoutResult:
    schedule = fanout.schedule(name)
    queues = queues_of(fanout.loaded.config, schedule)
    report = FanoutReport(
        schedule=name,
        tick=tick,
        detail_limit=fanout.detail_limit,
        dry=dry,
        connections_used=int(conn is not None),
    )
    preview = PlanPreview()
    infos, missing = _describe_all(fanout, conn, queues, create=not dry) if conn is not None else ({}, [])
    # A dry run cannot create a queue; one that `create_missing` would create is predicted as new and empty.
    to_create = {q.logical for q in missing if dry and q.create_missing}
    missing = [q for q in missing if q.logical not in to_create]
    if missing:
        report.failure = f"queue {missing[0].name!r} ({missing[0].backend.value}, logical {missing[0].logical!r}) does not exist"
    keys = TickKeys(fanout.spill_after)
    placed: dict[str, set[str]] = {}
    preparers: dict[str, Callable[[Batch], object]] = {}
    # Rows a queue cannot hold are left out wherever the report is exact (a write or a prediction).
    limits = {q.logical: fanout.backends[q.backend].row_limits(q) for q in queues} if conn is not None else {}
    if conn is not None and not missing:
        keyed = schedule.singleton_key is not None
        preparers = {
            q.logical: fanout.backends[q.backend].preparer(conn, q, dry=dry, keyed=keyed)
            for q in queues
            if q.logical not in to_create
        }
    writer = _Streams(fanout.backends, conn, queues) if stream and conn is not None and not missing else None
    count = writer is not None and any(fanout.backends[q.backend].stream_needs_total for q in queues)
    with fanout.open_cohort(name, tick, count=count) as cohort, ExitStack() as cleanup:
        cleanup.callback(keys.close)
        if writer is not None:
            writer.total = cohort.total
            cleanup.push(writer.on_error)
        sample = _StaggerSampler(preview, tick, max(1, (cohort.total or 0) // STAGGER_SAMPLES))
        planned = _chunks(fanout.plan(name, tick, cohort, preview), keys, preparers, limits)
        with closing(ahead(planned, fanout.plan_ahead, name="scheduler-plan")) as chunks:
            for chunk in chunks:
                batch = chunk.batch
                if missing:
                    report.add(_missing(batch))
                    continue
                if conn is None:
                    continue
                prepared = chunk.prepared
                sent, drops = chunk.split
                valid = batch if chunk.invalid is None else chunk.invalid[0]
                backend = fanout.backends[batch.queue.backend]
                if not sent.jobs:
                    result = ChunkResult(batch.queue, ())
                elif batch.queue.logical in to_create:
                    result = backend.predict_new_many(sent, placed.setdefault(batch.queue.logical, set()))
                elif dry:
                    result = backend.predict_many(
                        conn, sent, placed.setdefault(batch.queue.logical, set()), prepared
                    )
                elif writer is not None and (streamed := writer.write(sent, prepared)) is not None:
                    result = streamed
                else:
                    result = backend.enqueue_many(conn, sent, prepared)
                if not dry:  # a prediction has no job ids to remember
                    keys.remember(batch.queue.logical, sent.jobs, result.outcomes)
                if drops:
                    drops = keys.name_holders(batch.queue.logical, drops)
                merged = _merge(valid, sent, result, drops)
                if chunk.invalid is not None:
                    merged = _merge(batch, valid, merged, chunk.invalid[1])
                report.add(merged)
                sample(batch, merged.outcomes)
        if writer is not None:
            writer.close()
    report.cohort_size = preview.stats.rows
    report.duration_seconds = time.perf_counter() - started
    return FanoutResult(report=report, preview=preview, queue_infos=infos)


def after_commit(fanout: Fanout, conn: psycopg.Connection[Any], result: FanoutResult) -> None:
    """Wake the queues' listeners once the fan-out committed."""
    for totals in result.report.queues.values():
        info = result.queue_infos.get(totals.queue.logical)
        if info is not None and totals.accepted:
            fanout.backends[totals.queue.backend].after_commit(conn, totals.queue, info)


def fire(fanout: Fanout, name: str, tick: datetime, *, dry: bool = False) -> FanoutResult:
    """Run one tick now on its own connection and transaction: commit on success, roll back on any error.

    A missing queue writes nothing (the transaction is rolled back) and is reported, not raised.
    """
    with ExitStack() as stack:
        conn = stack.enter_context(fanout.connect_queue_db(name))
        if dry:
            conn.read_only = True
        with conn.transaction() as txn:
            result = _run(fanout, conn, name, tick, dry=dry)
            if dry or result.report.failure:
                raise psycopg.Rollback(txn)
        if not dry and not result.report.failure:
            after_commit(fanout, conn, result)
        return result


__all__ = [
    "Fanout",
    "FanoutResult",
    "PlanPreview",
    "TickKeys",
    "after_commit",
    "default_backends",
    "fanout_in_transaction",
    "fire",
    "plan_only",
    "predict",
]
