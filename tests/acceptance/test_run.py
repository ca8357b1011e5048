"""`scheduler run` in subprocesses on a fast clock: replicas, crashes, catch-up, reload, readiness."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import datetime
from typing import TYPE_CHECKING

import psycopg

from tests.acceptance.conftest import (
    COHORT,
    assert_each_tick_once,
    done_ticks,
    jobs_per_tick,
    ledger,
    wait_until,
    write_config,
)
from tests.conftest import ADMIN_DSN

if TYPE_CHECKING:
    from pathlib import Path

    from tests.acceptance.conftest import Launch
    from tests.conftest import PrivatePostgres

TICK = r"tick=(\S+)"


def test_three_replicas_fan_out_each_tick_once(tmp_path: Path, queue_dsn: str, launch: Launch) -> None:
    """Three replicas on one config: every tick is in the ledger once and its jobs in the queue once."""
    config = write_config(tmp_path)
    anchor = time.time()
    replicas = [launch(config, queue_dsn, anchor) for _ in range(3)]
    wait_until(lambda: len(done_ticks(queue_dsn)) >= 6, what="six done ticks")
    assert [r.stop() for r in replicas] == [0, 0, 0]
    assert_each_tick_once(queue_dsn)
    assert {row[1] for row in ledger(queue_dsn)} == {"done"}


def test_replica_killed_before_commit_leaves_no_job(tmp_path: Path, queue_dsn: str, launch: Launch) -> None:
    """A replica SIGKILLed between claim and commit leaves no job of its tick; another replica then fans it
    out exactly once.
    """
    config = write_config(tmp_path, window="30m")
    anchor = time.time()
    paused = launch(config, queue_dsn, anchor, SCHEDULER_TEST_PAUSE_BEFORE_COMMIT="60")
    tick = datetime.fromisoformat(paused.wait_for(r"tick_paused_before_commit .*" + TICK).group(1))
    assert tick not in jobs_per_tick(queue_dsn)
    paused.kill()
    assert tick not in jobs_per_tick(queue_dsn)
    assert tick not in [row[0] for row in ledger(queue_dsn)]
    survivor = launch(config, queue_dsn, anchor)
    wait_until(lambda: tick in done_ticks(queue_dsn), what="the abandoned tick done")
    assert survivor.stop() == 0
    assert jobs_per_tick(queue_dsn)[tick] == COHORT
    assert_each_tick_once(queue_dsn)


def test_sigterm_finishes_tick_in_flight(tmp_path: Path, queue_dsn: str, launch: Launch) -> None:
    """SIGTERM during a fan-out lets it commit, then the process exits 0."""
    config = write_config(tmp_path)
    replica = launch(config, queue_dsn, time.time(), SCHEDULER_TEST_PAUSE_BEFORE_COMMIT="1.5")
    tick = datetime.fromisoformat(replica.wait_for(r"tick_paused_before_commit .*" + TICK).group(1))
    assert replica.stop() == 0
    assert jobs_per_tick(queue_dsn) == {tick: COHORT}
    assert done_ticks(queue_dsn) == [tick]


def test_restart_catches_up_inside_window_and_skips_older(
    tmp_path: Path, queue_dsn: str, launch: Launch
) -> None:
    """After every replica stopped across several ticks, one start fans out the missed ticks inside the
    window once each and records the older ones as skipped.
    """
    config = write_config(tmp_path, window="3m")
    anchor = time.time()
    first = launch(config, queue_dsn, anchor)
    wait_until(lambda: len(done_ticks(queue_dsn)) >= 2, what="two done ticks")
    assert first.stop() == 0
    last_done = done_ticks(queue_dsn)[-1]
    time.sleep(7)  # seven ticks of schedule time pass with no replica running
    second = launch(config, queue_dsn, anchor)
    second.wait_for(r"tick_skipped .*reason=too_old")
    wait_until(
        lambda: len([t for t in done_ticks(queue_dsn) if t > last_done]) >= 4,
        what="missed ticks fanned out",
    )
    assert second.stop() == 0
    rows = [row for row in ledger(queue_dsn) if row[0] > last_done]
    skipped = [row[0] for row in rows if row[1] == "skipped"]
    assert skipped
    assert {row[2] for row in rows if row[1] == "skipped"} == {"too_old"}
    assert all(row[1] == "done" for row in rows if row[0] > skipped[-1])
    assert_each_tick_once(queue_dsn)


def test_broken_yaml_on_reload_keeps_old_config(tmp_path: Path, queue_dsn: str, launch: Launch) -> None:
    """SIGHUP with a broken file logs the error at file:line and keeps fanning out with the old config."""
    config = write_config(tmp_path)
    replica = launch(config, queue_dsn, time.time())
    replica.wait_for(r"fanout_enqueued")
    config.write_text(config.read_text().replace('"* * * * *"', '"* * * *"'))
    replica.proc.send_signal(1)  # SIGHUP
    replica.wait_for(rf"config_invalid finding=.*{config.name}:8:11: CFG005 error")
    replica.wait_for(r"config_kept")
    seen = len(done_ticks(queue_dsn))
    wait_until(lambda: len(done_ticks(queue_dsn)) >= seen + 2, what="ticks after the failed reload")
    assert replica.stop() == 0
    assert_each_tick_once(queue_dsn)


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _body_if(status: int, got: tuple[int, str]) -> str | None:
    return got[1] if got[0] == status else None


def _allow_connections(dsn: str, allow: bool) -> None:
    name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(
            psycopg.sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
                psycopg.sql.Identifier(str(name)), psycopg.sql.Literal(allow)
            )
        )


def test_readyz_follows_database_reachability(tmp_path: Path, queue_dsn: str, launch: Launch) -> None:
    """/readyz is 503 while the queue database refuses connections and 200 again after (within a check
    interval: requests read the background check's latest result); /healthz stays 200."""
    replica = launch(write_config(tmp_path), queue_dsn, time.time(), SCHEDULER_READINESS_INTERVAL="0.2s")
    port = int(replica.wait_for(r"run_started .*health_port=(\d+)").group(1))
    wait_until(lambda: _get(port, "/readyz")[0] == 200, what="ready")
    _allow_connections(queue_dsn, False)
    try:
        body = wait_until(lambda: _body_if(503, _get(port, "/readyz")), what="unready")
        assert json.loads(body)["ready"] is False
        assert json.loads(body)["checks"]["queue"].startswith("unreachable: ")
        assert _get(port, "/healthz") == (200, "ok\n")
    finally:
        _allow_connections(queue_dsn, True)
    wait_until(lambda: _get(port, "/readyz")[0] == 200, what="ready again")
    wait_until(lambda: "scheduler_job_enqueued_total" in _get(port, "/metrics")[1], what="metrics")
    assert replica.stop() == 0


def test_postgres_restart_loses_and_duplicates_no_tick(
    tmp_path: Path, private_postgres: PrivatePostgres, private_queue_dsn: str, launch: Launch
) -> None:
    """PostgreSQL restarted under two running replicas: they reconnect and every tick is fanned out once.
    The restarted server is the test's private cluster; the shared one keeps running."""
    queue_dsn = private_queue_dsn
    shared_started = _postmaster_start_time(ADMIN_DSN)
    private_started = _postmaster_start_time(queue_dsn)
    config = write_config(tmp_path, window="30m")
    anchor = time.time()
    replicas = [launch(config, queue_dsn, anchor) for _ in range(2)]
    wait_until(lambda: len(done_ticks(queue_dsn)) >= 2, what="two done ticks")
    private_postgres.restart()
    assert _postmaster_start_time(queue_dsn) > private_started
    restarted_at = len(_safe_done(queue_dsn))
    wait_until(lambda: len(_safe_done(queue_dsn)) >= restarted_at + 3, what="ticks after the restart")
    assert [r.stop() for r in replicas] == [0, 0]
    assert_each_tick_once(queue_dsn)
    assert {row[1] for row in ledger(queue_dsn)} == {"done"}
    assert _postmaster_start_time(ADMIN_DSN) == shared_started


def _postmaster_start_time(dsn: str) -> datetime:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT pg_postmaster_start_time()").fetchone()
    assert row is not None
    started: datetime = row[0]
    return started


def _safe_done(dsn: str) -> list[datetime]:
    try:
        return done_ticks(dsn)
    except psycopg.OperationalError:
        return []
