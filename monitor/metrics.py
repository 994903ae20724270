"""Every Prometheus metric of statement-monitor, defined in one place.

Naming rule: `statement_monitor_<name>_<unit>[_total]`, base units (seconds,
bytes), and bounded labels only: `source_id` (from the config), `outcome`,
`reason`, `stage`, `kind`. A URL is never a label.

Histograms carry no `source_id`: with ten thousand sources, buckets per source
would cost more series than the service is worth. Per-source health lives in
counters and gauges.

This module is a little over 500 lines on purpose: one place to read every
metric's name, help and labels (Vector's "telemetry has one home") is worth
more than a split by stage.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

__all__ = [
    "BROKER_UP",
    "BUILD_INFO",
    "COORDINATION_REBALANCES",
    "COORDINATION_SHARDS",
    "COORDINATION_SOURCES",
    "ENRICHMENT_FAILURES",
    "EVENTS_PUBLISHED",
    "EXTRACTION_FAILURES",
    "EXTRACTION_RULE_MISSES",
    "FEED_PARSES",
    "FETCH_DURATION",
    "FETCH_REFUSED",
    "INFLIGHT",
    "LAST_STATEMENT",
    "OUTBOX_OLDEST_AGE",
    "OUTBOX_PENDING",
    "PARSE_ERRORS",
    "POLLS",
    "POLL_DURATION",
    "POOL_WORKERS_REPLACED",
    "PUBLISH_FAILURES",
    "RECHECKS",
    "ROBOTS_DISALLOWED",
    "SCHEDULER_LAG",
    "SOURCES",
    "SOURCE_BACKOFF",
    "SOURCE_CONSECUTIVE_ERRORS",
    "SOURCE_EFFECTIVE_INTERVAL",
    "SOURCE_FAILING_SINCE",
    "SOURCE_INTERVAL",
    "SOURCE_LAST_POLL",
    "SOURCE_LAST_SUCCESS",
    "STATEMENTS_DEDUPLICATED",
    "STATEMENTS_DETECTED",
    "STATEMENTS_RECORDED_SILENTLY",
    "STATEMENTS_RETRACTED",
    "STATEMENTS_UPDATED",
    "STATE_RESTORE_DURATION",
    "STATE_RESTORE_FAILURES",
    "WATCHLIST_HITS",
    "WEBSUB_ACTIVE",
    "WEBSUB_NOTIFICATIONS",
    "WEBSUB_REQUESTS",
    "SourceCounter",
    "SourceCounterChild",
    "SourceGauge",
    "SourceGaugeChild",
    "SourceMetrics",
    "forget_source",
    "source_metrics",
]

_NS = "statement_monitor"

# Outcome of a poll: the HTTP status class that matters ("200", "304") or the
# kind of error ("timeout", "connect", "http_5xx", "too_large", "parse", ...).
class SourceCounter:
    """A counter by `source_id` (and a bounded label or two) for tens of thousands of sources.

    As `SourceGauge`, for counters: a prometheus_client child is 750 bytes with
    its creation time, here an entry in two dicts. The exposition is the same:
    `<name>_total` and `<name>_created` for each label set counted so far.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self._name = name.removesuffix("_total")
        self._documentation = documentation
        self._labelnames = tuple(labelnames)
        self._values: dict[tuple[str, ...], float] = {}
        self._created: dict[tuple[str, ...], float] = {}
        registry.register(self)

    type = "counter"

    @property
    def name(self) -> str:
        """The family's name, without `_total`."""
        return self._name

    @property
    def labelnames(self) -> tuple[str, ...]:
        return self._labelnames

    def labels(self, **labels: str) -> SourceCounterChild:
        if set(labels) != set(self._labelnames):
            raise ValueError(f"{self._name}: labels are {self._labelnames}, not {tuple(labels)}")
        key = tuple(str(labels[name]) for name in self._labelnames)
        if key not in self._values:
            self._values[key] = 0.0
            self._created[key] = time.time()
        return SourceCounterChild(self._values, key)

    def value(self, **labels: str) -> float:
        """The count for `labels`; 0 when never counted."""
        return self._values.get(tuple(str(labels[name]) for name in self._labelnames), 0.0)

    def describe(self) -> list[Metric]:
        return [CounterMetricFamily(self._name, self._documentation, labels=self._labelnames)]

    def collect(self) -> list[Metric]:
        family = CounterMetricFamily(self._name, self._documentation, labels=self._labelnames)
        created = self._created
        for key, value in list(self._values.items()):  # a copy: never torn by a writer
            family.add_metric(key, value, created=created.get(key))
        return [family]


class SourceCounterChild:
    """One label set's handle on a `SourceCounter`, as `Counter.labels()` gives one."""

    __slots__ = ("_key", "_values")

    def __init__(self, values: dict[tuple[str, ...], float], key: tuple[str, ...]) -> None:
        self._values = values
        self._key = key

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("counters can only be incremented by non-negative amounts")
        self._values[self._key] = self._values.get(self._key, 0.0) + amount


class SourceGauge:
    """A gauge by `source_id` for tens of thousands of sources: one float a source.

    prometheus_client keeps a child object per label value, with its own lock
    and value holder: 650 bytes each (tracemalloc), so the seven per-source
    gauges of 10,000 sources took 45 MB of the service's memory. Here a
    source's value is one entry in a dict (21 bytes), exported by `collect()` at
    scrape time in the same exposition (a `gauge` family, one sample per source
    that has a value).
    """

    def __init__(self, name: str, documentation: str, registry: CollectorRegistry = REGISTRY):
        self._name = name
        self._documentation = documentation
        self._values: dict[str, float] = {}
        registry.register(self)

    type = "gauge"
    labelnames = ("source_id",)

    @property
    def name(self) -> str:
        return self._name

    def labels(self, *, source_id: str) -> SourceGaugeChild:
        return SourceGaugeChild(self._values, source_id)

    def value(self, *, source_id: str) -> float:
        """The source's value; 0 when it has none (as a prometheus_client child starts)."""
        return self._values.get(source_id, 0.0)

    def remove(self, source_id: str) -> None:
        """Drop the source's sample; KeyError if it has none (as `Gauge.remove`)."""
        del self._values[source_id]

    def describe(self) -> list[Metric]:
        return [GaugeMetricFamily(self._name, self._documentation, labels=["source_id"])]

    def collect(self) -> list[Metric]:
        family = GaugeMetricFamily(self._name, self._documentation, labels=["source_id"])
        for source_id, value in list(self._values.items()):  # a copy: never torn by a writer
            family.add_metric([source_id], value)
        return [family]


class SourceGaugeChild:
    """One source's handle on a `SourceGauge`, as `Gauge.labels()` gives one."""

    __slots__ = ("_source_id", "_values")

    def __init__(self, values: dict[str, float], source_id: str) -> None:
        self._values = values
        self._source_id = source_id

    def set(self, value: float) -> None:
        self._values[self._source_id] = float(value)


POLLS = SourceCounter(
    f"{_NS}_polls",
    "Polls of a source, by outcome: 200, 304, or an error kind.",
    ["source_id", "outcome"],
)
FETCH_DURATION = Histogram(
    f"{_NS}_fetch_duration_seconds",
    "Duration of one HTTP fetch, by kind of document (feed or page).",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
FETCH_REFUSED = SourceCounter(
    f"{_NS}_fetch_refused",
    "Requests refused before connecting, by source and reason.",
    ["source_id", "reason"],
)
POLL_DURATION = Histogram(
    f"{_NS}_poll_duration_seconds",
    "Duration of one poll of a source: fetch, parse, detect, extract and record.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
SCHEDULER_LAG = Histogram(
    f"{_NS}_scheduler_lag_seconds",
    "How late a poll started against its due time.",
    buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
STATEMENTS_DETECTED = SourceCounter(
    f"{_NS}_statements_detected",
    "New statements detected and written to the outbox, by source.",
    ["source_id"],
)
STATEMENTS_RECORDED_SILENTLY = SourceCounter(
    f"{_NS}_statements_recorded_silently",
    "Entries found at a source's first sight with backfill off: recorded as seen, not published.",
    ["source_id"],
)
STATEMENTS_UPDATED = SourceCounter(
    f"{_NS}_statements_updated",
    "Edited statements (title or text changed) written to the outbox as .updated, by source.",
    ["source_id"],
)
STATEMENTS_RETRACTED = SourceCounter(
    f"{_NS}_statements_retracted",
    "Statements found withdrawn (404, 410, redirect home), written as .retracted, by source.",
    ["source_id"],
)
RECHECKS = SourceCounter(
    f"{_NS}_rechecks",
    "Re-checks of published statements' pages, by source and outcome: unchanged, updated, "
    "retracted, or a fetch error kind.",
    ["source_id", "outcome"],
)
EVENTS_PUBLISHED = SourceCounter(
    f"{_NS}_events_published",
    "Events acknowledged by the broker, by source.",
    ["source_id"],
)
PUBLISH_FAILURES = Counter(
    f"{_NS}_publish_failures",
    "Attempts to publish an event that the broker did not acknowledge, by reason.",
    ["reason"],
)
EXTRACTION_FAILURES = SourceCounter(
    f"{_NS}_extraction_failures",
    "Statement pages that could not be fetched or extracted, by source and reason; "
    'kind="page" for the page or the network, kind="internal" for a bug in extraction '
    "(reason: the step that failed; only that step was dropped).",
    ["source_id", "reason", "kind"],
)
EXTRACTION_RULE_MISSES = SourceCounter(
    f"{_NS}_extraction_rule_misses",
    "Pages on which a source's extraction rule matched nothing (generic extraction stood in), "
    "by rule: content_selector, title_selector, date_selector, remove_selectors.",
    ["source_id", "rule"],
)
ENRICHMENT_FAILURES = SourceCounter(
    f"{_NS}_enrichment_failures",
    "Statements published without quotes, speakers or watchlist matches because enrichment "
    "failed or timed out.",
    ["source_id"],
)
WATCHLIST_HITS = Counter(
    f"{_NS}_watchlist_hits",
    "Statement versions that matched a watchlist (each also goes to the watchlist's topic).",
    ["watchlist"],
)
STATEMENTS_DEDUPLICATED = SourceCounter(
    f"{_NS}_statements_deduplicated",
    "Entries found to be a statement already known through another source or feed "
    "(same canonical URL): recorded in data.sources, not published again.",
    ["source_id"],
)
FEED_PARSES = SourceCounter(
    f"{_NS}_feed_parses",
    "Fetched documents handed to the parser, by source. A 304 or an unchanged body costs none.",
    ["source_id"],
)
PARSE_ERRORS = SourceCounter(
    f"{_NS}_parse_errors",
    "Fetched feed documents from which no entries could be read, by source.",
    ["source_id"],
)
SOURCE_LAST_SUCCESS = SourceGauge(
    f"{_NS}_source_last_success_timestamp_seconds",
    "Unix time of the last poll of a source that got a usable answer (200 or 304).",
)
SOURCE_LAST_POLL = SourceGauge(
    f"{_NS}_source_last_poll_timestamp_seconds",
    "Unix time of the last poll of a source, whatever its outcome.",
)
SOURCE_CONSECUTIVE_ERRORS = SourceGauge(
    f"{_NS}_source_consecutive_errors",
    "Polls of a source that failed in a row; 0 when healthy.",
)
SOURCE_FAILING_SINCE = SourceGauge(
    f"{_NS}_source_failing_since_timestamp_seconds",
    "Unix time of the first failure in the current run of failures; 0 when healthy.",
)
SOURCE_BACKOFF = SourceGauge(
    f"{_NS}_source_backoff_seconds",
    "Delay until the next poll of a source beyond its interval, from backoff or Retry-After; "
    "0 when on schedule.",
)
SOURCE_EFFECTIVE_INTERVAL = SourceGauge(
    f"{_NS}_source_effective_interval_seconds",
    "The poll interval a source is on now, before jitter, backoff and cache floors: "
    "the configured one, or the adapted one for `interval: {min, max}`.",
)
ROBOTS_DISALLOWED = SourceCounter(
    f"{_NS}_robots_disallowed",
    "Requests not made because robots.txt disallows them, by source and kind (feed, page).",
    ["source_id", "kind"],
)
SOURCE_INTERVAL = SourceGauge(
    f"{_NS}_source_interval_seconds",
    "The configured poll interval of a source, for staleness alerts.",
)
LAST_STATEMENT = Gauge(
    f"{_NS}_last_statement_timestamp_seconds",
    "Unix time at which the broker last acknowledged a statement event.",
)
INFLIGHT = Gauge(
    f"{_NS}_inflight",
    "Work in flight, by stage: poll, extract, publish.",
    ["stage"],
)
POOL_WORKERS_REPLACED = Counter(
    f"{_NS}_pool_workers_replaced",
    "Pool workers killed or lost and replaced, by reason: deadline (a task overran "
    "extract.timeout), memory (a task hit extract.worker_memory_mb), lost (died).",
    ["reason"],
)
OUTBOX_PENDING = Gauge(
    f"{_NS}_outbox_pending",
    "Events durably recorded but not yet acknowledged by the broker.",
)
OUTBOX_OLDEST_AGE = Gauge(
    f"{_NS}_outbox_oldest_age_seconds",
    "Age of the oldest event waiting in the outbox; 0 when it is empty.",
)
BROKER_UP = Gauge(
    f"{_NS}_broker_up",
    "1 when the last contact with the Kafka broker succeeded, else 0.",
)
WEBSUB_NOTIFICATIONS = SourceCounter(
    f"{_NS}_websub_notifications",
    "Content pushed by a WebSub hub, by source and outcome: accepted, bad_signature, "
    "too_large, unknown (no such subscription; source_id is then 'unknown').",
    ["source_id", "outcome"],
)
WEBSUB_REQUESTS = Counter(
    f"{_NS}_websub_requests",
    "Subscribe and unsubscribe requests sent to WebSub hubs, by mode and outcome "
    "(accepted, refused, error, denied, verified; unsolicited: a verification or denial "
    "for no request of ours, answered 404).",
    ["mode", "outcome"],
)
WEBSUB_ACTIVE = Gauge(
    f"{_NS}_websub_active_subscriptions",
    "WebSub subscriptions verified by their hub and not yet expired.",
)
BUILD_INFO = Info(f"{_NS}_build", "Version of statement-monitor.")

# -- coordination (several instances sharing the sources; monitor/coordination.py) --
COORDINATION_SHARDS = Gauge(
    f"{_NS}_coordination_shards",
    "Shards (partitions of the control topic) this instance owns; 0 while it owns none.",
)
COORDINATION_SOURCES = Gauge(
    f"{_NS}_coordination_sources",
    "Sources this instance polls (those hashed into its shards).",
)
COORDINATION_REBALANCES = Counter(
    f"{_NS}_coordination_rebalances",
    "Rebalances of the coordination group seen by this instance (each assignment).",
)
STATE_RESTORE_DURATION = Histogram(
    f"{_NS}_state_restore_duration_seconds",
    "Time to restore the state of newly assigned shards from the state topic.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
)
STATE_RESTORE_FAILURES = Counter(
    f"{_NS}_state_restore_failures",
    "Restores of shard state from the state topic that failed (the shards are not polled "
    "until a restore succeeds).",
)

# Per-source gauges: what an instance shows of a source it polls. With coordination,
# a source that moves to another instance is forgotten here, so staleness alerts
# never fire for a source this instance no longer polls.
_PER_SOURCE_GAUGES = (
    SOURCE_LAST_SUCCESS,
    SOURCE_LAST_POLL,
    SOURCE_CONSECUTIVE_ERRORS,
    SOURCE_FAILING_SINCE,
    SOURCE_BACKOFF,
    SOURCE_EFFECTIVE_INTERVAL,
    SOURCE_INTERVAL,
)


class SourceMetrics:
    """One source's metric children on the poll path, looked up once and kept.

    `labels()` builds a key at every call (and prometheus_client's took a lock):
    per poll it was ~7 % of a 304 poll's CPU (py-spy, bench/unchanged_feeds.py,
    2026-11-25).
    """

    __slots__ = ("_outcomes", "last_poll", "last_success", "source_id")

    def __init__(self, source_id: str) -> None:
        self.source_id = source_id
        self.last_poll = SOURCE_LAST_POLL.labels(source_id=source_id)
        self.last_success = SOURCE_LAST_SUCCESS.labels(source_id=source_id)
        self._outcomes: dict[str, SourceCounterChild] = {}

    def polls(self, outcome: str) -> SourceCounterChild:
        """The `POLLS` child of this source and `outcome` (a bounded set)."""
        child = self._outcomes.get(outcome)
        if child is None:
            child = self._outcomes[outcome] = POLLS.labels(
                source_id=self.source_id, outcome=outcome
            )
        return child


_SOURCE_METRICS: dict[str, SourceMetrics] = {}


def source_metrics(source_id: str) -> SourceMetrics:
    """The kept metric children of a source; `forget_source` drops them."""
    found = _SOURCE_METRICS.get(source_id)
    if found is None:
        found = _SOURCE_METRICS[source_id] = SourceMetrics(source_id)
    return found


def forget_source(source_id: str) -> None:
    """Drop the per-source gauges of a source this instance stopped polling."""
    _SOURCE_METRICS.pop(source_id, None)  # its children are removed just below
    for gauge in _PER_SOURCE_GAUGES:
        with contextlib.suppress(KeyError):  # never set here
            gauge.remove(source_id)

# Events the broker refused for good (issue 13): bounded reasons, see
# `monitor.sinks.kafka.REJECTION_REASONS`.
EVENTS_DEAD_LETTERED = Counter(
    f"{_NS}_events_dead_lettered",
    "Events the broker refused for good (too large, invalid, not authorized), sent to the "
    "dead-letter topic <topic>.dlq instead, by reason.",
    ["reason"],
)
EVENTS_DROPPED = Counter(
    f"{_NS}_events_dropped",
    "Events the broker refused for good whose dead-letter record was refused too: logged "
    "and dropped, so they never block the events behind them, by reason.",
    ["reason"],
)
__all__ += ["EVENTS_DEAD_LETTERED", "EVENTS_DROPPED"]

STATE_ERRORS = Counter(
    f"{_NS}_state_errors",
    "Errors of the SQLite state store, by kind (disk_full, read_only, io, corrupt, other); "
    "any of them turns /readyz to 503 until a write succeeds again.",
    ["kind"],
)
__all__ += ["STATE_ERRORS"]

# --- the browser (monitor/fetch/browser.py, issue 17) ---------------------------------
BROWSER_PAGES = Counter(
    f"{_NS}_browser_pages",
    "Pages loaded in the headless browser, by outcome: ok, timeout (never settled), error.",
    ["outcome"],
)
BROWSER_RESTARTS = Counter(
    f"{_NS}_browser_restarts",
    "Browser replacements, by reason: crash, or pages (after browser.restart_after pages).",
    ["reason"],
)
__all__ += ["BROWSER_PAGES", "BROWSER_RESTARTS"]

# Source health at a glance (monitor/status.py): how many of this instance's sources
# are in each state. `healthy`: the last poll succeeded; `failing`: the last poll
# failed after an earlier success; `never_reached`: no poll succeeded since start.
SOURCES = Gauge(
    f"{_NS}_sources",
    "Sources of this instance by health: healthy, failing, never_reached.",
    ["state"],
)
