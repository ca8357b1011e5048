"""The pg-boss 12 adapter: jobs go straight into pg-boss's own tables (schema version 46, pg-boss 12.38.0).

A row written here is the row pg-boss's `insert()` would write: a client-generated id, the queue's policy
and retry/expiry/retention settings copied from `<schema>.queue`, state `created`. The policy's partial
unique indexes then decide, inside PostgreSQL, which rows land (`ON CONFLICT DO NOTHING RETURNING id`);
the ids that did not come back are the drops, and one more query names the job holding each slot.
A large chunk is first COPYed straight into the job table, all or nothing: when no slot is held (a fresh
tick) every row lands at COPY speed; when one is, the COPY is rolled back to a savepoint and the chunk
takes the ON CONFLICT path, so the report is the same either way. A fan-out sends all its chunks of a
queue through one such COPY (`open_stream`; see `scheduler.fanout`) when no slot was held as it began, or
when the held slots, read once then (up to `held_limit`), are left out of it and reported held.

Which inserts a policy can refuse (research/pgboss.md §1–2). A new row is always `created`, so:
- `short` and `stately` refuse a row when a `created` job of the same queue, policy and key exists
  (indexes i1, i3);
- `exclusive` refuses it when a `created`, `retry` or `active` one exists (i6);
- `standard`, `singleton` (i2 covers only `active` rows) and `key_strict_fifo` (i8 covers only
  active/retry/failed) never refuse an insert.
"Key" is `COALESCE(singleton_key, '')`: every job without a singleton key shares the key `''`.
"""

from __future__ import annotations

import json
import shlex
import struct
import sys
import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import repeat
from typing import TYPE_CHECKING, Any, Final, LiteralString
from weakref import WeakKeyDictionary

import psycopg
from psycopg import sql

from scheduler.backends.base import StreamRefused
from scheduler.backends.copybinary import (
    MICROSECOND,
    NULL,
    SIGNATURE,
    TRAILER,
    body,
    int4_field,
    int_field,
    jsonb_field,
    microseconds,
    text_field,
    timestamp_field,
)
from scheduler.backends.copystream import CopyStream
from scheduler.backends.pgboss.ids import JobIds
from scheduler.errors import BackendError, ConfigError, PlanError, QueueMissing, SchemaMismatch
from scheduler.planning.rows import RowLimits
from scheduler.sqlfile import load_queries
from scheduler.types import (
    Accepted,
    BackendKind,
    ChunkResult,
    Dropped,
    DropReason,
    JsonText,
    Outcome,
    QueueInfo,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from scheduler.types import Batch, JobSpec, QueueRef

QUERIES: Final = load_queries("scheduler.backends.pgboss", "queries.sql")

SCHEMA_VERSION: Final = 46
"""The only pg-boss schema version this adapter writes to."""
PGBOSS_VERSION: Final = "12.38.0"
DEFAULT_SCHEMA: Final = "pgboss"
POLICIES: Final = ("standard", "short", "singleton", "stately", "exclusive", "key_strict_fifo")
"""Every queue policy pg-boss 12.38.0 accepts."""

_CREATED_SLOT_POLICIES: Final = frozenset({"short", "stately"})
"""Policies whose index refuses a new row while a `created` job holds its key."""
_LIVE_SLOT_POLICIES: Final = frozenset({"exclusive"})
"""Policies whose index refuses a new row while a created, retry or active job holds its key."""
_DEDUP_POLICIES: Final = _CREATED_SLOT_POLICIES | _LIVE_SLOT_POLICIES

_STAGING: Final = "scheduler_pgboss_staging"
COPY_THRESHOLD: Final = 2000
"""Batches larger than this go through COPY into a staging table instead of array parameters."""
SINGLETON_KEY_INDEX_BYTES: Final = 2639
"""The longest singleton key (UTF-8 bytes) that every index of `<schema>.job` over it takes, for a queue
named with one byte; each byte of the queue name takes one off (`row_limits`). Measured on PostgreSQL 15
(8 kB pages: a btree tuple holds at most 2,704 bytes) against the schema pg-boss 12.38.0 creates: one
`created` job inserted per try, the key incompressible (random letters and digits: a compressible key
longer than this may fit, but is refused all the same), binary search for the longest that lands. Found:
2,680 bytes for a one-byte name under every policy but key_strict_fifo (index job_common_i17: name, key,
created_on, which covers every keyed waiting job), 2,608 for a 73-byte name; under key_strict_fifo
(job_common_i10 adds state, id and start_after) 2,652, 2,604, 2,528, 2,524 and 2,452 for names of 1, 50,
126, 127 and 200 bytes. 2,639 minus the name's bytes stays 12 to 15 bytes under each of those, whatever
the live policy (which can change after the plan is made)."""
HELD_LIMIT: Final = 100_000
"""A fan-out into a queue where jobs hold slots reads up to this many of them as it begins, and leaves
their jobs out of its one COPY; a queue with more goes chunk by chunk (about 25 MB at this default)."""


class PgBossBackend:
    """Enqueue into pg-boss 12 (schema version 46) with direct SQL that a real pg-boss worker consumes."""

    kind: BackendKind = BackendKind.PGBOSS
    stream_needs_total: bool = False

    def __init__(self, copy_threshold: int = COPY_THRESHOLD, held_limit: int = HELD_LIMIT) -> None:
        self.copy_threshold = copy_threshold
        self.held_limit = held_limit
        self._slots_taken: WeakKeyDictionary[psycopg.Connection[Any], set[str]] = WeakKeyDictionary()
        """Queues whose direct COPY hit a held slot on a connection: their later chunks (a fan-out uses
        one connection) go straight to the staging path instead of failing a COPY each."""
        self._lock = threading.Lock()

    def check_schema(self, conn: psycopg.Connection[Any], queue: QueueRef) -> str:
        """Return "46" when pg-boss 12.38.0's schema is installed; raise `SchemaMismatch` otherwise."""
        schema = _schema(queue)
        with _driver_errors("schema check", queue):
            found = conn.execute(_query("schema_table_find", schema), {"schema": schema}).fetchone()
            if found is None or not found[0]:
                raise SchemaMismatch(
                    f'pg-boss is not installed in schema "{schema}" (no table "{schema}".version). '
                    f"Create it with pg-boss's own CLI (Node >= 22.12): `{schema_command(queue)}`, "
                    f"or set the queue's `schema:` to the schema pg-boss uses."
                )
            rows = conn.execute(_query("schema_version_get", schema)).fetchall()
        versions = sorted({row[0] for row in rows}, key=str)
        if versions != [SCHEMA_VERSION]:
            shown = ", ".join(str(v) for v in versions) or "none"
            older = all(isinstance(v, int) and v < SCHEMA_VERSION for v in versions) and bool(versions)
            fix = (
                f"Migrate it with pg-boss's own CLI (Node >= 22.12): `{schema_command(queue)}`, or point "
                f"the queue at a schema on version {SCHEMA_VERSION}."
                if older
                else f"pg-boss does not migrate a schema back: point the queue at a schema on version "
                f"{SCHEMA_VERSION}, or run a scheduler built for version {shown}."
            )
            raise SchemaMismatch(
                f'pg-boss schema version {shown} found in schema "{schema}"; this scheduler supports '
                f"{SCHEMA_VERSION} (pg-boss {PGBOSS_VERSION}). {fix}"
            )
        return str(SCHEMA_VERSION)

    def describe_queue(self, conn: psycopg.Connection[Any], queue: QueueRef) -> QueueInfo:
        """Read `<schema>.queue`; a missing queue is `exists=False`. Raises `SchemaMismatch` first if the
        schema is not pg-boss 12.38.0's."""
        version = self.check_schema(conn, queue)
        with _driver_errors("queue lookup", queue):
            row = conn.execute(_query("queue_get", _schema(queue)), {"name": queue.name}).fetchone()
        if row is None:
            return QueueInfo(queue=queue, exists=False, schema_version=version)
        _, policy, retry_limit, retry_delay, expire_seconds, notify = row
        return QueueInfo(
            queue=queue,
            exists=True,
            policy=policy,
            retry_limit=retry_limit,
            retry_delay_seconds=retry_delay,
            expire_seconds=expire_seconds,
            notify=bool(notify),
            schema_version=version,
        )

    def ensure_queue(self, conn: psycopg.Connection[Any], queue: QueueRef) -> QueueInfo:
        """Return the live queue, creating it with its declared policy (default "standard") when it is
        missing and `queue.create_missing` is set; raise `QueueMissing` when it is missing otherwise."""
        info = self.describe_queue(conn, queue)
        if info.exists:
            return info
        schema = _schema(queue)
        if not queue.create_missing:
            raise QueueMissing(
                f'Queue "{queue.name}" (queue `{queue.logical}`) does not exist in pg-boss schema "{schema}". '
                f"Create it with pg-boss (`{create_queue_snippet(queue)}`), or set "
                f"`create_missing: true` on queue `{queue.logical}` so the scheduler creates it."
            )
        policy = _declared_policy(queue)
        with _driver_errors("queue creation", queue):
            conn.execute(_query("queue_create_lock", schema), {"schema": schema})
            conn.execute(
                _query("queue_create", schema),
                {"name": queue.name, "options": json.dumps({"policy": policy})},
            )
        return self.describe_queue(conn, queue)

    def describe_new_queue(self, queue: QueueRef) -> QueueInfo:
        """The queue `ensure_queue` would create: its declared policy (default "standard"); raises
        `ConfigError` for a policy pg-boss does not know, like `ensure_queue`."""
        return QueueInfo(queue=queue, exists=False, policy=_declared_policy(queue))

    def predict_new_many(self, batch: Batch, placed: set[str]) -> ChunkResult:
        """What `enqueue_many` would report in the queue as `ensure_queue` creates it (empty, the declared
        policy): a one-per-key policy keeps the first job of each slot (keyless jobs share the slot '');
        key_strict_fifo refuses a job without a key (`PlanError`), as on a live queue."""
        queue = batch.queue
        policy = _declared_policy(queue)
        _require_keys(batch, policy)
        if policy not in _DEDUP_POLICIES:
            return ChunkResult(queue=queue, outcomes=_all_accepted(batch))
        prefix = f"pgboss\x1f{_schema(queue)}\x1f{queue.name}\x1f"
        outcomes: list[Outcome] = []
        for job in batch.jobs:
            token = prefix + _slot(job)
            if token in placed:
                # Held by a job this prediction would insert earlier: it has no id yet.
                outcomes.append(_conflict(job, policy, ("", "created")))
            else:
                placed.add(token)
                outcomes.append(Accepted(key=job.key, job_id=""))
        return ChunkResult(queue=queue, outcomes=tuple(outcomes))

    def row_limits(self, queue: QueueRef) -> RowLimits:
        """The longest singleton key the queue's indexes take (`SINGLETON_KEY_INDEX_BYTES`, less the
        queue name's bytes); payload keys are written as JSON writes them."""
        return RowLimits(SINGLETON_KEY_INDEX_BYTES - len(queue.name.encode("utf-8", "surrogatepass")))

    def preparer(
        self, conn: psycopg.Connection[Any], queue: QueueRef, *, dry: bool = False, keyed: bool = True
    ) -> Callable[[Batch], object]:
        """Read the queue's settings and pg-boss's clock once, for a whole fan-out, and return a function
        that turns a batch into what `enqueue_many` sends (ids, rows, the binary COPY data) without the database:
        the fan-out calls it in its planning thread, so chunk N+1 is encoded while chunk N is written.
        With `dry`, for `predict_many`: the same checks, nothing encoded. Raises `QueueMissing` when the
        queue does not exist. `keyed` changes nothing here: keyless jobs share the slot '', which a
        one-per-key policy holds too."""
        settings = self._live_settings(conn, queue)
        if dry:
            return lambda batch: _checked(batch, settings)
        ids = JobIds()  # one generator for the fan-out's jobs in this queue: ids grow chunk to chunk
        # The slots held now, read before the fan-out writes anything: their jobs are left out of the COPY
        # and reported held, so the chunks can still share one COPY. None: none held, or too many to keep.
        # A holder that a worker takes while the fan-out runs is reported as it was read: the tick's view of
        # the queue is the one it began with (a slot taken meanwhile refuses the COPY; see `_CopyStream`).
        # Not read when a COPY of this queue already failed on the connection (a fan-out done again after
        # its stream was refused): its chunks take the staging path, which finds its own holders.
        copying = not self._copy_failed_before(conn, queue.name)
        held = self._held_slots(conn, queue, settings) if settings.slots_held and copying else None

        keyless_before = False

        def prepare(batch: Batch) -> _Prepared:
            nonlocal keyless_before
            # At any size: a chunk at or below the threshold takes the array INSERT on its own, but may go
            # into the fan-out's stream.
            chunk = self._prepare(
                batch,
                settings,
                ids,
                copy=not self._copy_failed_before(conn, queue.name),
                any_size=True,
                held=held,
            )
            if settings.policy in _DEDUP_POLICIES and any(not job.singleton_key for job in batch.jobs):
                # Jobs without a key (or with an empty one) share the slot '', which the tick's keys do not
                # track: a later chunk's would hit the one an earlier chunk took, so it stays out of the
                # stream (see `_CopyStream`).
                if keyless_before:
                    chunk = replace(chunk, repeats_slot=True)
                keyless_before = True
            return chunk

        return prepare

    def enqueue_many(
        self, conn: psycopg.Connection[Any], batch: Batch, prepared: object | None = None
    ) -> ChunkResult:
        """Insert the batch and report each job: accepted with its id, or dropped naming the job holding
        its slot, in one bulk statement per chunk.

        Up to `copy_threshold` rows go in one INSERT … ON CONFLICT from array parameters. Above it the
        rows are COPYed straight into the job table (`_insert_copied`), the fast path while no slot is
        held; if one is, that COPY is rolled back and the chunk, and the queue's later chunks on this
        connection, go through COPY into a staging table and INSERT … ON CONFLICT (`_insert_staged`).
        `prepared` is what this backend's `preparer` made of this batch; without it the batch is encoded
        here, with the queue's settings read now."""
        queue = batch.queue
        if not batch.jobs:
            return ChunkResult(queue=queue, outcomes=())
        schema = _schema(queue)
        chunk = (
            prepared
            if isinstance(prepared, _Prepared)
            else self._prepare(
                batch,
                self._live_settings(conn, queue),
                JobIds(),
                copy=not self._copy_failed_before(conn, queue.name),
            )
        )
        policy = chunk.settings.policy
        rows = chunk.rows
        with _driver_errors("enqueue", queue):
            if len(rows) <= self.copy_threshold:
                inserted = _insert_arrays(conn, schema, queue.name, rows)
            else:
                if chunk.copy_data is not None and not self._copy_failed_before(conn, queue.name):
                    if _insert_copied(conn, schema, chunk.copy_data):
                        return ChunkResult(queue=queue, outcomes=_outcomes_if_copied(batch, chunk))
                    with self._lock:
                        self._slots_taken.setdefault(conn, set()).add(queue.name)
                inserted = _insert_staged(conn, schema, queue.name, rows)
            dropped_slots = {
                _slot(job)
                for job, job_id in zip(batch.jobs, chunk.ids, strict=True)
                if job_id not in inserted
            }
            holders = _holders(conn, schema, queue.name, policy, dropped_slots)
        outcomes: list[Outcome] = []
        for job, job_id in zip(batch.jobs, chunk.ids, strict=True):
            if job_id in inserted:
                outcomes.append(Accepted(key=job.key, job_id=job_id))
            else:
                holder = holders.get(_slot(job))
                outcomes.append(_conflict(job, policy, holder))
        return ChunkResult(queue=queue, outcomes=tuple(outcomes))

    def open_stream(
        self, conn: psycopg.Connection[Any], queue: QueueRef, expected: int | None = None
    ) -> _CopyStream:
        """One COPY into the job table of `queue`'s schema for the fan-out's chunks: of this queue and of
        the schema's other queues, while no slot of theirs was held when their settings were read."""
        return _CopyStream(self, conn, _schema(queue))

    def predict_many(
        self,
        conn: psycopg.Connection[Any],
        batch: Batch,
        placed: set[str],
        prepared: object | None = None,
    ) -> ChunkResult:
        """What `enqueue_many` would report, without writing: existing holders are read with the same
        predicates as the policy's unique index (not at all when no job held a slot under the policy as
        the queue's settings were read: a dry-run of a fresh tick reads no holders); earlier jobs of this
        prediction come from `placed`, which this method extends with the slots its accepted jobs take (it
        mutates `placed`). `prepared` is what `preparer(..., dry=True)` made of this batch; without it the
        batch is checked here."""
        queue = batch.queue
        if not batch.jobs:
            return ChunkResult(queue=queue, outcomes=())
        schema = _schema(queue)
        settings = (
            prepared.settings
            if isinstance(prepared, _Prepared)
            else _checked(batch, self._live_settings(conn, queue)).settings
        )
        policy = settings.policy
        if policy not in _DEDUP_POLICIES:
            return ChunkResult(queue=queue, outcomes=_all_accepted(batch))
        slots = [job.singleton_key or "" for job in batch.jobs]
        holders: dict[str, tuple[str, str]] = {}
        if settings.slots_held:
            with _driver_errors("prediction", queue):
                holders = _holders(conn, schema, queue.name, policy, set(slots))
        prefix = f"pgboss\x1f{schema}\x1f{queue.name}\x1f"
        tokens = [prefix + slot for slot in slots]
        fresh = set(tokens)
        if not holders and len(fresh) == len(tokens) and placed.isdisjoint(fresh):
            # The usual case, without a loop: no slot held, none repeated, none taken earlier.
            placed |= fresh
            return ChunkResult(queue=queue, outcomes=_all_accepted(batch))
        outcomes: list[Outcome] = []
        for job, slot, token in zip(batch.jobs, slots, tokens, strict=True):
            if slot in holders:
                outcomes.append(_conflict(job, policy, holders[slot]))
            elif token in placed:
                # Held by a job this prediction would insert earlier: it has no id yet.
                outcomes.append(_conflict(job, policy, ("", "created")))
            else:
                placed.add(token)
                outcomes.append(Accepted(key=job.key, job_id=""))
        return ChunkResult(queue=queue, outcomes=tuple(outcomes))

    def after_commit(self, conn: psycopg.Connection[Any], queue: QueueRef, info: QueueInfo) -> None:
        """On a `notify` queue, send pg-boss's wake-up (`pg_notify(<channel of the schema>, <queue>)`).

        On a connection outside autocommit this opens a transaction, and the notification is delivered
        when the caller commits it (PostgreSQL sends NOTIFY at commit).
        """
        if not info.notify:
            return
        schema = _schema(queue)
        with _driver_errors("notify", queue):
            conn.execute(_query("queue_notify", schema), {"schema": schema, "name": queue.name})

    def waiting_keys(
        self, conn: psycopg.Connection[Any], queue: QueueRef, keys: Sequence[str]
    ) -> dict[str, str]:
        """The created or retry job of `queue` holding each singleton key (one read); see `Backend`."""
        if not keys:
            return {}
        with _driver_errors("waiting-key lookup", queue):
            rows = conn.execute(
                _query("job_waiting_key_many", _schema(queue)),
                {"name": queue.name, "keys": sorted(set(keys))},
            ).fetchall()
        return {str(key): str(id_) for key, id_ in rows}

    def _copy_failed_before(self, conn: psycopg.Connection[Any], name: str) -> bool:
        with self._lock:
            return name in self._slots_taken.get(conn, ())

    def _prepare(
        self,
        batch: Batch,
        settings: _QueueSettings,
        new_ids: JobIds,
        *,
        copy: bool,
        any_size: bool = False,
        held: Mapping[str, tuple[str, str]] | None = None,
    ) -> _Prepared:
        """Ids, rows and (above the COPY threshold, or at any size with `any_size`, unless `copy` is off)
        the COPY data of a batch, without the jobs whose slot is in `held` (slot → holder id and state).

        Every path inserts rows sorted by slot (then batch order), so the ids are handed out in that order:
        each insert then appends to the job table's primary key (`JobIds`). No database."""
        _require_keys(batch, settings.policy)
        jobs = batch.jobs
        slots = [job.singleton_key or "" for job in jobs]
        order = sorted(range(len(jobs)), key=slots.__getitem__)
        ids = [""] * len(jobs)
        for i, job_id in zip(order, new_ids.take(len(jobs)), strict=True):
            ids[i] = job_id
        rows = _encode(jobs, ids)
        if not copy or (len(rows) <= self.copy_threshold and not any_size):
            return _Prepared(settings, ids, rows)
        sending = _copied(rows, order, settings.policy)
        if held:
            sending = [row for row in sending if (row[4] or "") not in held]
        accepted = None
        if len(sending) == len(rows):
            accepted = tuple(map(Accepted, [job.key for job in jobs], ids))
        return _Prepared(
            settings,
            ids,
            rows,
            copy_data=_copy_rows(batch.queue.name, settings, sending),
            copied_ids=frozenset(row[0] for row in sending),
            accepted=accepted,
            held=held,
        )

    def _held_slots(
        self, conn: psycopg.Connection[Any], queue: QueueRef, settings: _QueueSettings
    ) -> dict[str, tuple[str, str]] | None:
        """slot → (holder id, state) of every slot a new row could hit under the queue's policy; None when
        there are more than `held_limit`."""
        statement = "job_held_live_all" if settings.policy in _LIVE_SLOT_POLICIES else "job_held_created_all"
        params = {"name": queue.name, "policy": settings.policy, "limit": self.held_limit + 1}
        with _driver_errors("held-slot read", queue):
            # Not prepared, like `_holders`: a generic plan cannot match the policy's partial index.
            rows = conn.execute(_query(statement, _schema(queue)), params, prepare=False).fetchall()
        if len(rows) > self.held_limit:
            return None
        return {str(slot): (str(id_), sys.intern(str(state))) for slot, id_, state in rows}

    def _live_settings(self, conn: psycopg.Connection[Any], queue: QueueRef) -> _QueueSettings:
        with _driver_errors("queue lookup", queue):
            row = conn.execute(_query("queue_settings_get", _schema(queue)), {"name": queue.name}).fetchone()
        if row is None:
            raise QueueMissing(
                f'Queue "{queue.name}" (queue `{queue.logical}`) does not exist in pg-boss schema '
                f'"{_schema(queue)}"; nothing was enqueued. Create it, or set `create_missing: true`.'
            )
        return _QueueSettings(*row)


@dataclass(frozen=True, slots=True)
class _QueueSettings:
    """The live queue row's settings that each new job copies, and pg-boss's clock (`job_now()`)."""

    policy: str
    retry_limit: int
    retry_delay: int
    retry_backoff: bool
    retry_delay_max: int | None
    expire_seconds: int
    deletion_seconds: int
    retention_seconds: int
    dead_letter: str | None
    heartbeat_seconds: int | None
    now: datetime
    slots_held: bool = False
    """Whether, when the settings were read, a job held a slot a new row could hit under this policy."""


_Row = tuple[str, str, int, Any, str | None, int | None, int | None, int | None]
"""(id, data json, priority, start_after, singleton_key, retry_limit, retry_delay, expire_seconds)."""


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A batch encoded for `enqueue_many`: what `PgBossBackend.preparer`'s function returns."""

    settings: _QueueSettings
    ids: list[str]
    """One new job id per job of the batch, in order."""
    rows: list[_Row]
    copy_data: bytes | None = None
    """The rows the direct COPY sends, in COPY's binary format; None at or below the threshold outside a
    fan-out's preparer, or once a COPY of this queue hit a held slot on the connection."""
    copied_ids: frozenset[str] = frozenset()
    """The ids of the rows in `copy_data`."""
    accepted: tuple[Outcome, ...] | None = None
    """Every job accepted, in order: the outcomes when the COPY sends, and so lands, every row."""
    held: Mapping[str, tuple[str, str]] | None = None
    """The queue's held slots (slot → holder id and state) read as the fan-out began, whose jobs the COPY
    data leaves out; None when they were not read (none held, too many, or outside a fan-out)."""
    repeats_slot: bool = False
    """A job of the batch is in the slot '' (no singleton key, or an empty one) and an earlier batch of the
    fan-out had one too, under a policy that allows one job per slot: the batch cannot share the fan-out's
    COPY."""


class _CopyStream(CopyStream):
    """The `ChunkStream` of pg-boss: one binary COPY into `<schema>.job`, rows of any of the schema's
    queues, sent chunk by chunk as the fan-out plans them. The COPY fails as a whole when a row hits a
    held slot, so every row written lands or none does; a chunk's own repeats of a slot are left out, as
    on the direct COPY of a single chunk. Repeats across chunks cannot occur in it: the fan-out drops
    repeated singleton keys itself (`TickKeys`), and a chunk with jobs in the slot '' after another one
    (`repeats_slot`) is not accepted. No savepoint of its own: the fan-out takes one around the stream
    (see `ChunkStream`)."""

    def __init__(self, backend: PgBossBackend, conn: psycopg.Connection[Any], schema: str) -> None:
        super().__init__(conn)
        self._backend = backend
        self._schema = schema
        self._queues: dict[str, QueueRef] = {}

    def serves(self, queue: QueueRef) -> bool:
        return queue.backend is BackendKind.PGBOSS and _schema(queue) == self._schema

    def accepts(self, queue: QueueRef, prepared: object | None) -> bool:
        return (
            self.serves(queue)
            and isinstance(prepared, _Prepared)
            and prepared.copy_data is not None
            and (not prepared.settings.slots_held or prepared.held is not None)
            and not prepared.repeats_slot
            and not self._backend._copy_failed_before(self._conn, queue.name)
        )

    def _encode(self, batch: Batch, prepared: object) -> tuple[memoryview, ChunkResult]:
        # `accepts` said so:
        assert isinstance(prepared, _Prepared)
        assert prepared.copy_data is not None
        queue = batch.queue
        self._queues.setdefault(queue.name, queue)
        return body(prepared.copy_data), ChunkResult(
            queue=queue, outcomes=_outcomes_if_copied(batch, prepared)
        )

    def _enter(self, stack: ExitStack) -> psycopg.Copy:
        cur = stack.enter_context(self._conn.cursor())
        return stack.enter_context(cur.copy(_query("job_copy", self._schema)))

    def _errors(self) -> AbstractContextManager[None]:
        return _driver_errors("enqueue", next(iter(self._queues.values())))

    def _refused(self, error: psycopg.errors.UniqueViolation) -> StreamRefused:
        with self._backend._lock:
            self._backend._slots_taken.setdefault(self._conn, set()).update(self._queues)
        diag = error.diag
        return StreamRefused(
            f'pg-boss schema "{self._schema}": {diag.message_primary} ({diag.message_detail})'
        )


def _all_accepted(batch: Batch) -> tuple[Outcome, ...]:
    """Every job of a prediction accepted (no id exists yet)."""
    return tuple(map(Accepted, [job.key for job in batch.jobs], repeat("")))


def _outcomes_if_copied(batch: Batch, prepared: _Prepared) -> tuple[Outcome, ...]:
    """A chunk's results once its COPY landed, with no read: the rows sent are accepted; a row left out is
    in a slot held as the fan-out began (dropped naming that holder, `prepared.held`) or repeats a slot of
    the chunk (a dedup policy: dropped naming the chunk's first job of that slot, `created`; a landed COPY
    means no other job held it)."""
    if prepared.accepted is not None:
        return prepared.accepted
    held = prepared.held or {}
    first: dict[str, str] = {}
    for job, job_id in zip(batch.jobs, prepared.ids, strict=True):
        first.setdefault(_slot(job), job_id)
    policy = prepared.settings.policy
    return tuple(
        Accepted(key=job.key, job_id=job_id)
        if job_id in prepared.copied_ids
        else _conflict(job, policy, held.get(_slot(job)) or (first[_slot(job)], "created"))
        for job, job_id in zip(batch.jobs, prepared.ids, strict=True)
    )


def _schema(queue: QueueRef) -> str:
    return queue.schema or DEFAULT_SCHEMA


def schema_command(queue: QueueRef) -> str:
    """The shell command that creates (or migrates to) pg-boss 12.38.0's schema of `queue`'s database:
    pg-boss's own CLI, fetched by npx from the npm registry, the DSN read from its environment variable."""
    command = f"npx --yes pg-boss@{PGBOSS_VERSION} migrate --connection-string {queue.dsn_arg()}"
    if _schema(queue) != DEFAULT_SCHEMA:
        command += f" --schema {shlex.quote(_schema(queue))}"
    return command


def create_queue_snippet(queue: QueueRef) -> str:
    """pg-boss's own call that creates `queue` with its declared policy (in the app's worker code)."""
    return f"await boss.createQueue({json.dumps(queue.name)}, {{ policy: {json.dumps(queue.policy or 'standard')} }})"


def _query(name: str, schema: str) -> sql.Composed:
    text: LiteralString = QUERIES[name]
    return sql.SQL(text).format(schema=sql.Identifier(schema), staging=sql.Identifier(_STAGING))


@contextmanager
def _driver_errors(action: str, queue: QueueRef) -> Iterator[None]:
    """Translate driver errors into `BackendError` (and text the driver cannot encode into `PlanError`),
    keeping the original as `__cause__`."""
    try:
        yield
    except UnicodeEncodeError as exc:
        raise PlanError(
            f'pg-boss {action} for queue "{queue.name}": a payload or singleton key is not valid Unicode '
            f"text ({exc}). Nothing of the tick is committed."
        ) from exc
    except psycopg.Error as exc:
        detail = exc.diag.message_primary or str(exc).strip()
        raise BackendError(
            f'pg-boss {action} failed for queue "{queue.name}" in schema "{_schema(queue)}": {detail}. '
            f"The transaction is aborted; roll it back (nothing of it is committed)."
        ) from exc


def _declared_policy(queue: QueueRef) -> str:
    """The policy `ensure_queue` creates the queue with (default "standard"); raises `ConfigError`."""
    policy = queue.policy or "standard"
    if policy not in POLICIES:
        raise ConfigError(
            f'Queue `{queue.logical}` declares pg-boss policy "{policy}"; allowed: {", ".join(POLICIES)}.'
        )
    return policy


def _slot(job: JobSpec) -> str:
    """The key a policy index compares: `COALESCE(singleton_key, '')`."""
    return job.singleton_key or ""


def _require_keys(batch: Batch, policy: str) -> None:
    """key_strict_fifo needs a singleton key on every job (pg-boss's send() throws; the table has a CHECK)."""
    if policy != "key_strict_fifo":
        return
    missing = [job.key for job in batch.jobs if job.singleton_key is None]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise PlanError(
            f'Queue "{batch.queue.name}" (queue `{batch.queue.logical}`) has policy key_strict_fifo, which '
            f"needs a singleton key on every job; {len(missing)} job(s) have none (entities: {shown}). "
            f'Set `singleton_key:` on the schedule, e.g. "{{key}}".'
        )


def _payload(job: JobSpec) -> str:
    """The job's data as JSON text; raises PlanError for a payload JSON cannot hold or a naive start."""
    payload = job.data
    try:
        # A cohort's json/jsonb object arrives as text (JsonText): written as it is, not re-encoded.
        data = payload.text if type(payload) is JsonText else json.dumps(dict(payload))
    except (TypeError, ValueError) as exc:
        raise PlanError(f"Entity {job.key!r}: the payload is not JSON-serializable ({exc}).") from exc
    if job.start_after.tzinfo is None:
        raise PlanError(f"Entity {job.key!r}: start_after {job.start_after} has no time zone.")
    return data


def _checked(batch: Batch, settings: _QueueSettings) -> _Prepared:
    """The checks `enqueue_many` makes before writing (keys the policy needs, every payload), for a
    prediction: nothing is encoded."""
    _require_keys(batch, settings.policy)
    for job in batch.jobs:
        if type(job.data) is not JsonText or job.start_after.tzinfo is None:
            _payload(job)
    return _Prepared(settings, [], [])


def _encode(jobs: Sequence[JobSpec], ids: Sequence[str]) -> list[_Row]:
    rows: list[_Row] = []
    for job, job_id in zip(jobs, ids, strict=True):
        data = _payload(job)
        opts = job.options
        rows.append(
            (
                job_id,
                data,
                opts.priority,
                job.start_after,
                job.singleton_key,
                opts.retry_limit,
                opts.retry_delay_seconds,
                opts.expire_in_seconds,
            )
        )
    return rows


def _insert_arrays(conn: psycopg.Connection[Any], schema: str, name: str, rows: list[_Row]) -> set[str]:
    columns = list(zip(*rows, strict=True))
    params = {
        "name": name,
        "ids": list(columns[0]),
        "data": list(columns[1]),
        "priorities": list(columns[2]),
        "start_afters": list(columns[3]),
        "singleton_keys": list(columns[4]),
        "retry_limits": list(columns[5]),
        "retry_delays": list(columns[6]),
        "expire_seconds": list(columns[7]),
    }
    return {row[0] for row in conn.execute(_query("job_insert_many", schema), params).fetchall()}


def _insert_staged(conn: psycopg.Connection[Any], schema: str, name: str, rows: list[_Row]) -> set[str]:
    conn.execute(_query("job_staging_create", schema))
    conn.execute(_query("job_staging_truncate", schema))
    with conn.cursor() as cur:
        with cur.copy(_query("job_staging_copy", schema)) as copy:
            for ord_, row in enumerate(rows, start=1):
                copy.write_row((ord_, *row))
        inserted = {r[0] for r in cur.execute(_query("job_insert_staged_many", schema), {"name": name})}
    conn.execute(_query("job_staging_truncate", schema))
    return inserted


def _insert_copied(conn: psycopg.Connection[Any], schema: str, data: bytes) -> bool:
    """COPY whole job rows (`_copy_rows`) straight into the job table, optimistically, inside a savepoint;
    return False when a row hit a policy index (the COPY was rolled back and nothing of it remains).

    No slot is checked before: on a table with many waiting jobs that read costs more than the COPY (and
    inside the fan-out's own transaction the planner has no statistics for the rows it just wrote). A slot
    already held, or taken by a concurrent fan-out meanwhile, fails the COPY with a unique violation.
    """
    try:
        with conn.transaction(), conn.cursor() as cur, cur.copy(_query("job_copy", schema)) as copy:
            copy.write(data)
    except psycopg.errors.UniqueViolation:
        return False
    return True


def _copied(rows: list[_Row], order: list[int], policy: str) -> list[_Row]:
    """The rows a direct COPY sends, in `order` (by slot, then batch order), like the INSERT paths: so
    overlapping fan-outs lock slots in one order, and the ids grow. Under a dedup policy (short, stately,
    exclusive) only the first row of the batch for each slot (the others are the batch's own drops, as
    ON CONFLICT would make them); other policies have no index a new row can hit: every row."""
    if policy not in _DEDUP_POLICIES:
        return [rows[i] for i in order]
    sent: list[_Row] = []
    last: str | None = None
    for i in order:
        row = rows[i]
        slot = row[4] or ""
        if slot != last:
            sent.append(row)
            last = slot
    return sent


_COPY_FIELDS: Final = struct.pack(">h", 18)
_uuid_field: Final = struct.Struct(">i16s").pack


def _copy_rows(name: str, settings: _QueueSettings, rows: list[_Row]) -> bytes:
    """The rows as `job_copy` reads them (PostgreSQL's binary COPY format), built the way pg-boss's
    `insert()` builds a job: the queue's settings where the job sets none, state `created`, `keep_until`
    = start_after + retention.

    Rendered here, not by the driver, so it can run in the planning thread; binary, so the server parses
    no text (ids, timestamps, integers); the fields every row shares are rendered once."""
    retention = timedelta(seconds=settings.retention_seconds) // MICROSECOND
    name_field = text_field(name)
    state_field = text_field("created")
    created_on = timestamp_field(8, microseconds(settings.now))
    backoff = b"\x00\x00\x00\x01" + (b"\x01" if settings.retry_backoff else b"\x00")
    tail = (
        text_field(settings.policy)
        + (NULL if settings.dead_letter is None else text_field(settings.dead_letter))
        + int_field(settings.heartbeat_seconds)
    )
    middles: dict[tuple[int | None, int | None, int | None], bytes] = {}
    out = [SIGNATURE]
    try:
        for job_id, data, priority, start_after, key, own_limit, own_delay, own_expire in rows:
            middle = middles.get((own_limit, own_delay, own_expire))
            if middle is None:
                middle = middles[(own_limit, own_delay, own_expire)] = b"".join(
                    (
                        int_field(settings.retry_limit if own_limit is None else own_limit),
                        int_field(settings.retry_delay if own_delay is None else own_delay),
                        backoff,
                        int_field(settings.retry_delay_max),
                        int_field(settings.expire_seconds if own_expire is None else own_expire),
                        int_field(settings.deletion_seconds),
                    )
                )
            start = microseconds(start_after)
            out.append(
                b"".join(
                    (
                        _COPY_FIELDS,
                        _uuid_field(16, bytes.fromhex(job_id.replace("-", ""))),
                        name_field,
                        jsonb_field(data),
                        int4_field(4, priority),
                        state_field,
                        timestamp_field(8, start),
                        created_on,
                        NULL if key is None else text_field(key),
                        middle,
                        timestamp_field(8, start + retention),
                        tail,
                    )
                )
            )
    except struct.error as exc:
        raise PlanError(
            f'Queue "{name}": a job setting is outside PostgreSQL\'s integer range ({exc}).'
        ) from exc
    except UnicodeEncodeError as exc:
        raise PlanError(
            f'Queue "{name}": a payload or singleton key is not valid Unicode text ({exc}).'
        ) from exc
    out.append(TRAILER)
    return b"".join(out)


def _holders(
    conn: psycopg.Connection[Any], schema: str, name: str, policy: str, slots: set[str]
) -> dict[str, tuple[str, str]]:
    """slot → (holder id, holder state), found with the same predicate as the policy's unique index."""
    if not slots or policy not in _DEDUP_POLICIES:
        return {}
    statement = "job_holder_live_many" if policy in _LIVE_SLOT_POLICIES else "job_holder_created_many"
    # The slots travel as one JSON text: far cheaper to send than a text[] of thousands.
    params = {"slots": json.dumps(sorted(slots)), "name": name, "policy": policy}
    # Never prepared: a generic plan cannot match the policy's partial index against a bound policy and
    # falls back to a nested loop over the queue's jobs per slot (10 s per 5k-slot chunk was measured).
    rows = conn.execute(_query(statement, schema), params, prepare=False)
    return {slot: (id_, state) for slot, id_, state in rows}


def _conflict(job: JobSpec, policy: str, holder: tuple[str, str] | None) -> Dropped:
    return Dropped(
        key=job.key,
        reason=DropReason.POLICY_CONFLICT,
        singleton_key=job.singleton_key,
        policy=policy,
        holder_id=holder[0] if holder else None,
        holder_state=holder[1] if holder else None,
    )
