"""Drops reach Sentry as metrics through the real sentry-sdk (with a transport that keeps envelopes)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sentry_sdk
from sentry_sdk.transport import Transport

from scheduler.fanout import fire
from scheduler.observe.metrics import Metrics
from scheduler.runtime.sentry import init_sentry
from scheduler.runtime.settings import Settings
from tests.integration.fanout.conftest import load_fanout

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from sentry_sdk.envelope import Envelope

TICK = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
DSN = "https://key@example.invalid/1"
SCHEDULE = """\
schedules:
  digest:
    cron: "0 * * * *"
    cohort:
      static: [{ key: a }, { key: b }, { key: c }]
    queue: insights
"""


class KeepEnvelopes(Transport):
    """A transport that sends nothing and keeps every envelope it is given."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    def metrics(self) -> list[dict[str, Any]]:
        """Every metric sent, from the items of type trace_metric."""
        found: list[dict[str, Any]] = []
        for envelope in self.envelopes:
            for item in envelope.items:
                if item.type == "trace_metric":
                    payload = item.payload.json
                    assert payload is not None
                    found.extend(payload["items"])
        return found


def sentry(dsn: str | None) -> Iterator[KeepEnvelopes]:
    """Sentry as the sidecar sets it up (`init_sentry`), with the keeping transport; shut down after."""
    transport = KeepEnvelopes()
    init_sentry(Settings(sentry_dsn=dsn), transport=transport)
    try:
        yield transport
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)


def attributes(metric: dict[str, Any]) -> dict[str, Any]:
    return {k: v["value"] for k, v in metric["attributes"].items() if k in {"schedule", "queue", "reason"}}


def test_a_fanout_with_drops_sends_enqueued_and_dropped_counts(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    """Three keyless jobs into a stately queue: job.enqueued 1 and job.enqueue_dropped 2 tagged
    schedule, queue and reason policy_conflict."""
    report = fire(load_fanout(tmp_path, SCHEDULE, environ), "digest", TICK).report
    assert (report.accepted, report.dropped) == (1, 2)
    for transport in sentry(DSN):
        Metrics().record_fanout(report)
        sentry_sdk.flush()
        counts = [
            (m["name"], m["value"], attributes(m)) for m in transport.metrics() if m["type"] == "counter"
        ]

    assert sorted(counts) == [
        (
            "job.enqueue_dropped",
            2.0,
            {"schedule": "digest", "queue": "generate-insight-post", "reason": "policy_conflict"},
        ),
        ("job.enqueued", 1.0, {"schedule": "digest", "queue": "generate-insight-post"}),
    ]


def test_without_a_dsn_nothing_is_sent(tmp_path: Path, environ: dict[str, str]) -> None:
    """With no DSN the sidecar's Sentry setup leaves the SDK off: the same calls hand the transport no
    envelope at all, and the local registry still counts."""
    report = fire(load_fanout(tmp_path, SCHEDULE, environ), "digest", TICK).report
    for transport in sentry(None):
        metrics = Metrics()
        metrics.record_fanout(report)
        sentry_sdk.flush()
        sent = list(transport.envelopes)

    assert sent == []
    assert (
        metrics.counters[("job.enqueued", (("queue", "generate-insight-post"), ("schedule", "digest")))] == 1
    )
