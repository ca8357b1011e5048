"""`/metrics` text: counters and histograms from the in-process registry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from scheduler.observe.metrics import HELP, Metrics, render_prometheus
from scheduler.types import Accepted, BackendKind, ChunkResult, Dropped, DropReason, FanoutReport, QueueRef

_HISTOGRAMS = {"tick.duration", "tick.lag", "job.stagger_delay", "watch.duration"}


def test_counter_renders_with_total_suffix_and_labels() -> None:
    """A counter becomes `scheduler_<name>_total{labels} value`."""
    m = Metrics(send_to_sentry=False)
    m.count("job.enqueued", 3, {"schedule": "s", "queue": "q"})
    assert 'scheduler_job_enqueued_total{queue="q",schedule="s"} 3' in render_prometheus(m)


def test_histogram_renders_cumulative_buckets_sum_and_count() -> None:
    """A distribution becomes a histogram with `le` buckets, `+Inf`, `_sum` and `_count`."""
    m = Metrics(send_to_sentry=False)
    m.distribution("tick.lag", 0.2, "second", {"schedule": "s"})
    text = render_prometheus(m)
    assert 'scheduler_tick_lag_bucket{schedule="s",le="0.1"} 0' in text
    assert 'scheduler_tick_lag_bucket{schedule="s",le="0.25"} 1' in text
    assert 'scheduler_tick_lag_bucket{schedule="s",le="+Inf"} 1' in text
    assert 'scheduler_tick_lag_count{schedule="s"} 1' in text


def test_label_values_are_escaped() -> None:
    """Quotes and backslashes in label values are escaped."""
    m = Metrics(send_to_sentry=False)
    m.count("tick.completed", 1, {"schedule": 'a"b\\c'})
    assert 'schedule="a\\"b\\\\c"' in render_prometheus(m)


def test_every_rendered_metric_has_help_text_before_its_type() -> None:
    """Each metric family in `/metrics` opens with `# HELP` (its meaning), then `# TYPE`."""
    m = Metrics(send_to_sentry=False)
    for name in HELP:
        if name in _HISTOGRAMS:
            m.distribution(name, 1.0)
        else:
            m.count(name, 1, {"schedule": "s"})
    lines = render_prometheus(m).splitlines()
    types = [i for i, line in enumerate(lines) if line.startswith("# TYPE ")]
    assert len(types) == len(HELP)
    for i in types:
        family = lines[i].split()[2]
        assert lines[i - 1].startswith(f"# HELP {family} ")
        assert len(lines[i - 1]) > len(f"# HELP {family} ") + 10


def test_a_metric_without_help_text_is_refused() -> None:
    """A name missing from HELP is a programming error, caught at its first use."""
    with pytest.raises(ValueError, match="no HELP text"):
        Metrics(send_to_sentry=False).count("job.enqueud", 1)


def _watch_report(*outcomes: Accepted | Dropped) -> FanoutReport:
    queue = QueueRef(logical="ui", name="lane-ui", backend=BackendKind.PGBOSS, database="queue")
    report = FanoutReport(schedule="w", tick=datetime(2026, 1, 1, tzinfo=UTC), duration_seconds=0.1)
    report.add(ChunkResult(queue, outcomes))
    return report


def test_a_watcher_pass_counts_under_its_own_names() -> None:
    """Re-emits, normal dedupes, exhausted entities and real drops of a watcher pass each have their own
    name; none is a schedule's job.enqueued, job.enqueue_dropped or tick.duration."""
    m = Metrics(send_to_sentry=False)
    m.record_watch(
        _watch_report(
            Accepted("a", "1"),
            Dropped("b", DropReason.ALREADY_QUEUED),
            Dropped("c", DropReason.ALREADY_QUEUED),
            Dropped("d", DropReason.REEMIT_EXHAUSTED),
            Dropped("e", DropReason.POLICY_CONFLICT),
        )
    )
    labels = (("queue", "lane-ui"), ("watcher", "w"))
    assert m.counters == {
        ("watch.reemitted", labels): 1,
        ("watch.already_queued", labels): 2,
        ("job.reemit_exhausted", labels): 1,
        ("watch.reemit_dropped", (*labels[:1], ("reason", "policy_conflict"), labels[1])): 1,
    }
    assert [name for name, _ in m.histograms] == ["watch.duration"]


def test_a_watcher_pass_of_only_dedupes_counts_no_drop() -> None:
    """The normal pass (every entity's job still waits) adds nothing an alert on drops would see."""
    m = Metrics(send_to_sentry=False)
    m.record_watch(_watch_report(Dropped("b", DropReason.ALREADY_QUEUED)))
    assert [name for name, _ in m.counters] == ["watch.already_queued"]
    assert "dropped" not in "".join(line for line in render_prometheus(m).splitlines() if line[:1] != "#")
