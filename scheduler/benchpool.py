"""The pool-burst harness behind `scheduler bench-pool`: N concurrent single enqueues through a connection
pool of each size, against the same N jobs in one bulk statement on one connection.

It reproduces the third production incident: an app enqueuing a cohort with one `send()` per job fires N
concurrent requests at its pool; each holds a connection for a round trip, the rest wait in the pool's
queue, and those that wait longer than the acquire timeout fail. Every round here is measured, never
assumed:

- `ok`: jobs the backend reported accepted (and the job count in the scratch queue is read back from the
  server after the round, as `jobs_written`);
- `timeouts`: `psycopg_pool.PoolTimeout` while acquiring a connection;
- `errors`: any other exception (the first few messages are kept);
- `wall_ms`: from releasing the burst to the last job finishing;
- `peak_in_use`: most connections checked out at once (counted by the harness around each checkout);
- `connections_used`: distinct server backends (PIDs) that inserted a job;
- `server_connections`: most sessions PostgreSQL showed in `pg_stat_activity` with the round's
  `application_name` (sampled every few milliseconds, and once more before the round's connections close).

All jobs go to a scratch queue created for the run (pg-boss: `create_queue('scheduler-bench-<random>')`,
removed with pg-boss's own `delete_queue` at the end, even on error; procrastinate: a unique `queue_name`
whose jobs are deleted at the end). Jobs start a day from now so no worker picks one up meanwhile. Nothing
else is read or written, except `pg_stat_activity`.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal, TextIO

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from scheduler.backends.pgboss.adapter import DEFAULT_SCHEMA as PGBOSS_SCHEMA
from scheduler.backends.pgboss.adapter import PGBOSS_VERSION, PgBossBackend
from scheduler.backends.procrastinate.adapter import ProcrastinateBackend
from scheduler.errors import SchedulerError
from scheduler.types import Accepted, BackendKind, Batch, JobSpec, QueueRef

DSN_ENV: Final = "QUEUE_DATABASE_URL"
"""The environment variable bench-pool reads the queue database's DSN from when --dsn is not given."""

if TYPE_CHECKING:
    from scheduler.backends.base import Backend

QUEUE_PREFIX: Final = "scheduler-bench-"
"""Scratch queues (and application names) start with this; nothing else is touched."""
TASK_NAME: Final = "scheduler.bench_pool"
"""procrastinate: the task name of scratch jobs (no worker needs to know it: the jobs are deleted)."""
START_DELAY: Final = timedelta(days=1)
"""Scratch jobs start this far in the future, so no worker takes one before the run deletes it."""
MONITOR_INTERVAL_SECONDS: Final = 0.005
POOL_OPEN_TIMEOUT_SECONDS: Final = 30.0
ERROR_SAMPLES: Final = 5

Mode = Literal["pool", "bulk"]


class BenchSetupError(SchedulerError):
    """The run could not start (no queue schema, unreachable database, pool not opened); says how to fix."""


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """What to measure."""

    dsn: str = field(repr=False)  # may hold a password
    backend: BackendKind
    burst: int
    pools: tuple[int, ...]
    acquire_timeout: float
    """Seconds a single enqueue waits for a pool connection before `PoolTimeout`."""
    work_ms: int = 0
    """Server-side time each transaction holds its connection (`pg_sleep`), standing in for the network
    round trip of a real app's `send()`; the bulk path pays it once, for its one transaction."""
    schema: str | None = None
    """The queue system's schema (pg-boss default `pgboss`; procrastinate: the search_path's)."""


@dataclass(slots=True)
class RoundResult:
    """The measurements of one burst."""

    mode: Mode
    pool_size: int | None
    """The pool's max_size (None for the bulk path, which uses one plain connection)."""
    burst: int
    ok: int = 0
    timeouts: int = 0
    errors: int = 0
    wall_ms: float = 0.0
    peak_in_use: int = 0
    connections_used: int = 0
    server_connections: int = 0
    jobs_written: int = 0
    """Jobs the scratch queue gained during the round, counted on the server afterwards."""
    error_samples: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return "bulk (1 conn)" if self.mode == "bulk" else f"pool {self.pool_size}"

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "pool_size": self.pool_size,
            "burst": self.burst,
            "ok": self.ok,
            "timeouts": self.timeouts,
            "errors": self.errors,
            "wall_ms": round(self.wall_ms, 1),
            "peak_in_use": self.peak_in_use,
            "connections_used": self.connections_used,
            "server_connections": self.server_connections,
            "jobs_written": self.jobs_written,
            "error_samples": list(self.error_samples),
        }


@dataclass(slots=True)
class BenchReport:
    """Every round of one run, and whether the scratch queue was removed."""

    config: BenchConfig
    queue: str
    rounds: list[RoundResult] = field(default_factory=list)
    cleaned_up: bool = False
    leftover_jobs: int | None = None

    def to_json(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "backend": cfg.backend.value,
            "scratch_queue": self.queue,
            "burst": cfg.burst,
            "pools": list(cfg.pools),
            "acquire_timeout_seconds": cfg.acquire_timeout,
            "work_ms": cfg.work_ms,
            "rounds": [r.to_json() for r in self.rounds],
            "cleaned_up": self.cleaned_up,
            "leftover_jobs": self.leftover_jobs,
        }


Progress = Callable[[str], None]


def run_bench(config: BenchConfig, progress: Progress | None = None) -> BenchReport:
    """Create the scratch queue, run one burst per pool size and one bulk burst, remove the queue.

    Raises `BenchSetupError` when the run cannot start (nothing is left behind then either).
    """
    say = progress or (lambda _message: None)
    run_id = secrets.token_hex(4)
    backend: Backend = PgBossBackend() if config.backend is BackendKind.PGBOSS else ProcrastinateBackend()
    queue = QueueRef(
        logical="bench",
        name=f"{QUEUE_PREFIX}{run_id}",
        backend=config.backend,
        database="queue",
        policy="standard" if config.backend is BackendKind.PGBOSS else None,
        task=TASK_NAME if config.backend is BackendKind.PROCRASTINATE else None,
        schema=config.schema,
        create_missing=True,
        dsn_env=DSN_ENV,
    )
    report = BenchReport(config=config, queue=queue.name)
    with _control(config.dsn, run_id) as control:
        _create_queue(control, backend, queue)
        say(f"scratch queue {queue.name} created")
        try:
            jobs = _jobs(config.burst, run_id)
            for size in config.pools:
                say(f"pool {size}: {config.burst} concurrent single enqueues…")
                before = _count_jobs(control, queue)
                result = _pool_round(config, backend, queue, jobs, size, f"{queue.name}-pool{size}")
                result.jobs_written = _count_jobs(control, queue) - before
                report.rounds.append(result)
                say(f"pool {size}: {_summary(result)}")
            say(f"bulk: {config.burst} jobs in one enqueue_many on one connection…")
            before = _count_jobs(control, queue)
            result = _bulk_round(config, backend, queue, jobs, f"{queue.name}-bulk")
            result.jobs_written = _count_jobs(control, queue) - before
            report.rounds.append(result)
            say(f"bulk: {_summary(result)}")
        finally:
            report.leftover_jobs = _drop_queue(control, queue)
            report.cleaned_up = report.leftover_jobs == 0 and not _queue_exists(control, queue)
            say(f"scratch queue {queue.name} removed" if report.cleaned_up else "scratch queue NOT removed")
    return report


def _summary(r: RoundResult) -> str:
    return (
        f"ok {r.ok}, timeouts {r.timeouts}, errors {r.errors}, {r.wall_ms:.0f} ms, "
        f"peak {r.peak_in_use} in use"
    )


def _jobs(burst: int, run_id: str) -> tuple[JobSpec, ...]:
    start = datetime.now(UTC) + START_DELAY
    return tuple(
        JobSpec(key=f"bench-{i}", singleton_key=None, data={"bench": run_id, "i": i}, start_after=start)
        for i in range(burst)
    )


# -- rounds ---------------------------------------------------------------------------------------------


class _Tracker:
    """Counts outcomes and connections in use across the burst's threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.in_use = 0
        self.peak = 0
        self.pids: set[int] = set()
        self.ok = 0
        self.timeouts = 0
        self.errors = 0
        self.samples: list[str] = []

    def acquired(self, pid: int) -> None:
        with self._lock:
            self.in_use += 1
            self.peak = max(self.peak, self.in_use)
            self.pids.add(pid)

    def released(self) -> None:
        with self._lock:
            self.in_use -= 1

    def accepted(self, n: int) -> None:
        with self._lock:
            self.ok += n

    def timed_out(self) -> None:
        with self._lock:
            self.timeouts += 1

    def failed(self, exc: BaseException, n: int = 1) -> None:
        message = f"{type(exc).__name__}: {str(exc).strip()}"
        with self._lock:
            self.errors += n
            if len(self.samples) < ERROR_SAMPLES and message not in self.samples:
                self.samples.append(message)


class _Monitor:
    """Samples how many sessions with one application_name PostgreSQL has, on its own connection."""

    def __init__(self, dsn: str, application_name: str) -> None:
        self.application_name = application_name
        self.peak = 0
        self._conn = psycopg.connect(dsn, autocommit=True, application_name=f"{QUEUE_PREFIX}monitor")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-monitor", daemon=True)

    def start(self) -> None:
        self._sample()
        self._thread.start()

    def stop(self) -> int:
        """Stop sampling, take one last sample (the round's connections must still be open), close."""
        self._stop.set()
        self._thread.join()
        try:
            self._sample()
        finally:
            self._conn.close()
        return self.peak

    def _loop(self) -> None:
        while not self._stop.wait(MONITOR_INTERVAL_SECONDS):
            self._sample()

    def _sample(self) -> None:
        row = self._conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [self.application_name]
        ).fetchone()
        self.peak = max(self.peak, int(row[0]) if row else 0)


def _pool_round(
    config: BenchConfig,
    backend: Backend,
    queue: QueueRef,
    jobs: tuple[JobSpec, ...],
    size: int,
    application_name: str,
) -> RoundResult:
    """One thread per job, each taking a connection from a warm pool of `size` and enqueuing its job."""
    pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] = ConnectionPool(
        config.dsn,
        min_size=size,
        max_size=size,
        timeout=config.acquire_timeout,
        kwargs={"application_name": application_name},
        open=False,
        name=application_name,
    )
    try:
        pool.open(wait=True, timeout=POOL_OPEN_TIMEOUT_SECONDS)
    except PoolTimeout as exc:
        pool.close()
        raise BenchSetupError(
            f"could not open {size} connections for the pool within {POOL_OPEN_TIMEOUT_SECONDS:.0f} s "
            f"(is max_connections on the server large enough?): {exc}"
        ) from exc
    tracker = _Tracker()
    gate = threading.Barrier(len(jobs) + 1)

    def one(job: JobSpec) -> None:
        gate.wait()
        try:
            with pool.connection() as conn:
                tracker.acquired(conn.info.backend_pid)
                try:
                    tracker.accepted(_enqueue(conn, backend, Batch(queue, (job,)), config.work_ms))
                finally:
                    tracker.released()
        except PoolTimeout:
            tracker.timed_out()
        except Exception as exc:
            tracker.failed(exc)

    try:
        monitor = _Monitor(config.dsn, application_name)
        monitor.start()
        threads = [threading.Thread(target=one, args=(job,), name=f"bench-{i}") for i, job in enumerate(jobs)]
        for t in threads:
            t.start()
        gate.wait()
        started = time.perf_counter()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        server = monitor.stop()
    finally:
        pool.close()
    return RoundResult(
        mode="pool",
        pool_size=size,
        burst=len(jobs),
        ok=tracker.ok,
        timeouts=tracker.timeouts,
        errors=tracker.errors,
        wall_ms=wall * 1000,
        peak_in_use=tracker.peak,
        connections_used=len(tracker.pids),
        server_connections=server,
        error_samples=tracker.samples,
    )


def _bulk_round(
    config: BenchConfig, backend: Backend, queue: QueueRef, jobs: tuple[JobSpec, ...], application_name: str
) -> RoundResult:
    """The same jobs through our path: one connection, one transaction, one `enqueue_many`."""
    tracker = _Tracker()
    with psycopg.connect(config.dsn, application_name=application_name) as conn:
        monitor = _Monitor(config.dsn, application_name)
        monitor.start()
        started = time.perf_counter()
        tracker.acquired(conn.info.backend_pid)
        try:
            tracker.accepted(_enqueue(conn, backend, Batch(queue, jobs), config.work_ms))
        except Exception as exc:
            tracker.failed(exc, n=len(jobs))
        finally:
            tracker.released()
        wall = time.perf_counter() - started
        server = monitor.stop()
    return RoundResult(
        mode="bulk",
        pool_size=None,
        burst=len(jobs),
        ok=tracker.ok,
        errors=tracker.errors,
        wall_ms=wall * 1000,
        peak_in_use=tracker.peak,
        connections_used=len(tracker.pids),
        server_connections=server,
        error_samples=tracker.samples,
    )


def _enqueue(conn: psycopg.Connection[Any], backend: Backend, batch: Batch, work_ms: int) -> int:
    """One transaction: the batch, then `work_ms` of server-side time; returns the accepted count."""
    with conn.transaction():
        result = backend.enqueue_many(conn, batch)
        if work_ms:
            conn.execute("SELECT pg_sleep(%s)", [work_ms / 1000])
    return sum(isinstance(o, Accepted) for o in result.outcomes)


# -- the scratch queue ----------------------------------------------------------------------------------


@contextmanager
def _control(dsn: str, run_id: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    try:
        conn = psycopg.connect(dsn, autocommit=True, application_name=f"{QUEUE_PREFIX}{run_id}-control")
    except psycopg.Error as exc:
        raise BenchSetupError(f"cannot connect to the queue database: {str(exc).strip()}") from exc
    with conn:
        yield conn


def _create_queue(conn: psycopg.Connection[Any], backend: Backend, queue: QueueRef) -> None:
    try:
        with conn.transaction():
            backend.ensure_queue(conn, queue)
    except SchedulerError as exc:
        system = f"pg-boss {PGBOSS_VERSION}" if queue.backend is BackendKind.PGBOSS else "procrastinate"
        fix = (
            f"bench-pool needs {system}'s schema in the target database: run the command above (with the "
            f"DSN you pass to --dsn in ${DSN_ENV}), or pass --dsn of a database where it is installed."
        )
        raise BenchSetupError(f"{exc}\n{fix}") from exc


def _jobs_table(queue: QueueRef) -> tuple[sql.Composable, sql.Composable]:
    """(table, queue-name column) holding the queue's jobs."""
    if queue.backend is BackendKind.PGBOSS:
        return sql.Identifier(queue.schema or PGBOSS_SCHEMA, "job"), sql.Identifier("name")
    table = (
        sql.Identifier(queue.schema, "procrastinate_jobs")
        if queue.schema
        else sql.Identifier("procrastinate_jobs")
    )
    return table, sql.Identifier("queue_name")


def _count_jobs(conn: psycopg.Connection[Any], queue: QueueRef) -> int:
    table, column = _jobs_table(queue)
    query = sql.SQL("SELECT count(*) FROM {} WHERE {} = %s").format(table, column)
    row = conn.execute(query, [queue.name]).fetchone()
    return int(row[0]) if row else 0


def _queue_exists(conn: psycopg.Connection[Any], queue: QueueRef) -> bool:
    if queue.backend is not BackendKind.PGBOSS:
        return False  # a procrastinate queue is only a name on job rows
    query = sql.SQL("SELECT 1 FROM {} WHERE name = %s").format(
        sql.Identifier(queue.schema or PGBOSS_SCHEMA, "queue")
    )
    return conn.execute(query, [queue.name]).fetchone() is not None


def _drop_queue(conn: psycopg.Connection[Any], queue: QueueRef) -> int:
    """Remove the scratch queue and its jobs; return how many of its jobs are left (0 when clean)."""
    if not queue.name.startswith(QUEUE_PREFIX):  # pragma: no cover - a guard, never a real queue
        raise AssertionError(f"refusing to drop {queue.name!r}: not a scratch queue")
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.rollback()
    if queue.backend is BackendKind.PGBOSS:
        schema = sql.Identifier(queue.schema or PGBOSS_SCHEMA)
        conn.execute(sql.SQL("SELECT {}.delete_queue(%s)").format(schema), [queue.name])
    else:
        table, column = _jobs_table(queue)
        conn.execute(sql.SQL("DELETE FROM {} WHERE {} = %s").format(table, column), [queue.name])
    return _count_jobs(conn, queue)


def format_table(report: BenchReport, out: TextIO) -> None:
    """The rounds side by side, then a one-paragraph summary."""
    cfg = report.config
    print(
        f"burst of {cfg.burst} jobs, {cfg.backend.value}, acquire timeout {cfg.acquire_timeout:g} s, "
        f"work {cfg.work_ms} ms per transaction (scratch queue {report.queue})",
        file=out,
    )
    header = ("", "ok", "timeouts", "errors", "wall ms", "peak in use", "backends", "server conns")
    rows = [
        (
            r.label,
            str(r.ok),
            str(r.timeouts),
            str(r.errors),
            f"{r.wall_ms:.0f}",
            str(r.peak_in_use),
            str(r.connections_used),
            str(r.server_connections),
        )
        for r in report.rounds
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        print("  ".join(cells).rstrip(), file=out)
    for r in report.rounds:
        for sample in r.error_samples:
            print(f"  {r.label} error: {sample}", file=out)
    print(file=out)
    print(_conclusion(report), file=out)


def _conclusion(report: BenchReport) -> str:
    pools = [r for r in report.rounds if r.mode == "pool"]
    bulk = next((r for r in report.rounds if r.mode == "bulk"), None)
    parts: list[str] = []
    starved = [r for r in pools if r.timeouts]
    if starved:
        shown = ", ".join(f"{r.timeouts} at pool {r.pool_size}" for r in starved)
        parts.append(f"single enqueues timed out waiting for a connection: {shown}.")
    clean = [r.pool_size for r in pools if not r.timeouts and not r.errors]
    if clean:
        parts.append(f"No timeout or error at pool {', '.join(str(s) for s in clean)}.")
    if bulk is not None:
        parts.append(
            f"The bulk path enqueued {bulk.ok} of {bulk.burst} on {bulk.connections_used} connection(s)"
            f" in {bulk.wall_ms:.0f} ms."
        )
    if not report.cleaned_up:
        parts.append(
            f"WARNING: scratch queue {report.queue} was not fully removed "
            f"({report.leftover_jobs} job(s) left); remove it by hand."
        )
    text = " ".join(parts)
    return text[:1].upper() + text[1:]
