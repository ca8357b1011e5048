"""The backend's stream (one COPY for a fan-out's chunks, ids taken first) reports what `enqueue_many` does,
chunk for chunk, and a real procrastinate worker runs what it wrote. (`tests/integration/perf/
test_statements.py` covers it inside a fan-out: one COPY, the held-lock read, a COPY refused.)"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from scheduler.backends.base import StreamRefused
from scheduler.backends.procrastinate import ProcrastinateBackend
from scheduler.backends.procrastinate.adapter import HELD_LIMIT, QUERIES
from scheduler.types import Accepted, ChunkResult, Dropped
from tests.integration.procrastinate.conftest import (
    QUEUE,
    batch,
    defer_holder,
    run_worker_once,
    spec,
)

if TYPE_CHECKING:
    from scheduler.types import Batch

OTHER = replace(QUEUE, logical="records-sync", name="interop-sync", task="interop.record_sync")


def _chunks() -> list[Batch]:
    """Three chunks over two queues: keyless jobs, a lock held by a todo job, a lock repeated in a chunk."""
    now = datetime.now(UTC) - timedelta(seconds=1)
    return [
        batch(*(spec(f"a{i}", f"lock:a{i}", {"entity": f"a{i}", "n": i}, now) for i in range(40))),
        batch(
            spec("held", "lock:held", {"entity": "held"}, now),
            spec("free1", None, {"entity": "free1"}, now),
            spec("free2", None, {"entity": "free2"}, now, priority=5),
            spec("twice1", "lock:twice", {"entity": "twice1"}, now),
            spec("twice2", "lock:twice", {"entity": "twice2"}, now),
            queue=OTHER,
        ),
        batch(*(spec(f"b{i}", f"lock:b{i}", {"entity": f"b{i}", "ok": True}, now) for i in range(30))),
    ]


def _shape(result: ChunkResult, ids: dict[str, str]) -> list[tuple[str, ...]]:
    """A chunk's outcomes with job ids replaced by the entity they belong to (ids differ between runs)."""
    entity = {job_id: key for key, job_id in ids.items()}
    shape: list[tuple[str, ...]] = []
    for o in result.outcomes:
        if isinstance(o, Accepted):
            shape.append(("accepted", o.key))
        else:
            assert isinstance(o, Dropped)
            holder = entity.get(o.holder_id or "", "held-by-other" if o.holder_id else "none")
            shape.append((o.reason.value, o.key, holder, str(o.holder_state)))
    return shape


def _accepted_ids(results: list[ChunkResult]) -> dict[str, str]:
    return {o.key: o.job_id for r in results for o in r.outcomes if isinstance(o, Accepted)}


def test_the_stream_reports_what_enqueue_many_reports_and_the_worker_runs_it(
    make_database: Any, procrastinate_template: str
) -> None:
    """The same chunks, on two clones each holding `lock:held` by a job procrastinate deferred: through one
    COPY and through `enqueue_many` per chunk, the same outcomes (the held lock and the chunk's repeat
    dropped naming their holders, todo). The stream's rows are procrastinate's own: its worker runs the 73
    jobs with their task and args, and their ids are the ones reported."""
    shapes = {}
    for streamed in (True, False):
        dsn = make_database(template=procrastinate_template)
        holder = defer_holder(dsn, "lock:held")
        backend = ProcrastinateBackend()
        with psycopg.connect(dsn) as conn:
            chunks = _chunks()
            prepare = {q.logical: backend.preparer(conn, q) for q in (QUEUE, OTHER)}
            stream = backend.open_stream(conn, QUEUE, expected=sum(len(c.jobs) for c in chunks))
            assert stream is not None
            results = []
            for chunk in chunks:
                prepared = prepare[chunk.queue.logical](chunk)
                if streamed:
                    assert stream.accepts(chunk.queue, prepared)
                    results.append(stream.write(chunk, prepared))
                else:
                    results.append(backend.enqueue_many(conn, chunk, prepared))
            stream.close()
            conn.commit()
            ids = _accepted_ids(results) | {"held-holder": holder}
            shapes[streamed] = [_shape(r, ids) for r in results]
            written = {
                str(r[0])
                for r in conn.execute("SELECT id FROM procrastinate_jobs WHERE id <> %s", (int(holder),))
            }
            assert written == set(_accepted_ids(results).values())
        if streamed:
            run_worker_once(dsn)
            with psycopg.connect(dsn) as conn:
                done = {
                    str(job_id): (task, args)
                    for job_id, task, args in conn.execute("SELECT job_id, task, args FROM interop_done")
                }
            by_key = {j.key: (c.queue.task, dict(j.data)) for c in chunks for j in c.jobs}
            assert done == {job_id: by_key[key] for key, job_id in _accepted_ids(results).items()} | {
                holder: ("interop.record", {})
            }
    assert shapes[True] == shapes[False]
    assert ("policy_conflict", "held", "held-holder", "todo") in shapes[True][1]
    assert ("duplicate_in_cohort", "twice2", "twice1", "todo") in shapes[True][1]
    assert sum(s[0] == "accepted" for chunk in shapes[True] for s in chunk) == 73


def test_a_lock_taken_after_the_read_refuses_the_whole_copy(
    backend: ProcrastinateBackend, conn: psycopg.Connection[Any], queue_dsn: str
) -> None:
    """A todo job takes one of the stream's locks after the held locks were read: closing the stream raises
    `StreamRefused`, and once the caller rolls back to its savepoint nothing of the stream remains."""
    chunk = batch(*(spec(f"e{i}", f"lock:e{i}") for i in range(20)))
    prepared = backend.preparer(conn, QUEUE)(chunk)
    conn.commit()
    holder = defer_holder(queue_dsn, "lock:e7")
    savepoint = conn.transaction()
    savepoint.__enter__()
    stream = backend.open_stream(conn, QUEUE, expected=20)
    assert stream is not None
    assert stream.accepts(QUEUE, prepared)
    stream.write(chunk, prepared)
    with pytest.raises(StreamRefused, match="lock:e7") as refused:
        stream.close()
    savepoint.__exit__(StreamRefused, refused.value, None)
    rows = conn.execute("SELECT id::text FROM procrastinate_jobs").fetchall()
    assert rows == [(holder,)]


def test_a_stream_takes_no_more_jobs_than_it_has_ids(
    backend: ProcrastinateBackend, conn: psycopg.Connection[Any]
) -> None:
    """The ids are taken for `expected` jobs: a chunk beyond them is not accepted (the fan-out then ends the
    stream and opens another); no `expected`, no stream."""
    assert backend.open_stream(conn, QUEUE, expected=None) is None
    prepare = backend.preparer(conn, QUEUE)
    first = batch(*(spec(f"e{i}", f"lock:e{i}") for i in range(6)))
    second = batch(*(spec(f"f{i}", f"lock:f{i}") for i in range(5)))
    stream = backend.open_stream(conn, QUEUE, expected=10)
    assert stream is not None
    assert not stream.accepts(QUEUE, prepare(batch(*first.jobs, *second.jobs)))
    stream.write(first, prepare(first))
    assert not stream.accepts(QUEUE, prepare(second))
    assert stream.accepts(QUEUE, prepare(batch(*second.jobs[:4])))
    stream.close()
    conn.commit()
    assert conn.execute("SELECT count(*) FROM procrastinate_jobs").fetchone() == (6,)


def test_the_held_lock_read_skips_finished_jobs(conn: psycopg.Connection[Any]) -> None:
    """20,000 finished jobs and 50 todo ones, statistics up to date: the held-lock read a fan-out makes as it
    begins walks a partial index of the waiting jobs, not the table."""
    conn.execute(
        "INSERT INTO procrastinate_jobs (queue_name, task_name, queueing_lock, status) "
        "SELECT 'interop', 'interop.record', 'done:' || i, 'succeeded' FROM generate_series(1, 20000) AS i"
    )
    conn.execute(
        "INSERT INTO procrastinate_jobs (queue_name, task_name, queueing_lock) "
        "SELECT 'interop', 'interop.record', 'todo:' || i FROM generate_series(1, 50) AS i"
    )
    conn.commit()
    conn.execute("ANALYZE procrastinate_jobs")
    row = conn.execute(
        "EXPLAIN (FORMAT JSON) " + QUERIES["job_held_all"], {"limit": HELD_LIMIT + 1}, prepare=False
    ).fetchone()
    assert row is not None
    (plan,) = row[0]
    kinds = []
    nodes = [plan["Plan"]]
    while nodes:
        node = nodes.pop()
        kinds.append(node["Node Type"])
        nodes.extend(node.get("Plans", []))
    assert "Seq Scan" not in kinds, kinds
    assert any("Index" in kind for kind in kinds), kinds
