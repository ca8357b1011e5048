"""Sentry with the real SDK and a capturing transport: off without a DSN, metrics and errors when on."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
import sentry_sdk
from sentry_sdk.transport import Transport

from scheduler.observe.metrics import Metrics
from scheduler.runtime.sentry import init_sentry
from scheduler.runtime.settings import Settings
from scheduler.types import Accepted, BackendKind, ChunkResult, Dropped, DropReason, FanoutReport, QueueRef

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sentry_sdk.envelope import Envelope

DSN = "https://public@sentry.example.com/1"


class Capture(Transport):
    """Keeps every envelope instead of sending it."""

    envelopes: list[Envelope] = []  # noqa: RUF012 -- shared with the test through the class

    def capture_envelope(self, envelope: Envelope) -> None:
        Capture.envelopes.append(envelope)


@pytest.fixture
def sentry() -> Iterator[list[Envelope]]:
    Capture.envelopes = []
    assert init_sentry(Settings(sentry_dsn=DSN, replica_id="r1"), transport=Capture)
    yield Capture.envelopes
    sentry_sdk.get_client().close()
    sentry_sdk.init()


def items(envelopes: list[Envelope], kind: str) -> list[Any]:
    return [i.payload.json for e in envelopes for i in e.items if i.type == kind]


def test_no_dsn_no_sentry() -> None:
    """Without a DSN the SDK is not initialized."""
    assert not init_sentry(Settings(sentry_dsn=None))


def test_fanout_metrics_arrive_as_trace_metrics(sentry: list[Envelope]) -> None:
    """record_fanout sends job.enqueued, job.enqueue_dropped (schedule, queue, reason) and tick.duration."""
    queue = QueueRef(logical="w", name="work", backend=BackendKind.PROCRASTINATE, database="queue")
    report = FanoutReport(schedule="s", tick=datetime(2026, 1, 1, tzinfo=UTC), duration_seconds=0.5)
    report.add(ChunkResult(queue, (Accepted("a", "1"), Dropped("b", DropReason.POLICY_CONFLICT))))
    Metrics().record_fanout(report)
    sentry_sdk.flush()
    metrics = [m for payload in items(sentry, "trace_metric") for m in payload["items"]]
    by_name = {m["name"]: m for m in metrics}
    assert set(by_name) >= {"job.enqueued", "job.enqueue_dropped", "tick.duration"}
    dropped = by_name["job.enqueue_dropped"]["attributes"]
    assert {k: v["value"] for k, v in dropped.items() if k in {"schedule", "queue", "reason"}} == {
        "schedule": "s",
        "queue": "work",
        "reason": "policy_conflict",
    }


def test_captured_error_arrives_as_event(sentry: list[Envelope]) -> None:
    """An exception captured by the runtime reaches the transport as an error event."""
    try:
        raise RuntimeError("cohort query failed")
    except RuntimeError as exc:
        sentry_sdk.capture_exception(exc)
    sentry_sdk.flush()
    events = items(sentry, "event")
    assert events[0]["exception"]["values"][0]["value"] == "cohort query failed"
