"""Shape log events from reports. Pure: these functions only return values.

Events have a stable name a machine can filter on and flat fields; `observe.log` writes them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scheduler.types import DropReason

if TYPE_CHECKING:
    from collections.abc import Iterable

    from scheduler.types import FanoutReport

DROPPED_KEYS_IN_LOG = 20
"""How many dropped keys one fan-out log line lists; the JSON report of `fire` lists them all."""


def unexpected_drops(report: FanoutReport, expected: Iterable[DropReason]) -> dict[DropReason, int]:
    """Drops whose reason the schedule did not declare as expected (`already_queued` is always expected)."""
    allowed = {*expected, DropReason.ALREADY_QUEUED}
    return {r: n for r, n in report.dropped_by_reason().items() if r not in allowed}


def fanout_event(
    report: FanoutReport, expected: Iterable[DropReason] = ()
) -> tuple[int, str, dict[str, Any]]:
    """The one log event of a fan-out: (level, name, fields).

    `fanout_enqueued` at info when nothing was dropped or only expected reasons; `fanout_dropped` at warning
    when any drop is unexpected. A dry run is `fanout_predicted`.
    """
    unexpected = unexpected_drops(report, expected)
    dropped_keys = [d.key for t in report.queues.values() for d in t.dropped_sample][:DROPPED_KEYS_IN_LOG]
    fields: dict[str, Any] = {
        "schedule": report.schedule,
        "tick": report.tick.isoformat(),
        "cohort": report.cohort_size,
        "planned": report.planned,
        "accepted": report.accepted,
        "dropped": report.dropped,
        "dropped_by_reason": {
            r.value: n for r, n in sorted(report.dropped_by_reason().items(), key=_by_value)
        },
        "queues": {
            t.queue.name: {"accepted": t.accepted, "dropped": t.dropped} for t in report.queues.values()
        },
        "dropped_keys": dropped_keys,
        "duration_ms": round(report.duration_seconds * 1000, 1),
        "connections": report.connections_used,
    }
    if report.dry:
        return logging.INFO, "fanout_predicted", fields
    if unexpected:
        return logging.WARNING, "fanout_dropped", fields
    return logging.INFO, "fanout_enqueued", fields


def _by_value(item: tuple[DropReason, int]) -> str:
    return item[0].value
