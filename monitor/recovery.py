"""Recovery of a lost state store from the output topic.

An empty state store at start-up is a first start only if the output topic
agrees. When an operator loses the state volume (or SQLite loses its WAL in a
crash), the store comes back empty while the topic still holds what was
published. Treated as a first start, that would record every statement the
feeds show as "first sight": never published with `backfill: false` (so the
statements published while the service was down are lost), published again
with `backfill: true`.

So, before polling starts, `recover_from_topic` reads back the recent events of
the configured sources (from `kafka.topic` and the sources' own topics), bounded
by `state.recover_max_age` and `state.recover_max_events_per_partition`, and
records in the store what they say was published: each statement's id, entry
key (its guid, else its link, checked against the statement id), last version,
content hash, title, text and data, and the URLs it is known by. Its sources
are then "seen", each with a *horizon*: the detection time of the oldest event
read for it. At the source's next poll (see `FeedStep.record` → `EntryStep.record`):

- an entry the topic has is known, so it is not published again;
- an entry the topic lacks is published, unless the feed dates it before the
  horizon: such an entry was there before anything we read was published
  (recorded silently at first sight with `backfill: false`, or published
  longer ago than the bounds reach), so it is recorded silently.

The horizon goes once that poll is recorded in full. Coordinated instances skip
this: their store is the cache of the state topic and restored from it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from monitor.config import Config, KafkaConfig
from monitor.detect import url_keys
from monitor.events import EVENT_TYPE_RETRACTED, decode_record, parse_rfc3339, statement_key
from monitor.sinks.kafka import client_options
from monitor.state import RecoveredStatement, StateStore

__all__ = ["RecoveryReport", "TopicScan", "recover_from_topic"]

log = structlog.get_logger(__name__)

_RETRY_DELAY = 1.0  # seconds between attempts while the broker does not answer
_MAX_IDLE_FETCHES = 10  # empty fetches of 1 s in a row before a partition is given up


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """The figures of one recovery, as logged."""

    events_read: int
    statements_learned: int
    sources: int
    unmatched: int  # events whose entry key could not be told from the statement id
    seconds: float


class TopicScan:
    """What the events read so far say was published, per statement (the last version)."""

    def __init__(self, source_ids: Iterable[str], *, since: float) -> None:
        self._sources = set(source_ids)
        self.since = since
        self.events_read = 0
        self.unmatched = 0
        self.latest: dict[str, RecoveredStatement] = {}
        self.horizons: dict[str, float] = {}

    def add(self, value: bytes | None, timestamp_ms: int | None) -> None:
        """One record of the topic; records not ours or too old are skipped."""
        if value is None:
            return
        try:
            document = decode_record(value)
        except ValueError:
            return
        data = document.get("data")
        if not isinstance(data, dict) or data.get("source_id") not in self._sources:
            return
        detected = _unix(data.get("detected_at")) or (timestamp_ms or 0) / 1000 or None
        if detected is None or detected < self.since:
            return
        self.events_read += 1
        source_id = str(data["source_id"])
        self.horizons[source_id] = min(self.horizons.get(source_id, detected), detected)
        row = self._row(source_id, data, document, detected)
        if row is None:
            self.unmatched += 1
            return
        known = self.latest.get(row.statement_id)
        if known is None or row.version >= known.version:
            self.latest[row.statement_id] = row

    def _row(
        self, source_id: str, data: dict[str, Any], document: dict[str, Any], detected: float
    ) -> RecoveredStatement | None:
        statement_id = data.get("statement_id")
        # The entry key is the entry's guid, else its link: the one whose key is the id.
        entry_key = next(
            (
                key
                for key in (data.get("guid"), data.get("url"), document.get("subject"))
                if isinstance(key, str) and statement_key(source_id, key) == statement_id
            ),
            None,
        )
        if entry_key is None or not isinstance(data.get("content_hash"), str):
            return None
        retracted = document.get("type") == EVENT_TYPE_RETRACTED
        url = data.get("url") if isinstance(data.get("url"), str) else None
        return RecoveredStatement(
            statement_id=str(statement_id),
            source_id=source_id,
            entry_key=entry_key,
            url=url,
            content_hash=str(data["content_hash"]),
            version=int(data.get("version") or 1),
            detected_at=detected,
            title=data.get("title"),
            text=data.get("text"),
            data={k: v for k, v in data.items() if k != "changes"},
            retracted_at=(_unix(data.get("retracted_at")) or detected) if retracted else None,
            url_keys=url_keys(url, entry_key if entry_key != data.get("guid") else None),
        )


async def recover_from_topic(
    config: Config, store: StateStore, *, bootstrap_servers: str, kafka: KafkaConfig
) -> RecoveryReport | None:
    """Learn back what was published if the store is empty; None if nothing was to learn.

    Retries while the broker does not answer, up to `state.recover_timeout`; then
    logs an error and lets the service start as on a first start.
    """
    state = config.state
    sources = config.resolved_sources()
    if (
        not state.recover_from_topic
        or config.coordination is not None
        or not sources
        or not store.is_empty()
    ):
        return None
    topics = sorted({config.kafka.topic, *(s.topic for s in sources)})
    started = time.monotonic()
    deadline = started + state.recover_timeout
    while True:
        scan = TopicScan((s.id for s in sources), since=time.time() - state.recover_max_age)
        try:
            await _read(scan, topics, state.recover_max_events_per_partition,
                        client_options(kafka, bootstrap_servers),
                        connect_timeout=max(deadline - time.monotonic(), _RETRY_DELAY))
            break
        except (KafkaError, OSError, TimeoutError) as exc:
            if time.monotonic() + _RETRY_DELAY > deadline:
                log.error(
                    "state_recovery_failed",
                    error=str(exc) or type(exc).__name__,
                    topics=topics,
                    note="the state store is empty and the output topic could not be read: "
                    "starting as on a first start (see state.recover_timeout)",
                )
                return None
            await asyncio.sleep(_RETRY_DELAY)
    if scan.latest or scan.horizons:
        store.recover_statements(list(scan.latest.values()), scan.horizons)
    report = RecoveryReport(
        events_read=scan.events_read,
        statements_learned=len(scan.latest),
        sources=len(scan.horizons),
        unmatched=scan.unmatched,
        seconds=round(time.monotonic() - started, 3),
    )
    if scan.horizons:
        log.warning(
            "state_recovered_from_topic",
            topics=topics,
            events_read=report.events_read,
            statements_learned=report.statements_learned,
            sources=report.sources,
            unmatched=report.unmatched,
            seconds=report.seconds,
        )
    else:
        log.info("state_first_start", topics=topics, note="the output topic holds no event "
                 "of the configured sources")
    return report


async def _read(scan: TopicScan, topics: list[str], per_partition: int,
                options: dict[str, Any], *, connect_timeout: float) -> None:
    """Read the tail of every partition of `topics` into `scan`.

    Connecting is bounded by `connect_timeout` (a broker that drops packets would
    hold it for the request timeout); reading, once connected, is not."""
    consumer = AIOKafkaConsumer(
        **options, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    try:
        async with asyncio.timeout(connect_timeout):
            await consumer.start()
            await consumer.topics()  # fetch metadata: partitions_for_topic reads its cache
    except BaseException:
        await consumer.stop()
        raise
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return
        consumer.assign(partitions)
        starts, ends = await _bounds(consumer, partitions, per_partition, scan)
        pending = set()
        for tp in partitions:
            if starts[tp] < ends[tp]:
                consumer.seek(tp, starts[tp])
                pending.add(tp)
        idle = 0
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=1000)
            for messages in batch.values():
                for message in messages:
                    scan.add(message.value, message.timestamp)
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
            # A partition that stops short of its end offset (records gone under a
            # retention run while we read) must not hold the start-up for ever.
            idle = 0 if batch else idle + 1
            if idle >= _MAX_IDLE_FETCHES:
                log.warning("state_recovery_partitions_short",
                            partitions=sorted(f"{tp.topic}:{tp.partition}" for tp in pending))
                break
    finally:
        await consumer.stop()


async def _bounds(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition], per_partition: int,
    scan: TopicScan,
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """(first offset to read, end offset) per partition: the last `per_partition`
    records, and none older than the age bound when the broker can tell by time."""
    ends = await consumer.end_offsets(partitions)
    beginnings = await consumer.beginning_offsets(partitions)
    starts = {tp: max(beginnings[tp], ends[tp] - per_partition) for tp in partitions}
    try:
        by_time = await consumer.offsets_for_times(
            {tp: int(scan.since * 1000) for tp in partitions}
        )
    except (KafkaError, ValueError) as exc:  # a broker without timestamp lookups
        log.info("state_recovery_no_time_index", error=str(exc))
        return starts, ends
    for tp in partitions:
        found = by_time.get(tp)
        if found is not None:  # None: no record that recent, or no index; read by count
            starts[tp] = max(starts[tp], found.offset)
    return starts, ends


def _unix(value: object) -> float | None:
    """Unix time of an RFC 3339 string, or None."""
    moment = parse_rfc3339(value)
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()
