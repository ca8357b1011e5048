"""`scheduler run`'s health server under load, in a subprocess: probes never open database connections."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import psycopg

from tests.acceptance.conftest import wait_until, write_config
from tests.conftest import ADMIN_DSN

if TYPE_CHECKING:
    from pathlib import Path

    from tests.acceptance.conftest import Launch

_FLUSH_SECONDS = 1.5
"""Long enough for PostgreSQL's cumulative statistics to count the sessions that have ended."""


def _sessions(dsn: str) -> int:
    """Sessions ever established to the database of `dsn` (PostgreSQL's cumulative statistics), read from
    another database so that reading does not count."""
    name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        row = conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", (name,)).fetchone()
    assert row is not None
    return int(row[0])


def _replica_recorded(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT to_regclass('scheduler.replica') IS NOT NULL").fetchone()
        return bool(row and row[0] and conn.execute("SELECT 1 FROM scheduler.replica").fetchone())


def _readyz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as resp:
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as exc:  # 503 until the first check has finished
        return exc.code


def test_readyz_under_load_opens_no_connection(tmp_path: Path, queue_dsn: str, launch: Launch) -> None:
    """500 /readyz requests from 20 clients at once add no session to the queue database: requests read the
    background check's result (here checked once an hour), they never connect themselves."""
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace('"* * * * *"', '"0 0 1 1 *"'))  # no tick during the test
    replica = launch(
        config,
        queue_dsn,
        time.time(),
        SCHEDULER_READINESS_INTERVAL="1h",
        SCHEDULER_CATCH_UP_POLL="1h",
        SCHEDULER_LOG_LEVEL="info",
    )
    port = int(replica.wait_for(r"run_started .*health_port=(\d+)").group(1))
    wait_until(lambda: _readyz(port) == 200, what="the first readiness check")
    wait_until(lambda: _replica_recorded(queue_dsn), what="the first catch-up poll done")
    time.sleep(_FLUSH_SECONDS)
    before = _sessions(queue_dsn)
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(lambda _: _readyz(port), range(500)))
    time.sleep(_FLUSH_SECONDS)
    assert statuses == [200] * 500
    assert _sessions(queue_dsn) == before
    assert replica.stop() == 0
