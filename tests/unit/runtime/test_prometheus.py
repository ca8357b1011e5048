"""`/metrics` text: counters and histograms from the in-process registry."""

from __future__ import annotations

from scheduler.observe.metrics import Metrics, render_prometheus


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
