"""A tiny procrastinate app whose tasks record each job they run, for tests that drive a real worker.

Run a worker with `procrastinate --app=tests.interop.procrastinate_app.app worker --one-shot` from the
repository root, with `INTEROP_PROCRASTINATE_DSN` naming the database. Each task inserts one row into
`interop_done` (see `DONE_TABLE`), which the test database must have; `ran_at` is the database clock, the
same clock procrastinate compares `scheduled_at` with.
"""

from __future__ import annotations

import os
from typing import Any

import procrastinate
import psycopg
from psycopg.types.json import Jsonb

DSN_ENV = "INTEROP_PROCRASTINATE_DSN"

DONE_TABLE = """
CREATE TABLE interop_done (
    job_id bigint NOT NULL,
    task text NOT NULL,
    args jsonb NOT NULL,
    ran_at timestamptz NOT NULL DEFAULT clock_timestamp()
)
"""

RECORD = "INSERT INTO interop_done (job_id, task, args) VALUES (%(job_id)s, %(task)s, %(args)s)"

app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=os.environ.get(DSN_ENV, "")))


@app.task(name="interop.record", pass_context=True)
async def record(context: procrastinate.JobContext, /, **kwargs: Any) -> None:
    """Async task: record the job through the worker's own connector."""
    job = context.job
    await context.app.connector.execute_query_async(RECORD, job_id=job.id, task=job.task_name, args=kwargs)


@app.task(name="interop.record_sync", pass_context=True)
def record_sync(context: procrastinate.JobContext, /, **kwargs: Any) -> None:
    """Sync task (run in a thread by the worker): record the job on a connection of its own."""
    job = context.job
    with psycopg.connect(os.environ[DSN_ENV]) as conn:
        conn.execute(RECORD, {"job_id": job.id, "task": job.task_name, "args": Jsonb(kwargs)})
