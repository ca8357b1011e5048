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

procrastinate has no version table, so `check_schema` probes the catalogs. `QueueRef.schema`, when set, is
the schema procrastinate lives in: each call points `search_path` at it and puts the previous value back
(the insert triggers name procrastinate's tables unqualified, so qualifying our own names would not do).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, LiteralString

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from scheduler.errors import BackendError, ConfigError, PlanError, QueueMissing, SchemaMismatch
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


class ProcrastinateBackend:
    """Adapter for procrastinate 3 tables (see the module docstring for the column mapping)."""

    kind = BackendKind.PROCRASTINATE

    def check_schema(self, conn: psycopg.Connection[Any], queue: QueueRef) -> str:
        """Probe the jobs table, its columns, the queueing-lock index and the status enum.

        Returns `SCHEMA_VERSION`; raises `SchemaMismatch` naming what is missing and the supported version.
        """
        with _in_schema(conn, queue):
            probe = _fetch_one(conn, queue, "schema_probe", {})
        where = f"schema {queue.schema!r}" if queue.schema else "the connection's search_path"
        fix = (
            "Create it with `procrastinate schema --apply` on an empty database, or apply the migrations "
            "listed by `procrastinate schema --migrations-path` up to your procrastinate 3 version."
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
            where = f"schema {queue.schema!r}" if queue.schema else "the connection's search_path"
            raise QueueMissing(
                f"procrastinate queue {queue.name!r} ({queue.logical}): table procrastinate_jobs not found in "
                f"{where}. Apply procrastinate's schema (`procrastinate schema --apply`) where the workers run."
            )
        return info

    def preparer(
        self, conn: psycopg.Connection[Any], queue: QueueRef, *, dry: bool = False
    ) -> Callable[[Batch], object]:
        """The batch's task args as JSON, checked (the part of `enqueue_many` that needs no database)."""
        _require_task(queue)
        return lambda batch: _Prepared(tuple(_validate(queue, batch.jobs)))

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

    def open_stream(self, conn: psycopg.Connection[Any], queue: QueueRef) -> None:
        """No stream: each chunk is its own INSERT (ids are taken first, then rows inserted by lock)."""
        return None

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
    """A batch's task args as JSON text, checked: what `ProcrastinateBackend.preparer`'s function returns."""

    args: tuple[str, ...]


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
    try:
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query, params)
            return cur.fetchall()
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
