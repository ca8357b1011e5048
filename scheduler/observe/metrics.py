"""Metrics: every count goes to Sentry (real SDK; a no-op when no DSN is set) and to an in-process registry
that `/metrics` renders in Prometheus text format.

Names follow the product's contract: `job.enqueued`, `job.enqueue_dropped` (attributes schedule, queue,
reason), `tick.duration`, `job.stagger_delay`, `job.reemit_exhausted`. A schedule's tick and a watcher's
pass are counted under different names (`record_fanout`, `record_watch`): a watcher's normal
`already_queued` dedupes are not drops, and its passes are not ticks. `HELP` says what each name means;
`/metrics` prints it, and a name missing from it is a programming error (`Metrics` refuses it).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sentry_sdk.metrics

from scheduler.types import DropReason

if TYPE_CHECKING:
    from collections.abc import Mapping

    from scheduler.types import FanoutReport

Labels = tuple[tuple[str, str], ...]

HELP: dict[str, str] = {
    "job.enqueued": "Jobs a schedule's tick put into a queue (each accepted with a job id).",
    "job.enqueue_dropped": "Jobs of a schedule's tick that did not go into the queue, by reason "
    "(policy_conflict, duplicate_in_cohort, queue_missing, throttled, invalid_row).",
    "tick.duration": "Seconds one fan-out of a schedule's tick took, from the cohort read to the commit.",
    "tick.lag": "Seconds from a tick's nominal instant to the commit of its fan-out.",
    "tick.completed": "Ticks of a schedule by outcome: done, failed (retried in the catch-up window), skipped.",
    "job.stagger_delay": "Seconds from a tick to the start_after of its accepted jobs (a bounded sample).",
    "watch.reemitted": "Stuck entities a watcher pass re-emitted as a new job.",
    "watch.already_queued": "Entities a watcher pass found stuck whose job still waits in the queue (normal).",
    "watch.reemit_dropped": "Re-emits of a watcher pass that did not go into the queue, by reason.",
    "job.reemit_exhausted": "Entities a watcher re-emitted max_reemits times within its window, now left alone.",
    "watch.duration": "Seconds one watcher pass took.",
    "job.stalled": "Jobs a watcher pass found running past their heartbeat or expiry.",
    "config.reload_failed": "Loads of the schedule files that failed or were refused (the running config stayed).",
}
"""Every metric name and what it counts (the `# HELP` text of `/metrics`)."""

_WATCH_QUIET = frozenset({DropReason.ALREADY_QUEUED, DropReason.REEMIT_EXHAUSTED})


@dataclass
class Histogram:
    count: int = 0
    total: float = 0.0
    buckets: dict[float, int] = field(default_factory=dict)


DEFAULT_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


class Metrics:
    """Counters and distributions, thread-safe. One instance per process, passed down."""

    def __init__(self, *, send_to_sentry: bool = True) -> None:
        self._lock = threading.Lock()
        self._sentry = send_to_sentry
        self.counters: dict[tuple[str, Labels], float] = {}
        self.histograms: dict[tuple[str, Labels], Histogram] = {}

    def count(self, name: str, value: float = 1, attributes: Mapping[str, str] | None = None) -> None:
        _known(name)
        attrs = dict(attributes or {})
        key = (name, tuple(sorted(attrs.items())))
        with self._lock:
            self.counters[key] = self.counters.get(key, 0) + value
        if self._sentry:
            sentry_sdk.metrics.count(name, value, attributes=attrs)

    def distribution(
        self, name: str, value: float, unit: str | None = None, attributes: Mapping[str, str] | None = None
    ) -> None:
        _known(name)
        attrs = dict(attributes or {})
        key = (name, tuple(sorted(attrs.items())))
        with self._lock:
            hist = self.histograms.setdefault(key, Histogram())
            hist.count += 1
            hist.total += value
            for bound in DEFAULT_BUCKETS:
                if value <= bound:
                    hist.buckets[bound] = hist.buckets.get(bound, 0) + 1
        if self._sentry:
            sentry_sdk.metrics.distribution(name, value, unit=unit, attributes=attrs)

    def record_fanout(self, report: FanoutReport) -> None:
        """Count one committed fan-out of a schedule's tick: jobs enqueued, drops by reason, duration."""
        for totals in report.queues.values():
            queue = totals.queue.name
            if totals.accepted:
                self.count("job.enqueued", totals.accepted, {"schedule": report.schedule, "queue": queue})
            for reason, n in totals.dropped_by_reason.items():
                self.count(
                    "job.enqueue_dropped",
                    n,
                    {"schedule": report.schedule, "queue": queue, "reason": reason.value},
                )
        self.distribution("tick.duration", report.duration_seconds, "second", {"schedule": report.schedule})

    def record_watch(self, report: FanoutReport) -> None:
        """Count one committed watcher pass (`report.schedule` is the watcher's name): re-emits, the normal
        `already_queued` dedupes, entities past `max_reemits`, real drops of re-emits by reason, duration."""
        watcher = report.schedule
        for totals in report.queues.values():
            labels = {"watcher": watcher, "queue": totals.queue.name}
            if totals.accepted:
                self.count("watch.reemitted", totals.accepted, labels)
            by_reason = totals.dropped_by_reason
            if n := by_reason.get(DropReason.ALREADY_QUEUED, 0):
                self.count("watch.already_queued", n, labels)
            if n := by_reason.get(DropReason.REEMIT_EXHAUSTED, 0):
                self.count("job.reemit_exhausted", n, labels)
            for reason, n in by_reason.items():
                if reason not in _WATCH_QUIET:
                    self.count("watch.reemit_dropped", n, {**labels, "reason": reason.value})
        self.distribution("watch.duration", report.duration_seconds, "second", {"watcher": watcher})

    def record_stagger(self, schedule: str, delays_seconds: list[float]) -> None:
        for delay in delays_seconds:
            self.distribution("job.stagger_delay", delay, "second", {"schedule": schedule})


PROMETHEUS_PREFIX = "scheduler_"


def render_prometheus(metrics: Metrics) -> str:
    """The registry in Prometheus text format (0.0.4): `job.enqueued` → `scheduler_job_enqueued_total`,
    distributions as histograms (`_bucket{le=...}`, `_sum`, `_count`).
    """
    with metrics._lock:
        counters = dict(metrics.counters)
        histograms = {k: Histogram(v.count, v.total, dict(v.buckets)) for k, v in metrics.histograms.items()}
    lines: list[str] = []
    for name in sorted({n for n, _ in counters}):
        metric = f"{_prom_name(name)}_total"
        lines.append(f"# HELP {metric} {_prom_help(name)}")
        lines.append(f"# TYPE {metric} counter")
        for (n, labels), value in sorted(counters.items()):
            if n == name:
                lines.append(f"{metric}{_prom_labels(labels)} {value:g}")
    for name in sorted({n for n, _ in histograms}):
        metric = _prom_name(name)
        lines.append(f"# HELP {metric} {_prom_help(name)}")
        lines.append(f"# TYPE {metric} histogram")
        for (n, labels), hist in sorted(histograms.items(), key=lambda item: item[0]):
            if n != name:
                continue
            for bound in DEFAULT_BUCKETS:
                le = (("le", f"{bound:g}"),)
                lines.append(f"{metric}_bucket{_prom_labels(labels + le)} {hist.buckets.get(bound, 0)}")
            lines.append(f"{metric}_bucket{_prom_labels((*labels, ('le', '+Inf')))} {hist.count}")
            lines.append(f"{metric}_sum{_prom_labels(labels)} {hist.total:g}")
            lines.append(f"{metric}_count{_prom_labels(labels)} {hist.count}")
    return "\n".join(lines) + "\n"


def _known(name: str) -> None:
    if name not in HELP:
        raise ValueError(f"metric {name!r} has no HELP text; add it to scheduler.observe.metrics.HELP")


def _prom_help(name: str) -> str:
    return HELP[name].replace("\\", "\\\\").replace("\n", "\\n")


def _prom_name(name: str) -> str:
    return PROMETHEUS_PREFIX + "".join(c if c.isalnum() else "_" for c in name)


def _prom_labels(labels: Labels) -> str:
    if not labels:
        return ""
    escaped = ((k, v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')) for k, v in labels)
    return "{" + ",".join(f'{k}="{v}"' for k, v in escaped) + "}"
