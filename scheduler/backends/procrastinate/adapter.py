"""The procrastinate 3 backend: bulk enqueue into `procrastinate_jobs` with one exact outcome per job.

procrastinate's own `batch_defer` is one atomic INSERT that fails as a whole on the first queueing-lock
collision and names only that lock. This adapter writes the same rows with its own statement instead
(`job_insert_many` in queries.sql): ids are taken up front, a row whose queueing_lock already has a `todo`
job is skipped, and each skipped row is explained by one follow-up read naming the job holding the lock.

Mapping from a `JobSpec`:
- `queue_name` = `QueueRef.name`, `task_name` = `QueueRef.task` (exactly the registered name, including any
  blueprint `namespace:` prefix), `args` = `JobSpec.data` (must be a JSON object: procrastinate passes it
  as keyword arguments, and a non-object gets the job stuck in `doing`), `priority` =
  `JobOptions.priority`, `queueing_lock` = `JobSpec.singleton_key`, `scheduled_at` = `JobSpec.start_after`.
- `lock` stays NULL. procrastinate's `lock` serializes *execution* across every queue and task sharing it,
  which is the worker's business (a task or its defer call sets it); the scheduler only promises one
  waiting job per key, which is `queueing_lock`.
- `retry_limit`, `retry_delay_seconds` and `expire_in_seconds` have no column: procrastinate keeps retry
  policy on the task, in the worker's code. They are ignored.

A fan-out sends all its chunks for the queues of one procrastinate schema through one binary COPY instead
(`open_stream`, see `scheduler.fanout`), when it knows how many jobs it may write (to take their ids
first: a COPY returns none) and the queueing locks todo jobs held as it began (up to `held_limit`, read
once; their jobs are left out and reported held). A lock taken meanwhile refuses the COPY as a whole, and
the fan-out is done again one `job_insert_many` per chunk.

procrastinate has no version table, so `check_schema` probes the catalogs. `QueueRef.schema`, when set, is
the schema procrastinate lives in: each call points `search_path` at it and puts the previous value back
(the insert triggers name procrastinate's tables unqualified, so qualifying our own names would not do).
"""

from __future__ import annotations

import json
import shlex
import struct
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from itertools import chain
from typing import TYPE_CHECKING, Any, Final, LiteralString

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from scheduler.backends.base import StreamRefused
from scheduler.backends.copybinary import (
    NULL,
    int4_field,
    jsonb_field,
    microseconds,
    text_field,
    timestamp_field,
)
from scheduler.backends.copystream import CopyStream
from scheduler.errors import BackendError, ConfigError, PlanError, QueueMissing, SchemaMismatch
from scheduler.planning.rows import RowLimits
from scheduler.sqlfile import load_queries
from scheduler.types import (
    Accepted,
    BackendKind,
    Batch,
    ChunkResult,
    Dropped,
    DropReason,
    JobSpec,
    Outcome,
    QueueInfo,
    QueueRef,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

QUERIES = load_queries(__package__ or __name__, "queries.sql")

POLICY = "queueing_lock"
"""The only one-per-key policy procrastinate has: one `todo` job per queueing_lock, across all queues."""

SCHEMA_VERSION = "procrastinate 3 (queueing_lock_idx_v1)"
SUPPORTED = "procrastinate 3.x (tested with 3.10.0)"
REQUIRED_COLUMNS = (
    "id",
    "queue_name",
    "task_name",
    "priority",
    "lock",
    "queueing_lock",
    "args",
    "status",
    "scheduled_at",
    "attempts",
    "abort_requested",
)
"""The columns we write or filter on, plus the ones whose defaults we rely on. The 3.x marker is the index
name: `procrastinate_jobs_queueing_lock_idx_v1` replaced the unsuffixed index in 3.0.0's migrations."""
REQUIRED_STATUSES = ("todo", "doing", "succeeded", "failed", "cancelled", "aborted")
NAME_LIMIT = 128
"""`queue_name` and `task_name` are varchar(128)."""
QUEUEING_LOCK_INDEX_BYTES: Final = 2680
"""The longest queueing_lock (UTF-8 bytes) we write. Index procrastinate_jobs_queueing_lock_idx_v1 (the
lock alone, `WHERE status = 'todo'`) took at most 2,692 bytes (a btree tuple's 2,704 less its 8-byte
header and the value's 4-byte length), measured on PostgreSQL 15 against the schema procrastinate 3.10.0
applies: one todo job inserted per try, the lock incompressible (random letters and digits), binary search
for the longest that lands. 12 bytes of margin, as with pg-boss."""
HELD_LIMIT: Final = 100_000
"""A fan-out reads up to this many queueing locks held by todo jobs as it begins, to leave their jobs out
of its one COPY; with more it goes one statement per chunk (about 20 MB at this default)."""

_ROW_LIMITS: Final = RowLimits(
    QUEUEING_LOCK_INDEX_BYTES, singleton_key_name="queueing lock", text_object_keys=True
)


class ProcrastinateBackend:
    """Adapter for procrastinate 3 tables (see the module docstring for the column mapping)."""

    kind = BackendKind.PROCRASTINATE
    stream_needs_total = True
    """A stream takes its jobs' ids before it writes, so the fan-out counts its cohort first."""

    def __init__(self, held_limit: int = HELD_LIMIT) -> None:
        self.held_limit = held_limit

    def check_schema(self, conn: psycopg.Connection[Any], queue: QueueRef) -> str:
        """Probe the jobs table, its columns, the queueing-lock index and the status enum.

        Returns `SCHEMA_VERSION`; raises `SchemaMismatch` naming what is missing and the supported version.
        """
        with _in_schema(conn, queue):
            probe = _fetch_one(conn, queue, "schema_probe", {})
        where = f"schema {queue.schema!r}" if queue.schema else "the connection's search_path"
        fix = (
            f"Create it with procrastinate's own CLI: `{schema_command(queue)}` (an empty schema), or "
            "upgrade it with the migrations in the directory `procrastinate schema --migrations-path` prints, "
            "up to your procrastinate 3 version."
        )
        if not probe["has_jobs"]:
            raise SchemaMismatch(
                f"procrastinate queue {queue.name!r}: table procrastinate_jobs not found in {where}; "
                f"supported: {SUPPORTED}. {fix}"
            )
        missing: list[str] = [f"column {c}" for c in REQUIRED_COLUMNS if c not in probe["columns"]]
        if not probe["has_queueing_lock_index"]:
            missing.append("index procrastinate_jobs_queueing_lock_idx_v1")
        missing += [f"status {s!r}" for s in REQUIRED_STATUSES if s not in probe["statuses"]]
        if missing:
            raise SchemaMismatch(
                f"procrastinate queue {queue.name!r}: procrastinate_jobs in {where} is not {SUPPORTED}: "
                f"missing {', '.join(missing)} (found columns {', '.join(probe['columns'])}; "
                f"statuses {', '.join(probe['statuses']) or 'none'}). {fix}"
            )
        return SCHEMA_VERSION

    def describe_queue(self, conn: psycopg.Connection[Any], queue: QueueRef) -> QueueInfo:
        """A procrastinate queue is only a name on job rows, so it exists as soon as the schema does.

        `exists` is True when `procrastinate_jobs` is found (in `QueueRef.schema` or on search_path). Retry
        and expiry live in the worker's task code, so they are None; `notify` is False because the insert
        trigger notifies workers by itself at commit.
        """
        with _in_schema(conn, queue):
            probe = _fetch_one(conn, queue, "schema_probe", {})
        if not probe["has_jobs"]:
            return QueueInfo(queue=queue, exists=False)
        version = (
            SCHEMA_VERSION if probe["has_queueing_lock_index"] else "procrastinate (no queueing_lock_idx_v1)"
        )
        return QueueInfo(queue=queue, exists=True, policy=POLICY, schema_version=version)

    def ensure_queue(self, conn: psycopg.Connection[Any], queue: QueueRef) -> QueueInfo:
        """Nothing to create: check the queue names a task and the schema is there, then describe it.

        Raises `ConfigError` when `QueueRef.task` is unset, `QueueMissing` when the schema is absent
        (a scheduler never applies procrastinate's schema: the app that runs the workers owns it).
        """
        _require_task(queue)
        info = self.describe_queue(conn, queue)
        if not info.exists:
            raise _schema_missing(queue)
        return info

    def describe_new_queue(self, queue: QueueRef) -> QueueInfo:
        """Never: a scheduler creates no procrastinate schema, so `ensure_queue` raises `QueueMissing`
        (or `ConfigError` without `task`), and so does this."""
        _require_task(queue)
        raise _schema_missing(queue)

    def predict_new_many(self, batch: Batch, placed: set[str]) -> ChunkResult:
        """Never reached: `describe_new_queue` raises for every queue."""
        raise _schema_missing(batch.queue)

    def row_limits(self, queue: QueueRef) -> RowLimits:
        """The longest queueing lock (`QUEUEING_LOCK_INDEX_BYTES`); args must be an object with text keys
        (they become the task's keyword arguments)."""
        return _ROW_LIMITS

    def preparer(
        self, conn: psycopg.Connection[Any], queue: QueueRef, *, dry: bool = False, keyed: bool = True
    ) -> Callable[[Batch], object]:
        """The batch's task args as JSON, checked (the part of `enqueue_many` that needs no database), and,
        for a write, the batch's rows as the stream's COPY sends them (`_stream_rows`), when the queueing
        locks held now are few enough to read: those read here, once, before the fan-out writes anything.
        A holder a worker takes while the fan-out runs is reported as it was read (the tick's view of the
        queue is the one it began with); a lock taken meanwhile refuses the stream's COPY. Not `keyed` (no
        job has a queueing lock): nothing to read, as no lock can refuse a row."""
        task = _require_task(queue)
        held = None if dry else self._held_locks(conn, queue) if keyed else {}
        if held is None:
            return lambda batch: _Prepared(tuple(_validate(queue, batch.jobs)))
        names = text_field(queue.name) + text_field(task)

        def prepare(batch: Batch) -> _Prepared:
            args = tuple(_validate(queue, batch.jobs))
            return _Prepared(args, _stream_rows(batch, args, held, names))

        return prepare

    def enqueue_many(
        self, conn: psycopg.Connection[Any], batch: Batch, prepared: object | None = None
    ) -> ChunkResult:
        """Insert the batch with one statement; one outcome per job, in the batch's order.

        A job whose queueing_lock already has a `todo` job is `policy_conflict` naming that job (one more
        read, only when something was dropped). A second job of the batch with the same queueing_lock (the
        caller should have reported it as `duplicate_in_cohort` already) never reaches the database and is
        `duplicate_in_cohort`, naming the job that holds the lock after the insert.
        """
        queue = batch.queue
        task = _require_task(queue)
        args = prepared.args if isinstance(prepared, _Prepared) else tuple(_validate(queue, batch.jobs))
        firsts, duplicates = _first_per_lock(batch.jobs)
        if not firsts:
            return ChunkResult(queue=queue, outcomes=())
        params = {
            "queue_name": queue.name,
            "task_name": task,
            "queueing_locks": [batch.jobs[i].singleton_key for i in firsts],
            "args": [args[i] for i in firsts],
            "scheduled_at": [batch.jobs[i].start_after for i in firsts],
            "priorities": [batch.jobs[i].options.priority for i in firsts],
        }
        with _in_schema(conn, queue):
            rows = _fetch_all(conn, queue, "job_insert_many", params)
            # `ord` counts from 1 over `firsts`; map each row back to its position in the batch.
            ids = {firsts[r["ord"] - 1]: str(r["id"]) for r in rows if r["inserted"]}
            skipped = [batch.jobs[i].singleton_key for i in firsts if i not in ids]
            locks = [lock for lock in skipped if lock is not None]
            holders = _holders(conn, queue, "job_holder_many", locks) if locks else {}
        for i, job_id in ids.items():
            lock = batch.jobs[i].singleton_key
            if lock is not None:
                holders[lock] = (job_id, "todo")
        outcomes: list[Outcome] = []
        for i, job in enumerate(batch.jobs):
            if i in duplicates:
                outcomes.append(_dropped(job, DropReason.DUPLICATE_IN_COHORT, holders))
            elif i in ids:
                outcomes.append(Accepted(key=job.key, job_id=ids[i]))
            else:
                outcomes.append(_dropped(job, DropReason.POLICY_CONFLICT, holders))
        return ChunkResult(queue=queue, outcomes=tuple(outcomes))

    def open_stream(
        self, conn: psycopg.Connection[Any], queue: QueueRef, expected: int | None = None
    ) -> _CopyStream | None:
        """One COPY for the fan-out's chunks into the queues of `queue`'s schema. Takes `expected` ids from
        the sequence now (one statement): a COPY cannot say which ids it wrote. None when `expected` is
        unknown."""
        if expected is None:
            return None
        with _in_schema(conn, queue):
            runs = _fetch_all(conn, queue, "job_ids_reserve", {"count": expected})
        return _CopyStream(conn, queue, _Ids([(int(r["first"]), int(r["last"])) for r in runs]))

    def predict_many(
        self,
        conn: psycopg.Connection[Any],
        batch: Batch,
        placed: set[str],
        prepared: object | None = None,
    ) -> ChunkResult:
        """What `enqueue_many` would return, reading only; adds the accepted jobs' locks to `placed`.

        A lock taken in `placed` by an earlier batch of the prediction is a `policy_conflict` with holder
        id `""` (that job does not exist yet) and state `todo`.
        """
        queue = batch.queue
        _require_task(queue)
        if not isinstance(prepared, _Prepared):
            _validate(queue, batch.jobs)
        firsts, duplicates = _first_per_lock(batch.jobs)
        locks = [lock for i in firsts if (lock := batch.jobs[i].singleton_key) is not None]
        with _in_schema(conn, queue):
            holders = _holders(conn, queue, "job_holder_todo_many", locks) if locks else {}
        outcomes: list[Outcome] = []
        for i, job in enumerate(batch.jobs):
            lock = job.singleton_key
            if i in duplicates:
                outcomes.append(_dropped(job, DropReason.DUPLICATE_IN_COHORT, holders))
            elif lock is None:
                outcomes.append(Accepted(key=job.key, job_id=""))
            elif lock in holders:
                outcomes.append(_dropped(job, DropReason.POLICY_CONFLICT, holders))
            elif _slot(queue, lock) in placed:
                holders[lock] = ("", "todo")
                outcomes.append(_dropped(job, DropReason.POLICY_CONFLICT, holders))
            else:
                placed.add(_slot(queue, lock))
                holders[lock] = ("", "todo")
                outcomes.append(Accepted(key=job.key, job_id=""))
        return ChunkResult(queue=queue, outcomes=tuple(outcomes))

    def waiting_keys(
        self, conn: psycopg.Connection[Any], queue: QueueRef, keys: Sequence[str]
    ) -> dict[str, str]:
        """The todo job holding each queueing_lock, in any queue (one read); see `Backend`."""
        if not keys:
            return {}
        with _in_schema(conn, queue):
            rows = _fetch_all(conn, queue, "job_waiting_lock_many", {"queueing_locks": sorted(set(keys))})
        return {str(r["queueing_lock"]): str(r["id"]) for r in rows}

    def after_commit(self, conn: psycopg.Connection[Any], queue: QueueRef, info: QueueInfo) -> None:
        """Nothing to do: procrastinate's AFTER INSERT trigger sends the NOTIFY, delivered at commit."""

    def _held_locks(self, conn: psycopg.Connection[Any], queue: QueueRef) -> dict[str, str] | None:
        """queueing_lock → id of the todo job holding it, for every lock held now; None when there are more
        than `held_limit`."""
        with _in_schema(conn, queue):
            rows = _fetch_all(conn, queue, "job_held_all", {"limit": self.held_limit + 1})
        if len(rows) > self.held_limit:
            return None
        return {str(r["queueing_lock"]): str(r["id"]) for r in rows}


class _CopyStream(CopyStream):
    """The `ChunkStream` of procrastinate: one binary COPY into `procrastinate_jobs`, rows of any queue of
    one schema, sent chunk by chunk as the fan-out plans them, with ids taken from the table's sequence
    when the stream is opened (`ids`, for as many jobs as the fan-out may write). The COPY lands whole or
    not at all (a queueing lock taken after the held locks were read refuses it: `StreamRefused`), so each
    chunk's results are known when it is written. A chunk with more jobs than ids are left is not accepted.
    No savepoint of its own: the fan-out takes one around it."""

    def __init__(self, conn: psycopg.Connection[Any], queue: QueueRef, ids: _Ids) -> None:
        super().__init__(conn)
        self._queue = queue
        self._schema = queue.schema
        self._ids = ids

    def serves(self, queue: QueueRef) -> bool:
        return queue.backend is BackendKind.PROCRASTINATE and queue.schema == self._schema

    def accepts(self, queue: QueueRef, prepared: object | None) -> bool:
        return (
            self.serves(queue)
            and isinstance(prepared, _Prepared)
            and prepared.rows is not None
            and len(prepared.rows.tails) <= self._ids.left
        )

    def _encode(self, batch: Batch, prepared: object) -> tuple[bytes, ChunkResult]:
        # `accepts` said so:
        assert isinstance(prepared, _Prepared)
        assert prepared.rows is not None
        rows = prepared.rows
        ids = self._ids.take(len(rows.tails))
        data = b"".join(chain.from_iterable(zip(map(_row_head, ids), rows.tails, strict=True)))
        return data, ChunkResult(queue=batch.queue, outcomes=_outcomes_if_copied(batch, rows, ids))

    def _enter(self, stack: ExitStack) -> psycopg.Copy:
        # search_path points at the schema for the whole COPY: procrastinate's triggers need it.
        stack.enter_context(_in_schema(self._conn, self._queue))
        cur = stack.enter_context(self._conn.cursor())
        return stack.enter_context(cur.copy(QUERIES["job_copy"]))

    def _errors(self) -> AbstractContextManager[None]:
        return _driver_errors(self._queue, "job_copy")

    def _refused(self, error: psycopg.errors.UniqueViolation) -> StreamRefused:
        where = f"schema {self._schema!r}" if self._schema else "the search_path's schema"
        return StreamRefused(
            f"procrastinate_jobs in {where}: {error.diag.message_primary} ({error.diag.message_detail})"
        )


class _Ids:
    """Job ids taken from the sequence, handed out in order."""

    def __init__(self, runs: list[tuple[int, int]]) -> None:
        self._runs = deque(range(first, last + 1) for first, last in runs)
        self.left = sum(len(run) for run in self._runs)

    def take(self, count: int) -> list[int]:
        if count > self.left:
            raise ValueError(f"{count} ids asked, {self.left} left")  # `accepts` prevents it
        taken: list[int] = []
        while len(taken) < count:
            run = self._runs[0]
            need = count - len(taken)
            taken.extend(run[:need])
            if len(run) <= need:
                self._runs.popleft()
            else:
                self._runs[0] = run[need:]
        self.left -= count
        return taken


_ROW_FIELDS: Final = 8
"""job_copy's columns: id, queue_name, task_name, priority, lock, queueing_lock, args, scheduled_at."""
_row_head: Final = partial(struct.Struct(">hiq").pack, _ROW_FIELDS, 8)
"""A COPY row's field count, then its first field, the id (an int8)."""


@dataclass(frozen=True, slots=True)
class _StreamRows:
    """A batch as the stream sends it: the rows, less their ids, of the jobs it writes, and why the others
    are left out."""

    sent: tuple[int, ...]
    """Positions in the batch of the jobs written, in order."""
    tails: tuple[bytes, ...]
    """Each written job's COPY row after its id."""
    held: dict[int, str]
    """Position → id of the todo job that held the job's queueing lock as the fan-out began."""
    repeats: frozenset[int]
    """Positions of the jobs repeating the queueing lock of an earlier job of the batch."""


def _stream_rows(
    batch: Batch, args: tuple[str, ...], held: Mapping[str, str], names: bytes
) -> _StreamRows | None:
    """The batch's rows for the stream's COPY (`names`: the queue and task name fields, which every row
    shares). None when a job's values do not fit the columns (the chunk then takes `job_insert_many`, which
    reports it)."""
    firsts, duplicates = _first_per_lock(batch.jobs)
    jobs = batch.jobs
    sent: list[int] = []
    tails: list[bytes] = []
    held_at: dict[int, str] = {}
    try:
        for i in firsts:
            job = jobs[i]
            lock = job.singleton_key
            if lock is not None:
                holder = held.get(lock)
                if holder is not None:
                    held_at[i] = holder
                    continue
            sent.append(i)
            tails.append(
                names
                + int4_field(4, job.options.priority)
                + NULL
                + (NULL if lock is None else text_field(lock))
                + jsonb_field(args[i])
                + timestamp_field(8, microseconds(job.start_after))
            )
    except (struct.error, UnicodeEncodeError):
        return None
    return _StreamRows(tuple(sent), tuple(tails), held_at, frozenset(duplicates))


def _outcomes_if_copied(batch: Batch, rows: _StreamRows, ids: list[int]) -> tuple[Outcome, ...]:
    """A chunk's results once the COPY lands, with no read: the jobs written are accepted with their ids; a
    job left out names the todo job that held its lock (`held`), or, repeating a lock of the batch, the
    job holding it after the batch."""
    jobs = batch.jobs
    job_ids = dict(zip(rows.sent, map(str, ids), strict=True))
    holders: dict[str, tuple[str, str]] = {}
    for i, holder in chain(rows.held.items(), job_ids.items()):
        lock = jobs[i].singleton_key
        if lock is not None:
            holders[lock] = (holder, "todo")
    return tuple(
        Accepted(key=job.key, job_id=job_id)
        if (job_id := job_ids.get(i)) is not None
        else _dropped(
            job,
            DropReason.DUPLICATE_IN_COHORT if i in rows.repeats else DropReason.POLICY_CONFLICT,
            holders,
        )
        for i, job in enumerate(jobs)
    )


def _schema_missing(queue: QueueRef) -> QueueMissing:
    where = f"schema {queue.schema!r}" if queue.schema else "the connection's search_path"
    return QueueMissing(
        f"procrastinate queue {queue.name!r} ({queue.logical}): table procrastinate_jobs not found in "
        f"{where}. Create it with procrastinate's own CLI: `{schema_command(queue)}`."
    )


def _slot(queue: QueueRef, lock: str) -> str:
    """The `placed` entry for a lock. The unique index spans every queue of one procrastinate schema."""
    return f"procrastinate\x1f{queue.schema or ''}\x1f{lock}"


def _require_task(queue: QueueRef) -> str:
    if not queue.task:
        raise ConfigError(
            f"queue {queue.logical!r} ({queue.name}) is a procrastinate queue without `task`: set `task:` to the "
            "task name the workers registered (`name=` given to @app.task, else `module.function`)."
        )
    for what, value in (("queue name", queue.name), ("task", queue.task)):
        if len(value) > NAME_LIMIT:
            raise ConfigError(
                f"queue {queue.logical!r}: procrastinate {what} {value[:40]!r}… is {len(value)} characters; "
                f"procrastinate allows at most {NAME_LIMIT}."
            )
    return queue.task


def _args_json(queue: QueueRef, job: JobSpec) -> str:
    """`job.data` as JSON text, refusing anything procrastinate cannot pass as keyword arguments."""
    data: object = job.data
    if not isinstance(data, Mapping) or not all(isinstance(k, str) for k in data):
        raise PlanError(
            f"queue {queue.logical!r}, key {job.key!r}: procrastinate job args must be a JSON object with "
            f"string keys (they become the task's keyword arguments), got {type(data).__name__}. "
            "Nothing was enqueued for this batch."
        )
    try:
        return json.dumps(dict(data), allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise PlanError(
            f"queue {queue.logical!r}, key {job.key!r}: procrastinate job args are not JSON ({exc}). "
            "Nothing was enqueued for this batch."
        ) from exc


def _aware(queue: QueueRef, when: datetime, job: JobSpec) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise PlanError(
            f"queue {queue.logical!r}, key {job.key!r}: start_after {when.isoformat()} has no time zone; "
            "procrastinate's scheduled_at is timestamptz and needs an aware instant."
        )
    return when


def _first_per_lock(jobs: tuple[JobSpec, ...]) -> tuple[list[int], set[int]]:
    """Positions of the jobs sent to the database, and of the jobs repeating an earlier job's queueing_lock."""
    firsts: list[int] = []
    duplicates: set[int] = set()
    seen: set[str] = set()
    for i, job in enumerate(jobs):
        lock = job.singleton_key
        if lock is not None and lock in seen:
            duplicates.add(i)
            continue
        if lock is not None:
            seen.add(lock)
        firsts.append(i)
    return firsts, duplicates


@dataclass(frozen=True, slots=True)
class _Prepared:
    """What `ProcrastinateBackend.preparer`'s function returns: a batch's task args as JSON text, checked,
    and its rows for the stream (None: the chunk cannot go into one)."""

    args: tuple[str, ...]
    rows: _StreamRows | None = None


def _validate(queue: QueueRef, jobs: tuple[JobSpec, ...]) -> list[str]:
    """Check every job before anything is written; return each job's args as JSON text."""
    args: list[str] = []
    for job in jobs:
        _aware(queue, job.start_after, job)
        args.append(_args_json(queue, job))
    return args


def _dropped(job: JobSpec, reason: DropReason, holders: Mapping[str, tuple[str, str]]) -> Dropped:
    holder_id, holder_state = holders.get(job.singleton_key or "", (None, None))
    return Dropped(
        key=job.key,
        reason=reason,
        singleton_key=job.singleton_key,
        policy=POLICY,
        holder_id=holder_id,
        holder_state=holder_state,
    )


def _holders(
    conn: psycopg.Connection[Any], queue: QueueRef, name: str, locks: list[str]
) -> dict[str, tuple[str, str]]:
    rows = _fetch_all(conn, queue, name, {"queueing_locks": locks})
    return {r["queueing_lock"]: (str(r["id"]), r["status"]) for r in rows}


def schema_command(queue: QueueRef) -> str:
    """The shell command that creates procrastinate's schema for `queue`: procrastinate's own SQL
    (`procrastinate schema --read` needs no app, unlike `--apply`), run by psql, which stops at the first
    error; the DSN read from its environment variable. In a `schema:` of its own, that schema first."""
    run = f"procrastinate schema --read | psql -v ON_ERROR_STOP=1 {queue.dsn_arg()}"
    if queue.schema is None:
        return run
    ident = '"' + queue.schema.replace('"', '""') + '"'
    create = shlex.quote(f"CREATE SCHEMA IF NOT EXISTS {ident}")
    options = shlex.quote(f"-c search_path={ident}")
    return (
        f"psql -v ON_ERROR_STOP=1 {queue.dsn_arg()} -c {create} && procrastinate schema --read | "
        f"PGOPTIONS={options} psql -v ON_ERROR_STOP=1 {queue.dsn_arg()}"
    )


@contextmanager
def _in_schema(conn: psycopg.Connection[Any], queue: QueueRef) -> Iterator[None]:
    """Point search_path at `queue.schema` for the calls inside, then put the previous value back.

    Inside a transaction the change is transaction-local (`set_config(..., true)`, i.e. SET LOCAL), so a
    failed statement's rollback undoes it too; on an autocommit connection it is session-level.
    """
    if queue.schema is None:
        yield
        return
    previous = _fetch_one(conn, queue, "search_path_get", {})["search_path"]
    is_local = not conn.autocommit
    path = sql.Identifier(queue.schema).as_string(conn)
    _fetch_one(conn, queue, "search_path_set", {"search_path": path, "is_local": is_local})
    try:
        yield
    finally:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.INERROR:
            _fetch_one(conn, queue, "search_path_set", {"search_path": previous, "is_local": is_local})


def _fetch_one(
    conn: psycopg.Connection[Any], queue: QueueRef, name: str, params: dict[str, Any]
) -> dict[str, Any]:
    rows = _fetch_all(conn, queue, name, params)
    return rows[0]


def _fetch_all(
    conn: psycopg.Connection[Any], queue: QueueRef, name: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    """Run one named statement; driver errors become `BackendError` with the original as `__cause__`."""
    query: LiteralString = QUERIES[name]
    with _driver_errors(queue, name), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall()


@contextmanager
def _driver_errors(queue: QueueRef, name: str) -> Iterator[None]:
    """Driver errors of statement `name` become `BackendError` (text the driver cannot encode: `PlanError`),
    with the original as `__cause__`."""
    try:
        yield
    except UnicodeEncodeError as exc:
        raise PlanError(
            f"procrastinate queue {queue.name!r} ({queue.logical}): a queueing lock or argument is not valid "
            f"Unicode text ({exc}). Nothing of this batch is committed by the scheduler."
        ) from exc
    except psycopg.Error as exc:
        state = f" [{exc.sqlstate}]" if exc.sqlstate else ""
        raise BackendError(
            f"procrastinate queue {queue.name!r} ({queue.logical}): statement {name} failed{state}: "
            f"{str(exc).strip()}. Nothing of this batch is committed by the scheduler; the caller's "
            "transaction must be rolled back."
        ) from exc
