"""Fixtures for the procrastinate backend: one template database per session whose schema procrastinate
applied itself, cloned for each test, plus helpers to build batches and to run a real worker.
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import procrastinate
import psycopg
import pytest

from scheduler.backends.procrastinate import ProcrastinateBackend
from scheduler.types import BackendKind, Batch, JobOptions, JobSpec, QueueRef
from tests.interop.procrastinate_app import DSN_ENV

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parents[3]
WORKER_TIMEOUT_SECONDS = 30

QUEUE = QueueRef(
    logical="records",
    name="interop",
    backend=BackendKind.PROCRASTINATE,
    database="queue",
    task="interop.record",
)


@contextmanager
def procrastinate_app(dsn: str) -> Iterator[procrastinate.App]:
    """A procrastinate App on a sync connector, open for the block: procrastinate's own API."""
    app = procrastinate.App(connector=procrastinate.SyncPsycopgConnector(conninfo=dsn))
    with app.open():
        yield app


@pytest.fixture
def conn(queue_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection to the clone, in transaction mode: the test commits what it wants to be seen."""
    with psycopg.connect(queue_dsn) as conn:
        yield conn


@pytest.fixture
def backend() -> ProcrastinateBackend:
    return ProcrastinateBackend()


def defer_holder(dsn: str, lock: str, queue: str = QUEUE.name, kwargs: dict[str, Any] | None = None) -> str:
    """Defer a todo job holding queueing lock `lock` through procrastinate's own API; return its id."""
    from procrastinate.jobs import Job

    with procrastinate_app(dsn) as app:
        job = app.job_manager.defer_job(
            Job(
                id=None,
                queue=queue,
                lock=None,
                queueing_lock=lock,
                task_name="interop.record",
                task_kwargs=kwargs or {},
            )
        )
    assert job.id is not None
    return str(job.id)


def spec(
    key: str,
    lock: str | None = None,
    data: Any = None,
    start_after: datetime | None = None,
    priority: int = 0,
) -> JobSpec:
    """A planned job for entity `key`; `lock` is its singleton key (procrastinate queueing_lock)."""
    return JobSpec(
        key=key,
        singleton_key=lock,
        data={"entity": key} if data is None else data,
        start_after=start_after or datetime.now(UTC),
        options=JobOptions(priority=priority),
    )


def batch(*jobs: JobSpec, queue: QueueRef = QUEUE) -> Batch:
    return Batch(queue=queue, jobs=jobs)


def run_worker_once(dsn: str) -> subprocess.CompletedProcess[str]:
    """Run the real procrastinate CLI worker in one-shot mode: it runs every due job, then exits."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",  # puts the cwd (the repository) on sys.path, so the app module imports
            "procrastinate",
            "--app=tests.interop.procrastinate_app.app",
            "worker",
            "--one-shot",
            "--concurrency=8",
        ],
        cwd=REPO,
        env={**os.environ, DSN_ENV: dsn},
        capture_output=True,
        text=True,
        timeout=WORKER_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result
