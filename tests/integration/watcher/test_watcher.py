"""The heartbeat watcher on a real PostgreSQL with real pg-boss and procrastinate schemas and workers."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import TYPE_CHECKING

import psycopg

from scheduler.fanout import fire
from scheduler.observe.metrics import Metrics
from scheduler.types import DropReason
from scheduler.watch.passes import WatchResult, watch_once
from scheduler.watch.report import record_metrics, watch_events
from tests.integration.pgboss.interop import node, send_steps, to_url
from tests.integration.watcher.conftest import add_messages, db_now, jobs

if TYPE_CHECKING:
    from scheduler.fanout import Fanout

WORKER_TIMEOUT_MS = "20000"


def test_stuck_message_is_reemitted_once_to_the_ui_lane_and_completed(db: str, fanout: Fanout) -> None:
    """A message in GENERATING for 5 minutes is re-emitted to the ui queue and a real pg-boss worker runs it."""
    now = db_now(db)
    add_messages(
        db, now, ("m1", "GENERATING", None, 300), ("m2", "GENERATING", None, 10), ("m3", "DONE", None, 300)
    )
    result = watch_once(fanout, "chat-generating", now, replica="r1")
    assert [a.key for a in result.report.queues["ui"].accepted_sample] == ["m1"]
    done = node("worker.mjs", to_url(db), json.dumps(["lane-ui"]), "1", WORKER_TIMEOUT_MS, timeout=40)
    assert done["timedOut"] is False
    assert [(j["name"], j["data"]) for j in done["jobs"]] == [("lane-ui", {"messageId": "m1"})]


def test_message_whose_job_still_waits_is_already_queued(db: str, fanout: Fanout) -> None:
    """A second pass finds the first re-emit still waiting and reports already_queued, naming it."""
    now = db_now(db)
    add_messages(db, now, ("m1", "GENERATING", None, 300))
    first = watch_once(fanout, "chat-generating", now, replica="r1")
    second = watch_once(fanout, "chat-generating", now + timedelta(seconds=30), replica="r1")
    holder = first.report.queues["ui"].accepted_sample[0].job_id
    dropped = second.report.queues["ui"].dropped_sample
    assert [(d.key, d.reason, d.holder_id) for d in dropped] == [("m1", DropReason.ALREADY_QUEUED, holder)]
    assert jobs(db, "lane-ui") == [("chat-message:m1", {"messageId": "m1"}, "created")]


def test_watcher_routes_each_row_by_source_through_its_lane(db: str, fanout: Fanout) -> None:
    """A stuck scheduled_report message goes to the batch queue, an interactive one to the ui queue."""
    now = db_now(db)
    add_messages(db, now, ("m1", "GENERATING", "scheduled_report", 300), ("m2", "GENERATING", "user", 300))
    watch_once(fanout, "chat-generating", now, replica="r1")
    assert jobs(db, "lane-batch") == [("chat-message:m1", {"messageId": "m1"}, "created")]
    assert jobs(db, "lane-ui") == [("chat-message:m2", {"messageId": "m2"}, "created")]


def test_scheduled_fanout_lands_each_row_on_its_lane_queue(db: str, fanout: Fanout) -> None:
    """A scheduled fan-out routes rows with source scheduled_report to batch and never to the ui queue."""
    now = db_now(db)
    add_messages(db, now, ("a", "DONE", "scheduled_report", 0), ("b", "DONE", "scheduled_report", 0))
    add_messages(db, now, ("c", "DONE", None, 0))
    fire(fanout, "reports", now)
    assert [k for k, _, _ in jobs(db, "lane-batch")] == ["report:a", "report:b"]
    assert [k for k, _, _ in jobs(db, "lane-ui")] == ["report:c"]


def test_two_replicas_racing_one_pass_reemit_each_entity_once(db: str, fanout: Fanout) -> None:
    """Two threads running the same watcher pass at once leave exactly one job per stuck entity."""
    now = db_now(db)
    add_messages(db, now, *((f"m{i}", "GENERATING", None, 300.0) for i in range(5)))
    barrier = threading.Barrier(2)
    results: list[WatchResult] = []

    def replica(name: str) -> None:
        barrier.wait(timeout=10)
        results.append(watch_once(fanout, "chat-generating", now, replica=name))

    threads = [threading.Thread(target=replica, args=(f"r{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sum(r.report.accepted for r in results) == 5
    assert [k for k, _, _ in jobs(db, "lane-ui")] == [f"chat-message:m{i}" for i in range(5)]


def test_max_reemits_exhaustion_is_reported_with_the_metric(db: str, fanout: Fanout) -> None:
    """After max_reemits (2) completed re-emits, the third pass reports reemit_exhausted and counts it."""
    now = db_now(db)
    add_messages(db, now, ("m1", "GENERATING", None, 300))
    for minutes_ago in (2, 1):  # start_after is the pass's instant: in the past, so the job can be fetched
        watch_once(fanout, "chat-generating", now - timedelta(minutes=minutes_ago), replica="r1")
        send_steps(
            db,
            [{"op": "fetch", "queue": "lane-ui"}, {"op": "complete", "queue": "lane-ui", "ids": "fetched"}],
        )
    third = watch_once(fanout, "chat-generating", now, replica="r1")
    metrics = Metrics(send_to_sentry=False)
    record_metrics(metrics, third)
    assert third.keys(DropReason.REEMIT_EXHAUSTED) == ["m1"]
    key = ("job.reemit_exhausted", (("queue", "lane-ui"), ("watcher", "chat-generating")))
    assert metrics.counters[key] == 1
    assert not [k for k in metrics.counters if k[0] in ("job.enqueue_dropped", "job.enqueued")]
    assert [(n, f.get("entities")) for _, n, f in watch_events(third)][1] == ("reemit_exhausted", ["m1"])


def test_queue_level_reports_and_reemits_a_pgboss_job_past_its_expiry(db: str, fanout: Fanout) -> None:
    """An active pg-boss job past started_on + expire_seconds is reported stalled and re-emitted once."""
    sent = send_steps(
        db,
        [
            {
                "op": "send",
                "queue": "lane-ui",
                "data": {"n": 1},
                "options": {"singletonKey": "k1", "expireInSeconds": 60},
            },
            {"op": "fetch", "queue": "lane-ui"},
        ],
    )
    later = db_now(db) + timedelta(minutes=5)
    result = watch_once(fanout, "ui-stalled", later, replica="r1")
    metrics = Metrics(send_to_sentry=False)
    record_metrics(metrics, result)
    assert [(j.id, j.state) for j in result.stalled] == [(sent[0]["id"], "active")]
    assert metrics.counters[("job.stalled", (("queue", "lane-ui"), ("watcher", "ui-stalled")))] == 1
    assert jobs(db, "lane-ui") == [("k1", {"n": 1}, "active"), ("k1", {"n": 1}, "created")]


def test_queue_level_reports_a_procrastinate_job_whose_worker_is_gone(db: str, fanout: Fanout) -> None:
    """A procrastinate job in doing with no worker is reported stalled and re-emitted with its lock."""
    with psycopg.connect(db) as conn:
        conn.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, args, queueing_lock, status) "
            "VALUES ('interop', 'interop.record', '{\"n\": 1}', 'lock-1', 'doing')"
        )
    result = watch_once(fanout, "records-stalled", db_now(db), replica="r1")
    assert [(j.singleton_key, j.state) for j in result.stalled] == [("lock-1", "doing")]
    with psycopg.connect(db) as conn:
        rows = conn.execute(
            "SELECT status::text, args, queueing_lock FROM procrastinate_jobs ORDER BY id"
        ).fetchall()
    assert rows == [("doing", {"n": 1}, "lock-1"), ("todo", {"n": 1}, "lock-1")]


def test_exhaustion_is_reported_once_per_window_then_left_alone_quietly(db: str, fanout: Fanout) -> None:
    """A fourth pass in the window reports no reemit_exhausted drop, log line or metric for m1 again."""
    now = db_now(db)
    add_messages(db, now, ("m1", "GENERATING", None, 300))
    for minutes_ago in (3, 2):
        watch_once(fanout, "chat-generating", now - timedelta(minutes=minutes_ago), replica="r1")
        send_steps(
            db,
            [{"op": "fetch", "queue": "lane-ui"}, {"op": "complete", "queue": "lane-ui", "ids": "fetched"}],
        )
    watch_once(fanout, "chat-generating", now - timedelta(minutes=1), replica="r1")
    fourth = watch_once(fanout, "chat-generating", now, replica="r1")
    metrics = Metrics(send_to_sentry=False)
    record_metrics(metrics, fourth)
    assert (fourth.keys(DropReason.REEMIT_EXHAUSTED), fourth.exhausted_quiet) == ([], ["m1"])
    assert [n for _, n, _ in watch_events(fourth)] == ["watch_reemitted"]
    assert [k for k in metrics.counters if k[0] == "job.reemit_exhausted"] == []


def test_exhaustion_report_is_one_ledger_row_of_kind_exhausted(db: str, fanout: Fanout) -> None:
    """Two exhausted passes in one window leave two reemit rows and one exhausted row (no job id) for m1."""
    now = db_now(db)
    add_messages(db, now, ("m1", "GENERATING", None, 300))
    for minutes_ago in (3, 2):
        watch_once(fanout, "chat-generating", now - timedelta(minutes=minutes_ago), replica="r1")
        send_steps(
            db,
            [{"op": "fetch", "queue": "lane-ui"}, {"op": "complete", "queue": "lane-ui", "ids": "fetched"}],
        )
    for minutes_ago in (1, 0):
        watch_once(fanout, "chat-generating", now - timedelta(minutes=minutes_ago), replica="r1")
    with psycopg.connect(db) as conn:
        rows = conn.execute(
            "SELECT kind, job_id IS NULL, at FROM scheduler.reemit WHERE entity = 'm1' ORDER BY at"
        ).fetchall()
    assert [(kind, no_job) for kind, no_job, _ in rows] == [
        ("reemit", False),
        ("reemit", False),
        ("exhausted", True),
    ]
    assert rows[2][2] == now - timedelta(minutes=1)


def test_exhaustion_is_reported_again_once_the_report_left_the_window(db: str, fanout: Fanout) -> None:
    """With the reemits still counted but the exhausted row older than the window, m1 is reported anew."""
    now = db_now(db)
    add_messages(db, now, ("m1", "GENERATING", None, 300))
    with psycopg.connect(db) as conn:
        conn.execute(
            "INSERT INTO scheduler.reemit (watcher, entity, at, queue, job_id, replica, kind) VALUES "
            "('chat-generating', 'm1', %(now)s - interval '2 hours', 'lane-ui', NULL, 'r0', 'exhausted'), "
            "('chat-generating', 'm1', %(now)s - interval '10 minutes', 'lane-ui', 'j1', 'r0', 'reemit'), "
            "('chat-generating', 'm1', %(now)s - interval '5 minutes', 'lane-ui', 'j2', 'r0', 'reemit')",
            {"now": now},
        )
    result = watch_once(fanout, "chat-generating", now, replica="r1")
    assert (result.keys(DropReason.REEMIT_EXHAUSTED), result.exhausted_quiet) == (["m1"], [])
