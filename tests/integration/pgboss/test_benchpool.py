"""`scheduler bench-pool` against real pg-boss tables: structure of the measurements, scratch-queue hygiene.

Parameters are chosen so the outcome is structural, not a matter of timing: every transaction holds its
connection for 600 ms of server time and a waiter gives up after 50 ms, so at pool 2 only the two first
enqueues can get a connection before the others time out; at pool 30 (warm, = burst) nobody ever waits.
No assertion reads a wall-clock time.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

import scheduler.benchpool as benchpool
from scheduler.benchpool import QUEUE_PREFIX, BenchConfig, BenchSetupError, run_bench
from scheduler.cli import main
from scheduler.types import BackendKind, Batch
from tests.integration.pgboss.interop import WORKER_QUEUE, job, queue_ref

if TYPE_CHECKING:
    from scheduler.backends.pgboss import PgBossBackend

BURST = 30
ARGS = ["--burst", str(BURST), "--pool", "2,30", "--acquire-timeout", "50ms", "--work-ms", "600"]


def _snapshot(dsn: str) -> dict[str, Any]:
    """Every queue with its settings, and every job with its state: what the run must leave as it was."""
    with psycopg.connect(dsn) as conn:
        queues = conn.execute("SELECT name, policy, retry_limit FROM pgboss.queue ORDER BY name").fetchall()
        jobs = conn.execute("SELECT id, name, state, data FROM pgboss.job ORDER BY id").fetchall()
    return {"queues": queues, "jobs": jobs}


def _scratch_leftovers(dsn: str) -> tuple[int, int]:
    with psycopg.connect(dsn) as conn:
        queues = conn.execute(
            "SELECT count(*) FROM pgboss.queue WHERE name LIKE %s", [f"{QUEUE_PREFIX}%"]
        ).fetchone()
        jobs = conn.execute(
            "SELECT count(*) FROM pgboss.job WHERE name LIKE %s", [f"{QUEUE_PREFIX}%"]
        ).fetchone()
    assert queues is not None
    assert jobs is not None
    return int(queues[0]), int(jobs[0])


def test_bench_pool_measures_timeouts_at_the_small_pool_and_one_connection_in_bulk(
    pgboss_dsn: str, backend: PgBossBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    """Pool 2 times out, pool 30 does not, bulk uses one connection; the scratch queue is gone after."""
    with psycopg.connect(pgboss_dsn) as conn:  # a real job in a real queue, which must survive the run
        later = datetime.now(UTC) + timedelta(hours=1)
        backend.enqueue_many(conn, Batch(queue_ref(WORKER_QUEUE), (job("real-1", None, later),)))
    before = _snapshot(pgboss_dsn)

    code = main(["bench-pool", *ARGS, "--dsn", pgboss_dsn, "--json"])

    out, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(out)
    assert report["backend"] == "pgboss"
    assert report["scratch_queue"].startswith(QUEUE_PREFIX)
    assert report["burst"] == BURST
    assert report["pools"] == [2, 30]
    assert report["acquire_timeout_seconds"] == pytest.approx(0.05)
    assert report["work_ms"] == 600
    assert report["cleaned_up"] is True
    assert report["leftover_jobs"] == 0
    keys = {
        "mode", "pool_size", "burst", "ok", "timeouts", "errors", "wall_ms", "peak_in_use",
        "connections_used", "server_connections", "jobs_written", "error_samples",
    }  # fmt: skip
    small, big, bulk = report["rounds"]
    for r in (small, big, bulk):
        assert set(r) == keys
        assert r["errors"] == 0, r["error_samples"]
        assert r["ok"] + r["timeouts"] + r["errors"] == BURST
        assert r["jobs_written"] == r["ok"]  # what the server holds, not only what was reported
        assert isinstance(r["wall_ms"], float)

    assert (small["mode"], small["pool_size"]) == ("pool", 2)
    assert small["timeouts"] > 0
    assert small["peak_in_use"] <= 2
    assert small["connections_used"] <= 2
    assert small["server_connections"] <= 2

    assert (big["mode"], big["pool_size"]) == ("pool", 30)
    assert big["timeouts"] == 0
    assert big["ok"] == BURST

    assert (bulk["mode"], bulk["pool_size"]) == ("bulk", None)
    assert bulk["ok"] == BURST
    assert bulk["timeouts"] == 0
    assert bulk["peak_in_use"] == 1
    assert bulk["connections_used"] == 1
    assert bulk["server_connections"] == 1

    assert _scratch_leftovers(pgboss_dsn) == (0, 0)
    assert _snapshot(pgboss_dsn) == before
    assert "scratch queue" in err  # progress went to stderr


def test_bench_pool_prints_a_table_with_the_bulk_row(
    pgboss_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --json: one row per pool size and the bulk row, then the summary."""
    code = main(["bench-pool", "--burst", "4", "--pool", "1,4", "--dsn", pgboss_dsn, "--quiet"])

    out, err = capsys.readouterr()
    assert code == 0, err
    assert err == ""
    lines = out.splitlines()
    assert "timeouts" in lines[1]
    assert lines[2].startswith("pool 1 ")
    assert lines[3].startswith("pool 4 ")
    assert lines[4].startswith("bulk (1 conn) ")
    assert "The bulk path enqueued 4 of 4 on 1 connection(s)" in out
    assert _scratch_leftovers(pgboss_dsn) == (0, 0)


def test_bench_pool_removes_the_scratch_queue_when_a_round_fails(
    pgboss_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception in the middle of the run still deletes the scratch queue and its jobs."""

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(benchpool, "_bulk_round", broken)
    config = BenchConfig(dsn=pgboss_dsn, backend=BackendKind.PGBOSS, burst=3, pools=(3,), acquire_timeout=5)
    with pytest.raises(RuntimeError, match="boom"):
        run_bench(config)
    assert _scratch_leftovers(pgboss_dsn) == (0, 0)


def test_bench_pool_without_pgboss_schema_says_how_to_fix_it(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty database: exit 1, naming pg-boss's schema and how to create it; nothing is created."""
    code = main(["bench-pool", "--burst", "2", "--pool", "1", "--dsn", database, "--quiet"])

    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert 'pg-boss is not installed in schema "pgboss"' in err
    assert "bench-pool needs pg-boss 12.38.0's schema" in err
    assert '`npx --yes pg-boss@12.38.0 migrate --connection-string "$QUEUE_DATABASE_URL"`' in err
    with psycopg.connect(database) as conn:
        assert conn.execute("SELECT to_regnamespace('pgboss')").fetchone() == (None,)


def test_bench_pool_setup_error_type(database: str) -> None:
    """run_bench raises BenchSetupError (a SchedulerError) when the schema is absent."""
    config = BenchConfig(dsn=database, backend=BackendKind.PGBOSS, burst=1, pools=(1,), acquire_timeout=1)
    with pytest.raises(BenchSetupError):
        run_bench(config)
