"""Renamed queues on a real PostgreSQL: jobs sent to an old name are moved to the target, then run."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import psycopg

from scheduler.watch.passes import aliases_once
from tests.integration.pgboss.interop import node, send_steps, to_url
from tests.integration.procrastinate.conftest import run_worker_once
from tests.integration.watcher.conftest import jobs

if TYPE_CHECKING:
    from scheduler.fanout import Fanout


def test_jobs_sent_to_the_old_name_are_moved_and_completed_by_a_new_name_worker(
    db: str, fanout: Fanout
) -> None:
    """Three jobs sent by pg-boss to the old name move to the new queue in one pass; its worker runs all."""
    sent = send_steps(
        db,
        [
            {
                "op": "send",
                "queue": "bulk",
                "data": {"n": n},
                "options": {"singletonKey": f"k{n}", "priority": n},
            }
            for n in range(3)
        ],
    )
    result = aliases_once(fanout, "queue")
    done = node("worker.mjs", to_url(db), json.dumps(["lane-ui"]), "3", "20000", timeout=40)
    assert sorted(result.outcomes[0].moved) == sorted(s["id"] for s in sent)
    assert sorted((j["id"], j["data"]["n"]) for j in done["jobs"]) == sorted(
        (s["id"], n) for n, s in enumerate(sent)
    )
    assert jobs(db, "bulk") == []


def test_moved_job_keeps_singleton_key_start_after_and_priority(db: str, fanout: Fanout) -> None:
    """A moved job keeps its singleton key, start_after and priority, and takes the target's policy."""
    send_steps(
        db,
        [
            {
                "op": "send",
                "queue": "bulk",
                "data": {},
                "options": {"singletonKey": "k", "priority": 7, "startAfter": 3600},
            }
        ],
    )
    query = "SELECT singleton_key, priority, start_after, policy FROM pgboss.job WHERE name = %s"
    with psycopg.connect(db) as conn:
        before = conn.execute(query, ("bulk",)).fetchone()
    aliases_once(fanout, "queue")
    with psycopg.connect(db) as conn:
        after = conn.execute(query, ("lane-ui",)).fetchone()
    assert before is not None
    assert after == (*before[:3], "standard")


def test_collision_with_the_target_policy_is_reported_and_left_in_place(db: str, fanout: Fanout) -> None:
    """A job whose key a stately target already holds stays on the old name and is reported collided."""
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("SELECT pgboss.create_queue('old-insights', '{\"policy\": \"standard\"}')")
    sent = send_steps(
        db,
        [
            {
                "op": "send",
                "queue": "generate-insight-post",
                "data": {},
                "options": {"singletonKey": "org-1"},
            },
            {"op": "send", "queue": "old-insights", "data": {}, "options": {"singletonKey": "org-1"}},
            {"op": "send", "queue": "old-insights", "data": {}, "options": {"singletonKey": "org-2"}},
        ],
    )
    result = aliases_once(fanout, "queue")
    outcome = next(o for o in result.outcomes if o.old == "old-insights")
    assert (outcome.moved, outcome.collided) == ((sent[2]["id"],), ((sent[1]["id"], "org-1"),))
    assert [k for k, _, _ in jobs(db, "old-insights")] == ["org-1"]


def test_procrastinate_todo_jobs_on_the_old_name_move_and_run(db: str, fanout: Fanout) -> None:
    """Todo jobs on an old procrastinate queue name are renamed to the target queue and a real worker runs them."""
    with psycopg.connect(db) as conn:
        conn.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, args, queueing_lock) "
            "SELECT 'old-records', 'interop.record', jsonb_build_object('n', n), 'lock-' || n FROM generate_series(1, 3) n"
        )
    result = aliases_once(fanout, "queue")
    run_worker_once(db)
    with psycopg.connect(db) as conn:
        done = conn.execute("SELECT args->>'n' FROM interop_done ORDER BY 1").fetchall()
        left = conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = 'old-records'"
        ).fetchone()
    moved = next(o for o in result.outcomes if o.old == "old-records").moved
    assert (len(moved), done, left) == (3, [("1",), ("2",), ("3",)], (0,))
