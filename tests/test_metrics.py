"""`metrics.SourceGauge`: per-source gauges in one dict, exposed as ordinary gauges."""

from __future__ import annotations

import tracemalloc

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from monitor import metrics


def test_a_source_gauge_is_exposed_as_a_gauge_family() -> None:
    registry = CollectorRegistry()
    gauge = metrics.SourceGauge("test_source_backoff_seconds", "Backoff of a source.", registry)
    gauge.labels(source_id="mfa").set(30)
    gauge.labels(source_id="mod").set(0.5)
    text = generate_latest(registry).decode()
    assert "# HELP test_source_backoff_seconds Backoff of a source.\n" in text
    assert "# TYPE test_source_backoff_seconds gauge\n" in text
    assert 'test_source_backoff_seconds{source_id="mfa"} 30.0\n' in text
    assert 'test_source_backoff_seconds{source_id="mod"} 0.5\n' in text
    assert registry.get_sample_value("test_source_backoff_seconds", {"source_id": "mfa"}) == 30


def test_removing_a_source_drops_its_sample_only() -> None:
    registry = CollectorRegistry()
    gauge = metrics.SourceGauge("test_source_interval_seconds", "Interval.", registry)
    for source_id in ("a", "b"):
        gauge.labels(source_id=source_id).set(60)
    gauge.remove("a")
    assert registry.get_sample_value("test_source_interval_seconds", {"source_id": "a"}) is None
    assert gauge.value(source_id="a") == 0.0  # unset reads as a fresh child would
    assert gauge.value(source_id="b") == 60
    with pytest.raises(KeyError):
        gauge.remove("a")


def test_the_names_are_checked_at_registration() -> None:
    registry = CollectorRegistry()
    metrics.SourceGauge("test_duplicate_seconds", "One.", registry)
    with pytest.raises(ValueError, match="Duplicated"):
        metrics.SourceGauge("test_duplicate_seconds", "Two.", registry)


def test_ten_thousand_sources_cost_a_few_megabytes() -> None:
    """The point of it: prometheus_client's children cost 650 bytes a source and gauge."""
    registry = CollectorRegistry()
    gauges = [metrics.SourceGauge(f"test_gauge_{n}", "G.", registry) for n in range(7)]
    ids = [f"ministry-{n}" for n in range(10_000)]
    tracemalloc.start()
    try:
        for gauge in gauges:
            for source_id in ids:
                gauge.labels(source_id=source_id).set(1.5)
        used, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert used < 8_000_000  # 70,000 values; prometheus_client's children: 45 MB


def test_a_source_counter_is_exposed_as_a_counter_family() -> None:
    registry = CollectorRegistry()
    polls = metrics.SourceCounter("test_polls", "Polls.", ["source_id", "outcome"], registry)
    polls.labels(source_id="mfa", outcome="ok").inc()
    polls.labels(source_id="mfa", outcome="ok").inc(2)
    polls.labels(source_id="mod", outcome="not_modified")  # a label set seen, not counted yet
    text = generate_latest(registry).decode()
    assert "# TYPE test_polls_total counter\n" in text  # as prometheus_client writes a Counter
    assert 'test_polls_total{outcome="ok",source_id="mfa"} 3.0\n' in text
    assert 'test_polls_total{outcome="not_modified",source_id="mod"} 0.0\n' in text
    assert registry.get_sample_value("test_polls_created", {"source_id": "mfa", "outcome": "ok"})
    assert polls.value(source_id="mfa", outcome="ok") == 3
    assert polls.value(source_id="nobody", outcome="ok") == 0
    with pytest.raises(ValueError, match="non-negative"):
        polls.labels(source_id="mfa", outcome="ok").inc(-1)
    with pytest.raises(ValueError, match="labels are"):
        polls.labels(source_id="mfa")
