"""Fixtures for `scheduler run` in subprocesses: a procrastinate queue database (schema applied by
procrastinate itself), a schedule file, and a launcher that starts replicas on a fast, shared clock.

The clock: `SCHEDULER_TEST_CLOCK_SPEED=60` makes one real second one minute of schedule time, so a
`* * * * *` schedule ticks every second; every replica gets the same `SCHEDULER_TEST_CLOCK_ANCHOR`, so
they agree on the time. Every process is killed at teardown.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import psycopg
import pytest

if TYPE_CHECKING:
    from datetime import datetime

REPO = Path(__file__).resolve().parents[2]
SPEED = 60.0
"""Schedule time runs 60 times faster: one tick of `* * * * *` per real second."""
WAIT_SECONDS = 20.0
"""Upper bound of any wait for a log line or a ledger state."""

SCHEDULE_YAML = """\
version: 1
databases:
  queue: {{ dsn_env: ACCEPTANCE_QUEUE_URL }}
queues:
  work: {{ name: work, backend: procrastinate, database: queue, task: demo.work }}
schedules:
  every-minute:
    cron: "* * * * *"
    cohort:
      database: queue
      static:
        - {{ key: a }}
        - {{ key: b }}
        - {{ key: c }}
    queue: work
    catch_up: {{ window: {window}, policy: all }}
"""
COHORT = 3


def write_config(directory: Path, window: str = "5m") -> Path:
    path = directory / "schedules.yaml"
    path.write_text(SCHEDULE_YAML.format(window=window))
    return path


@dataclass
class Replica:
    """One `scheduler run` process and the lines it logged so far (read by a thread)."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def wait_for(self, pattern: str, timeout: float = WAIT_SECONDS) -> re.Match[str]:
        """The first logged line matching `pattern`; fails the test after `timeout`."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    found = regex.search(line)
                    if found:
                        return found
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._more_expected()):
                    raise AssertionError(f"no line matching {pattern!r}; got:\n" + "\n".join(self.lines))
                self._cond.wait(min(left, 0.2))

    def _more_expected(self) -> bool:
        return False

    def text(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM, then wait; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=15)


Launch = Callable[..., Replica]


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launch]:
    """Factory: `launch(config, queue_dsn, anchor, **env) -> Replica`; every replica is killed at teardown."""
    started: list[Replica] = []
    threads: list[threading.Thread] = []

    def start(config: Path, queue_dsn: str, anchor: float, **env: str) -> Replica:
        environ = {
            **os.environ,
            "ACCEPTANCE_QUEUE_URL": queue_dsn,
            "SCHEDULER_TEST_CLOCK_SPEED": str(SPEED),
            "SCHEDULER_TEST_CLOCK_ANCHOR": repr(anchor),
            "SCHEDULER_CATCH_UP_POLL": "0.3s",
            "SCHEDULER_HEALTH_PORT": "0",
            "SCHEDULER_HEALTH_HOST": "127.0.0.1",
            "SCHEDULER_RETRY_BACKOFF": "1s",
            "SCHEDULER_GRACE_PERIOD": "10s",
            "SCHEDULER_LOG_LEVEL": "debug",
            "SCHEDULER_REPLICA_ID": f"replica-{len(started) + 1}",
            **env,
        }
        environ.pop("SCHEDULER_CONFIG", None)
        environ.pop("SCHEDULER_SENTRY_DSN", None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "scheduler.cli", "run", str(config)],
            cwd=tmp_path,  # no stray .env from the repository
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        replica = Replica(proc)
        assert proc.stderr is not None
        thread = threading.Thread(target=replica._pump, args=(proc.stderr,), daemon=True)
        thread.start()
        started.append(replica)
        threads.append(thread)
        return replica

    yield start
    for replica in started:
        replica.kill()
    for thread in threads:
        thread.join(timeout=5)


def ledger(dsn: str) -> list[tuple[datetime, str, str | None, int]]:
    """The ledger's rows (tick, outcome, reason, accepted), oldest first."""
    with psycopg.connect(dsn) as conn:
        exists = conn.execute("SELECT to_regclass('scheduler.tick') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return []  # no replica has migrated the ledger yet
        return [
            (r[0], r[1], r[2], r[3])
            for r in conn.execute(
                "SELECT tick, outcome, reason, accepted FROM scheduler.tick ORDER BY tick"
            ).fetchall()
        ]


def jobs_per_tick(dsn: str) -> dict[datetime, int]:
    """How many jobs the queue holds per scheduled instant (no stagger: the tick)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT scheduled_at, count(*) FROM procrastinate_jobs WHERE queue_name = 'work' GROUP BY 1"
        ).fetchall()
    return {r[0]: r[1] for r in rows}


def wait_until(check: Callable[[], Any], timeout: float = WAIT_SECONDS, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def done_ticks(dsn: str) -> list[datetime]:
    return [t for t, outcome, _, _ in ledger(dsn) if outcome == "done"]


def assert_each_tick_once(dsn: str) -> None:
    """Ledger rows cover consecutive minutes without a gap; every done tick has exactly its cohort of jobs,
    and no job belongs to a tick that is not done.
    """
    rows = ledger(dsn)
    ticks = [r[0] for r in rows]
    assert ticks == sorted(set(ticks))
    assert all((b - a).total_seconds() == 60 for a, b in itertools.pairwise(ticks)), ticks
    done = {r[0] for r in rows if r[1] == "done"}
    assert jobs_per_tick(dsn) == dict.fromkeys(done, COHORT)
    assert all(r[3] == COHORT for r in rows if r[1] == "done")
