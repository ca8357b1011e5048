"""What a fan-out writes, real workers run: pg-boss's `boss.work()` (Node) and procrastinate's worker."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from scheduler.fanout import fire
from tests.integration.fanout.conftest import load_fanout
from tests.integration.pgboss.interop import node, to_url
from tests.integration.procrastinate.conftest import run_worker_once

if TYPE_CHECKING:
    from pathlib import Path

    import psycopg

    from scheduler.types import FanoutReport

LANE_ROWS, PROC_ROWS = 400, 100
SCHEDULES = f"""\
schedules:
  lane-work:
    cron: "* * * * *"
    cohort:
      sql: >
        select 'w' || i as key, case when mod(i, 4) = 0 then 'batch' else 'ui' end as source,
               json_build_object('n', i) as data
        from generate_series(1, {LANE_ROWS}) as i
    lane: work
    singleton_key: "work:{{key}}"
    stagger: {{ window: 4s, strategy: spread }}
  records:
    cron: "* * * * *"
    cohort:
      sql: select 'r' || i as key, json_build_object('n', i) as data from generate_series(1, {PROC_ROWS}) as i
    queue: records
    singleton_key: "record:{{key}}"
    stagger: {{ window: 4s, strategy: spread }}
"""


def accepted_payloads(report: FanoutReport) -> dict[str, dict[str, Any]]:
    """job id → the payload planned for it (`{"n": i}` for entity w<i> / r<i>)."""
    assert report.dropped == 0
    return {a.job_id: {"n": int(a.key[1:])} for t in report.queues.values() for a in t.accepted_sample}


def test_real_workers_run_every_accepted_job_with_its_payload_and_never_early(
    tmp_path: Path, environ: dict[str, str], queues_db: str, db: psycopg.Connection[Any]
) -> None:
    """500 jobs over two pg-boss lane queues and a procrastinate queue, staggered over 4 s from now: the
    real workers complete each accepted job once with its payload, none before its start_after."""
    fanout = load_fanout(tmp_path, SCHEDULES, environ, detail_limit=None, chunk_size=150)
    row = db.execute("SELECT now()").fetchone()
    assert row is not None
    tick = row[0]

    lane = fire(fanout, "lane-work", tick).report
    records = fire(fanout, "records", tick).report

    assert {q: t.accepted for q, t in lane.queues.items()} == {"ui": 300, "batch": 100}
    assert {q: t.accepted for q, t in records.queues.items()} == {"records": PROC_ROWS}
    boss_expected, proc_expected = accepted_payloads(lane), accepted_payloads(records)

    run_worker_once(queues_db)  # while most jobs are still in the future: only the due ones may run
    ran = node(
        "worker.mjs",
        to_url(queues_db),
        json.dumps(["lane-ui", "lane-batch"]),
        str(LANE_ROWS),
        "20000",
        timeout=40,
    )
    wait_until_due(db)
    run_worker_once(queues_db)

    assert ran["timedOut"] is False
    assert {j["id"]: j["data"] for j in ran["jobs"]} == boss_expected
    assert len(ran["jobs"]) == LANE_ROWS
    assert db.execute(
        "SELECT state::text, count(*), count(*) FILTER (WHERE started_on < start_after) FROM pgboss.job GROUP BY 1"
    ).fetchall() == [("completed", LANE_ROWS, 0)]
    done = db.execute("SELECT job_id::text, args FROM interop_done").fetchall()
    assert len(done) == PROC_ROWS
    assert dict(done) == proc_expected
    assert db.execute(
        "SELECT j.status::text, count(*), count(*) FILTER (WHERE e.at < j.scheduled_at) "
        "FROM procrastinate_jobs j JOIN procrastinate_events e ON e.job_id = j.id AND e.type = 'started' "
        "GROUP BY 1"
    ).fetchall() == [("succeeded", PROC_ROWS, 0)]


def wait_until_due(db: psycopg.Connection[Any]) -> None:
    """Sleep until the database clock has passed every procrastinate job's scheduled_at."""
    for _ in range(200):
        row = db.execute("SELECT bool_and(scheduled_at <= now()) FROM procrastinate_jobs").fetchone()
        if row is not None and row[0]:
            return
        time.sleep(0.05)
    raise AssertionError("procrastinate jobs still not due after 10 s")
