"""The port every queue-system adapter implements: one narrow Protocol, frozen values in and out.

Contract, for every method:
- The caller owns the connection and the transaction. No method commits, rolls back, or opens another
  connection; `enqueue_many` runs inside the caller's transaction so a tick's ledger claim and its jobs
  commit together (or not at all).
- Driver errors are translated once, here in the adapter, into `scheduler.errors` exceptions with the
  original as `__cause__`: `SchemaMismatch`, `QueueMissing`, `BackendError`.
- Results are exact: `enqueue_many` and `predict_many` return one outcome per job of the batch, in the
  batch's order, so `accepted + dropped == planned` always holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import psycopg

    from scheduler.planning.rows import RowLimits
    from scheduler.types import BackendKind, Batch, ChunkResult, QueueInfo, QueueRef


class StreamRefused(Exception):
    """A `ChunkStream`'s statement was refused as a whole (a slot was already held): nothing it wrote
    remains once the caller rolls back to a savepoint taken before the stream's first write, and the
    results it returned are void."""


class ChunkStream(Protocol):
    """One bulk statement kept open across a fan-out's chunks (one COPY into the job table), for the queues
    it `serves` (those of one schema).

    `write` returns each chunk's results at once, as they will be if the statement lands: every job
    written is accepted, and repeats of a slot within a chunk are dropped naming the chunk's first job of
    that slot. `close` ends the statement: it raises `StreamRefused` when the statement failed as a whole,
    and then every result `write` returned is void (the caller rolls back to a savepoint taken before the
    first write and does the fan-out again without a stream). While a stream's statement is open its
    connection runs nothing else: another stream of the fan-out writes with `spool` meanwhile, keeping
    its rows (in memory, then a temporary file) and sending them when its own statement starts (at its
    next write without `spool`, or at `close`). After a `close` that did not raise, a write starts a new
    statement.
    """

    def serves(self, queue: QueueRef) -> bool:
        """Whether this stream writes `queue`'s rows (when a chunk of it is accepted)."""
        ...

    def accepts(self, queue: QueueRef, prepared: object | None) -> bool:
        """Whether this chunk (of `queue`, as its backend's `preparer` encoded it) can go into this stream."""
        ...

    def write(self, batch: Batch, prepared: object, *, spool: bool = False) -> ChunkResult:
        """Send the batch (encoded as `prepared`) into the statement, or with `spool` keep it without touching
        the connection; return its results if the statement lands."""
        ...

    def close(self) -> None:
        """End the statement, first starting it when rows were only spooled (no-op if nothing was written).
        Raises `StreamRefused` or `BackendError`."""
        ...

    def abort(self, error: BaseException) -> None:
        """End the statement because of `error`, which the caller raises (the transaction is then aborted),
        and drop what was spooled."""
        ...


class Backend(Protocol):
    """An adapter for one queue system's tables (pg-boss 12, procrastinate 3)."""

    kind: BackendKind
    stream_needs_total: bool
    """Whether `open_stream` needs `expected` (the fan-out then counts its cohort first to give it)."""

    def check_schema(self, conn: psycopg.Connection[Any], queue: QueueRef) -> str:
        """Check that the queue system's tables are a version we support; return the version found.

        Raises `SchemaMismatch` naming the version (or the missing table, column, index) found and the
        versions supported. Reads only.
        """
        ...

    def describe_queue(self, conn: psycopg.Connection[Any], queue: QueueRef) -> QueueInfo:
        """Read the live queue: exists?, policy, retry/expiry settings, notify, schema version. Reads only.

        A queue that does not exist is `QueueInfo(exists=False)`, not an exception.
        """
        ...

    def ensure_queue(self, conn: psycopg.Connection[Any], queue: QueueRef) -> QueueInfo:
        """Create the queue if it is missing and `queue.create_missing` is set (pg-boss: `create_queue` with
        the declared policy, under pg-boss's own create-queue advisory lock). Returns the live queue.

        Raises `QueueMissing` when the queue does not exist and may not be created.
        """
        ...

    def row_limits(self, queue: QueueRef) -> RowLimits:
        """What a row of `queue` may hold beyond plain text and JSON (the longest singleton key its unique
        index takes, whether payload keys must be text): facts about the queue system's schema, measured
        against the real one, with no database. A fan-out drops a job past them as `invalid_row`
        (`scheduler.planning.rows.check_row`) instead of sending a statement that fails as a whole."""
        ...

    def describe_new_queue(self, queue: QueueRef) -> QueueInfo:
        """What `ensure_queue` would make of `queue`, which does not exist yet and has `create_missing`,
        without the database: the queue as it would be created (`exists` False: it is not there yet; the
        declared policy). Raises what `ensure_queue` would raise (`QueueMissing`: this backend creates no
        queue; `ConfigError`: a declared policy it does not know). A dry run calls it instead."""
        ...

    def predict_new_many(self, batch: Batch, placed: set[str]) -> ChunkResult:
        """What `enqueue_many` would return for this batch in a queue `describe_new_queue` described: the
        queue is created empty with its declared policy, so only the prediction's own jobs (`placed`, which
        this method extends) can hold a slot. No database. Raises what `enqueue_many` would (`PlanError`:
        a policy that needs a singleton key on every job)."""
        ...

    def preparer(
        self, conn: psycopg.Connection[Any], queue: QueueRef, *, dry: bool = False, keyed: bool = True
    ) -> Callable[[Batch], object]:
        """Read once, for a whole fan-out into `queue`, what encoding its chunks needs (the live queue's
        settings), and return a function that encodes one batch for `enqueue_many(..., prepared=)` (with
        `dry`: that checks one batch for `predict_many(..., prepared=)`). Reads only. `keyed` False: no job of
        the fan-out has a singleton key (a backend may then skip reading which keys are held).

        The function must not touch the database or any state the enqueue mutates unlocked: a fan-out
        calls it from its planning thread, so chunk N+1 is encoded while the database writes chunk N. It
        raises what `enqueue_many` would raise for a bad batch (`PlanError`). Raises `QueueMissing`.
        """
        ...

    def enqueue_many(
        self, conn: psycopg.Connection[Any], batch: Batch, prepared: object | None = None
    ) -> ChunkResult:
        """Insert the batch with one bulk statement (or one COPY; a COPY refused by a held slot is rolled
        back to a savepoint and replaced by COPY to a staging table + one INSERT), inside the caller's
        transaction, and return one outcome per job in order.

        The caller guarantees the queue exists (checked with `describe_queue`/`ensure_queue`) and that no
        two jobs of the tick share a non-null `singleton_key` (it reports those as `duplicate_in_cohort`
        itself). Jobs with no singleton key may still collide with each other under a one-per-key policy:
        those are `policy_conflict`, naming the job that holds the slot.

        Dropped jobs name their reason (`policy_conflict` with policy, holder id and holder state, or
        `throttled`). Raises `BackendError` if the database rejects the statement.

        `prepared` is what this backend's `preparer` function returned for this very batch; without it
        the batch is encoded here.
        """
        ...

    def open_stream(
        self, conn: psycopg.Connection[Any], queue: QueueRef, expected: int | None = None
    ) -> ChunkStream | None:
        """A stream that writes this fan-out's chunks for `queue` (and for the other queues it `serves`) as
        one statement, or None when this backend has none (or needs `expected` and it is None). `expected`:
        at most this many jobs are written in the fan-out (None: unknown). Called before the fan-out's first
        chunk, while the connection is free: it may run statements then (procrastinate takes its ids)."""
        ...

    def predict_many(
        self,
        conn: psycopg.Connection[Any],
        batch: Batch,
        placed: set[str],
        prepared: object | None = None,
    ) -> ChunkResult:
        """What `enqueue_many` would return for this batch, without writing anything (`prepared`: what
        `preparer(..., dry=True)`'s function returned for this batch).

        `placed` carries the slots (backend-normalized keys) that earlier batches of the same prediction
        would have taken; this method adds the slots its accepted jobs would take (it mutates `placed`).
        Accepted outcomes carry a job id of `""` (no id exists yet).
        """
        ...

    def waiting_keys(
        self, conn: psycopg.Connection[Any], queue: QueueRef, keys: Sequence[str]
    ) -> dict[str, str]:
        """For each of `keys` (singleton keys) that a job waiting to run already holds, that job's id: pg-boss
        jobs of `queue` in state created or retry (any policy, `standard` included, which has no unique index
        to refuse a second one); procrastinate `todo` jobs with that queueing_lock (in any queue: the lock is
        global). One bounded read, inside the caller's transaction; keys held by no waiting job are absent.

        A watcher calls it before re-emitting, so an entity whose job still waits is `already_queued`, not
        queued twice. Raises `BackendError` if the database rejects the statement.
        """
        ...

    def after_commit(self, conn: psycopg.Connection[Any], queue: QueueRef, info: QueueInfo) -> None:
        """Wake listeners after the transaction committed (pg-boss `notify` queues); a no-op elsewhere."""
        ...
