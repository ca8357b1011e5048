"""`scheduler bench-pool --backend procrastinate` against procrastinate's real schema.

As for pg-boss: 600 ms of server time per transaction and a 50 ms acquire timeout make the small pool time
out by construction, and a warm pool as large as the burst never makes anyone wait. No timing assertions.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg

from scheduler.benchpool import QUEUE_PREFIX
from scheduler.cli import main
from tests.integration.procrastinate.conftest import batch, spec

if TYPE_CHECKING:
    import pytest

    from scheduler.backends.procrastinate import ProcrastinateBackend

BURST = 30


def _jobs(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT id, queue_name, task_name, status, args, scheduled_at FROM procrastinate_jobs ORDER BY id"
        ).fetchall()


def test_bench_pool_on_procrastinate(
    queue_dsn: str, backend: ProcrastinateBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    """Timeouts at pool 2, none at pool 30, one connection in bulk; scratch jobs deleted, real ones kept."""
    with psycopg.connect(queue_dsn) as conn:
        backend.enqueue_many(conn, batch(spec("real-1", start_after=datetime.now(UTC) + timedelta(hours=1))))
    before = _jobs(queue_dsn)
    assert len(before) == 1

    code = main(
        [
            *("bench-pool", "--backend", "procrastinate", "--burst", str(BURST), "--pool", "2,30"),
            *("--acquire-timeout", "50ms", "--work-ms", "600", "--dsn", queue_dsn, "--json", "--quiet"),
        ]
    )

    out, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(out)
    assert report["backend"] == "procrastinate"
    assert report["cleaned_up"] is True
    assert report["leftover_jobs"] == 0
    small, big, bulk = report["rounds"]
    for r in (small, big, bulk):
        assert r["errors"] == 0, r["error_samples"]
        assert r["ok"] + r["timeouts"] == BURST
        assert r["jobs_written"] == r["ok"]
    assert small["pool_size"] == 2
    assert small["timeouts"] > 0
    assert small["peak_in_use"] <= 2
    assert big["pool_size"] == 30
    assert big["timeouts"] == 0
    assert (bulk["mode"], bulk["ok"], bulk["peak_in_use"], bulk["connections_used"]) == ("bulk", BURST, 1, 1)
    assert bulk["server_connections"] == 1

    assert _jobs(queue_dsn) == before
    with psycopg.connect(queue_dsn) as conn:
        left = conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE queue_name LIKE %s", [f"{QUEUE_PREFIX}%"]
        ).fetchone()
    assert left == (0,)


def test_bench_pool_without_procrastinate_schema(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    """An empty database: exit 1 with the fix (apply procrastinate's schema)."""
    code = main(
        ["bench-pool", "--backend", "procrastinate", "--burst", "2", "--pool", "1", "--dsn", database]
    )

    _, err = capsys.readouterr()
    assert code == 1
    assert "procrastinate_jobs not found" in err
    assert "procrastinate schema --read" in err
