"""Log events, metrics and JSON of watcher and alias passes. Pure apart from `record_metrics`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scheduler.observe.events import fanout_event
from scheduler.types import DropReason

if TYPE_CHECKING:
    from scheduler.observe.metrics import Metrics
    from scheduler.watch.passes import AliasResult, WatchResult

Event = tuple[int, str, dict[str, Any]]


def watch_events(result: WatchResult) -> list[Event]:
    """The log events of a watcher pass: one `watch_reemitted` (warning `watch_dropped` on drops other than
    `already_queued`), one `reemit_exhausted` (warning) listing the entities past their bound, and one
    `job_stalled` (warning) per stalled job."""
    if not result.ran:
        return [(logging.DEBUG, "watch_skipped", {"watcher": result.watcher, "why": "in_flight"})]
    level, _, fields = fanout_event(result.report, (DropReason.REEMIT_EXHAUSTED,))
    fields = {"watcher": fields.pop("schedule"), **fields}
    fields["now"] = fields.pop("tick")
    name = (
        "watch_predicted"
        if result.report.dry
        else "watch_dropped"
        if level >= logging.WARNING
        else "watch_reemitted"
    )
    if result.report.failure:
        level, name = logging.ERROR, "watch_failed"
        fields["reason"] = result.report.failure
    events: list[Event] = [(level, name, fields)]
    exhausted = result.keys(DropReason.REEMIT_EXHAUSTED)
    if exhausted:
        events.append(
            (
                logging.WARNING,
                "reemit_exhausted",
                {"watcher": result.watcher, "entities": exhausted, "count": len(exhausted)},
            )
        )
    for job in result.stalled:
        events.append(
            (
                logging.WARNING,
                "job_stalled",
                {
                    "watcher": result.watcher,
                    "queue": job.queue.name,
                    "backend": job.queue.backend.value,
                    "job_id": job.id,
                    "singleton_key": job.singleton_key,
                    "state": job.state,
                },
            )
        )
    return events


def record_metrics(metrics: Metrics, result: WatchResult) -> None:
    """Count a committed pass under the watcher's own names (`Metrics.record_watch`: `watch.reemitted`,
    `watch.already_queued`, `watch.reemit_dropped`, `job.reemit_exhausted`, `watch.duration`), and
    `job.stalled` per queue. None of it is counted as a schedule's `job.enqueued`, drop or `tick.duration`."""
    if not result.ran:
        return
    metrics.record_watch(result.report)
    stalled: dict[str, int] = {}
    for job in result.stalled:
        stalled[job.queue.name] = stalled.get(job.queue.name, 0) + 1
    for queue, n in stalled.items():
        metrics.count("job.stalled", n, {"watcher": result.watcher, "queue": queue})


def watch_json(result: WatchResult) -> dict[str, Any]:
    report = result.report
    return {
        "watcher": result.watcher,
        "now": result.now.isoformat(),
        "ran": result.ran,
        "dry": report.dry,
        "failure": report.failure,
        "found": report.cohort_size,
        "reemitted": report.accepted,
        "dropped_by_reason": {r.value: n for r, n in sorted(report.dropped_by_reason().items(), key=_value)},
        "queues": {
            t.queue.logical: {
                "name": t.queue.name,
                "backend": t.queue.backend.value,
                "reemitted": [{"key": a.key, "job_id": a.job_id} for a in t.accepted_sample],
                "dropped": [
                    {
                        "key": d.key,
                        "reason": d.reason.value,
                        "singleton_key": d.singleton_key,
                        "holder_id": d.holder_id,
                    }
                    for d in t.dropped_sample
                ],
            }
            for t in report.queues.values()
        },
        "exhausted_quiet": list(result.exhausted_quiet),
        "stalled": [
            {"queue": j.queue.name, "job_id": j.id, "singleton_key": j.singleton_key, "state": j.state}
            for j in result.stalled
        ],
    }


def alias_events(result: AliasResult) -> list[Event]:
    """One `alias_moved` per alias that moved or left anything (warning when a job collided and stayed)."""
    events: list[Event] = []
    for o in result.outcomes:
        if not o.moved and not o.collided:
            continue
        events.append(
            (
                logging.WARNING if o.collided else logging.INFO,
                "alias_moved",
                {
                    "old": o.old,
                    "queue": o.target.name,
                    "moved": len(o.moved),
                    "collided": len(o.collided),
                    "collided_ids": [i for i, _ in o.collided][:20],
                },
            )
        )
    return events


def alias_json(result: AliasResult) -> dict[str, Any]:
    return {
        "database": result.database,
        "ran": result.ran,
        "moved": result.moved,
        "collided": result.collided,
        "aliases": [
            {
                "old": o.old,
                "queue": o.target.name,
                "logical": o.target.logical,
                "moved": list(o.moved),
                "collided": [{"job_id": i, "singleton_key": k} for i, k in o.collided],
            }
            for o in result.outcomes
        ],
    }


def _value(item: tuple[DropReason, int]) -> str:
    return item[0].value
