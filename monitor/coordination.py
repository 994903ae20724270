"""Coordination: several instances split the sources through Kafka, and hand them over.

With `coordination.group_id` set, instances that share it divide the sources
between them using nothing but the Kafka they already publish to, the way
Kafka Connect's distributed workers do:

* **Shards.** Every source belongs to one of `coordination.shards` shards, by a
  stable hash of its site (host and port): two feeds of one site share a shard, so one
  instance polls a host (per-host politeness holds across instances) and
  recognises a statement carried by both feeds as one.
* **Membership.** Each shard is a partition of the *control topic*. Every
  instance joins one consumer group on it; the group's rebalance gives each
  partition, hence each shard, to exactly one live instance. Nothing is ever
  written to the control topic: it exists for its partitions.
* **Hand-over.** On a rebalance the group first revokes: the instance stops
  polling the revoked shards' sources, waits for their polls in flight, and
  writes out their state, all before it rejoins. Then it assigns: the new
  owner restores the shards' state from the state topic and starts polling.
  An instance that dies (`kill -9`) stops heartbeating; after
  `session_timeout` its shards are assigned to the others.
* **State that moves with a source.** The *state topic* (compacted, one
  partition per shard) holds, per source, its HTTP validators and, per entry,
  what the store knows of the statement (id, version, hash, fingerprint,
  whether published or retracted, the last published data). The local SQLite
  store is its cache: a new owner, or an instance on an empty disk, restores
  a shard by reading its partition from the beginning.

The order of writes keeps the promise of the outbox (no statement lost, none
published twice under different ids):

* a statement's record goes to the state topic only once the broker has
  acknowledged its event (the store's `acked_at`), so a new owner never skips
  a statement whose event is still in a dead instance's outbox: it extracts and
  publishes it again, under the same deterministic event id;
* a source's validators go only once nothing of the source waits in the
  outbox and all its statements' records are written, so a new owner never
  gets a 304 that hides an unpublished entry.

A crash between an acknowledgement and the state record costs a duplicate
with the same id, never a loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from monitor import metrics
from monitor.config import CoordinationConfig, KafkaConfig
from monitor.errors import MonitorError
from monitor.models import Source
from monitor.sinks.kafka import client_options
from monitor.statesync import StateRecord, StateSync, decode_state_record, encode_state_record

__all__ = ["CoordinationError", "Coordinator", "ShardMap", "shard_of"]

log = structlog.get_logger(__name__)

RESTORE_RETRY = 10.0  # seconds between attempts to restore a shard's state

SourcesCallback = Callable[[frozenset[str]], Awaitable[None]]


class CoordinationError(MonitorError):
    """The coordination topics or group cannot be used as configured."""


def shard_of(source: Source, shards: int) -> int:
    """The shard of a source: a stable hash of its site (host without `www.`, and the
    port when one is given), the same on every instance and every run."""
    parts = urlsplit(source.url)
    site = (parts.hostname or source.url).lower().removeprefix("www.")
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None:
        site = f"{site}:{port}"
    digest = hashlib.sha256(site.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shards


@dataclass(frozen=True, slots=True)
class ShardMap:
    """Which sources are in which shard, for one config."""

    shards: int
    by_shard: dict[int, frozenset[str]]
    shard_by_source: dict[str, int]

    @classmethod
    def of(cls, sources: Iterable[Source], shards: int) -> ShardMap:
        by_shard: dict[int, set[str]] = {}
        shard_by_source: dict[str, int] = {}
        for source in sources:
            shard = shard_of(source, shards)
            by_shard.setdefault(shard, set()).add(source.id)
            shard_by_source[source.id] = shard
        return cls(shards, {k: frozenset(v) for k, v in by_shard.items()}, shard_by_source)

    def sources_of(self, shards: Iterable[int]) -> frozenset[str]:
        return frozenset(s for shard in shards for s in self.by_shard.get(shard, ()))


# -- the coordinator ---------------------------------------------------------------


class Coordinator:
    """Group membership on the control topic, state restore and state write-out.

    `on_assigned` and `on_revoked` are told the source ids that become this
    instance's, or stop being; `on_revoked` must return only once no poll of
    those sources is in flight (the next owner may start as soon as it returns).
    """

    FLUSH_INTERVAL = 0.5  # seconds between write-outs of acknowledged state
    BATCH = 500  # state records per write-out

    def __init__(
        self,
        config: CoordinationConfig,
        kafka: KafkaConfig,
        *,
        bootstrap_servers: str,
        sources: Sequence[Source],
        store: StateSync,
        on_assigned: SourcesCallback,
        on_revoked: SourcesCallback,
    ) -> None:
        self._config = config
        self._kafka = kafka
        self._bootstrap = bootstrap_servers
        self._shard_map = ShardMap.of(sources, config.shards)
        self._store = store
        self._on_assigned = on_assigned
        self._on_revoked = on_revoked
        self._owned: frozenset[str] = frozenset()
        self._shards: frozenset[int] = frozenset()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._flush_lock = asyncio.Lock()
        # Shards revoked and written out by this instance in the current rebalance:
        # if they come back, the store already holds their freshest state.
        self._kept: frozenset[int] = frozenset()
        self._generation = 0  # rebalances seen; a retry of an older one gives up

    # -- lifecycle ----------------------------------------------------------

    @property
    def owned(self) -> frozenset[str]:
        """The source ids this instance polls now."""
        return self._owned

    @property
    def shards(self) -> frozenset[int]:
        return self._shards

    def owns(self, source_id: str) -> bool:
        return source_id in self._owned

    async def start(self) -> None:
        """Create the topics if needed, join the group; assignments follow in the background."""
        await self._ensure_topics()
        options = client_options(self._kafka, self._bootstrap)
        self._producer = AIOKafkaProducer(
            **options,
            acks="all",
            enable_idempotence=self._kafka.enable_idempotence,
            linger_ms=5,
        )
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            **options,
            group_id=self._config.group_id,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            session_timeout_ms=int(self._config.session_timeout * 1000),
            heartbeat_interval_ms=int(self._config.heartbeat_interval * 1000),
            # A restore runs inside the rebalance: give it the session's time and more.
            rebalance_timeout_ms=int(max(self._config.session_timeout, 60.0) * 1000),
        )
        self._consumer.subscribe([self._config.control], listener=_Listener(self))
        await self._consumer.start()
        self._tasks = [
            asyncio.create_task(self._stay_in_group(), name="coordination-membership"),
            asyncio.create_task(self._write_out_loop(), name="coordination-state"),
        ]
        log.info(
            "coordination_started",
            group_id=self._config.group_id,
            shards=self._config.shards,
            control_topic=self._config.control,
            state_topic=self._config.state,
        )

    async def stop(self, timeout: float = 8.0) -> None:
        """Hand the shards back within `timeout` seconds: stop polling them, write their
        state out (the caller drained the outbox first), then leave the group, so the
        next owners restore the freshest state there is."""
        deadline = asyncio.get_running_loop().time() + timeout

        def left() -> float:
            return max(deadline - asyncio.get_running_loop().time(), 0.1)

        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        owned = self._owned
        if owned:
            await self._on_revoked(owned)  # no poll of them in flight from here on
        try:
            await asyncio.wait_for(self.write_out(owned), timeout=left() / 2)
        except (KafkaError, OSError, TimeoutError) as exc:
            # The next owner re-extracts what it lacks: a duplicate, same id.
            log.warning("state_write_out_failed", error=str(exc) or type(exc).__name__)
        self._shards, self._owned = frozenset(), frozenset()
        self._report()
        consumer, self._consumer = self._consumer, None
        producer, self._producer = self._producer, None
        for name, client in (("consumer", consumer), ("producer", producer)):
            if client is None:
                continue
            try:
                await asyncio.wait_for(client.stop(), timeout=left())
            except (KafkaError, TimeoutError, OSError) as exc:
                log.warning("coordination_stop_failed", client=name, error=str(exc))
        log.info("coordination_stopped", group_id=self._config.group_id)

    # -- rebalances -----------------------------------------------------------

    async def _assign(self, shards: frozenset[int]) -> None:
        """Shards assigned: restore the state of those new to us, then poll their sources.

        Eager rebalancing revokes every shard first, so `shards` usually holds some
        this instance owned a moment ago: their state in the store is the freshest
        there is (this instance wrote it out), and they are not restored again."""
        metrics.COORDINATION_REBALANCES.inc()
        fresh = shards - self._kept
        self._kept = frozenset()
        if fresh and not await self._restore_or_retry(fresh):
            shards = shards - fresh
        await self._take(shards)

    async def _take(self, shards: frozenset[int]) -> None:
        sources = self._shard_map.sources_of(shards)
        self._shards = self._shards | shards
        self._owned = self._owned | sources
        self._report()
        log.info("shards_assigned", shards=sorted(self._shards), sources=len(self._owned))
        if sources:
            await self._on_assigned(sources)

    async def _restore_or_retry(self, shards: frozenset[int]) -> bool:
        """Restore now; on failure, count it and keep trying in the background (the
        shards stay unpolled meanwhile: a poll without its state would republish)."""
        try:
            await self._restore(shards)
            return True
        except (KafkaError, OSError, TimeoutError) as exc:
            metrics.STATE_RESTORE_FAILURES.inc()
            log.error(
                "state_restore_failed",
                shards=sorted(shards),
                error=str(exc),
                hint=f"the shards stay unpolled; retrying every {RESTORE_RETRY:.0f} s",
            )
        self._tasks.append(
            asyncio.create_task(self._retry_restore(shards), name="coordination-restore")
        )
        return False

    async def _retry_restore(self, shards: frozenset[int]) -> None:
        generation = self._generation
        while True:
            await asyncio.sleep(RESTORE_RETRY)
            if self._generation != generation:
                return  # a rebalance since: the shards were assigned afresh
            try:
                await self._restore(shards)
            except (KafkaError, OSError, TimeoutError) as exc:
                metrics.STATE_RESTORE_FAILURES.inc()
                log.error("state_restore_failed", shards=sorted(shards), error=str(exc))
                continue
            await self._take(shards)
            return

    async def _release(self, shards: frozenset[int]) -> None:
        """Shards taken away (or handed back at stop): stop polling, write state out."""
        self._generation += 1
        shards = shards & self._shards
        if not shards:
            return
        sources = self._shard_map.sources_of(shards)
        self._shards = self._shards - shards
        self._owned = self._owned - sources
        self._report()
        if sources:
            await self._on_revoked(sources)
            try:
                await asyncio.wait_for(self.write_out(sources), timeout=10)
                self._kept = self._kept | shards  # written out: fresh if they come back
            except (KafkaError, OSError, TimeoutError) as exc:
                # The next owner re-extracts what it lacks: a duplicate, same id.
                log.warning("state_write_out_failed", shards=sorted(shards), error=str(exc))
        log.info("shards_revoked", shards=sorted(shards), sources=len(self._owned))

    def _report(self) -> None:
        metrics.COORDINATION_SHARDS.set(len(self._shards))
        metrics.COORDINATION_SOURCES.set(len(self._owned))

    async def _stay_in_group(self) -> None:
        """Keep polling the (empty) control topic: a member that stops asking for records
        for `max_poll_interval` is put out of the group."""
        assert self._consumer is not None
        while True:
            try:
                await self._consumer.getmany(timeout_ms=1000)
            except asyncio.CancelledError:
                raise
            except KafkaError as exc:
                log.warning("coordination_poll_failed", error=str(exc))
                await asyncio.sleep(1.0)

    # -- the state topic --------------------------------------------------------

    async def _restore(self, shards: frozenset[int]) -> None:
        """Read the shards' partitions of the state topic from the beginning into the store."""
        started = time.monotonic()
        partitions = [TopicPartition(self._config.state, shard) for shard in sorted(shards)]
        consumer = AIOKafkaConsumer(
            **client_options(self._kafka, self._bootstrap),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            consumer.assign(partitions)
            ends = await consumer.end_offsets(partitions)
            await consumer.seek_to_beginning(*partitions)
            pending = {tp for tp in partitions if ends.get(tp, 0) > 0}
            restored = 0
            while pending:
                batch = await consumer.getmany(*pending, timeout_ms=1000)
                records: list[StateRecord] = []
                for messages in batch.values():
                    for message in messages:
                        record = decode_state_record(message.key or b"", message.value)
                        if record is not None:
                            records.append(record)
                if records:
                    self._store.restore(records)
                    restored += len(records)
                for tp in list(pending):
                    if await consumer.position(tp) >= ends[tp]:
                        pending.discard(tp)
            elapsed = time.monotonic() - started
            metrics.STATE_RESTORE_DURATION.observe(elapsed)
            log.info(
                "state_restored", shards=sorted(shards), records=restored, seconds=round(elapsed, 3)
            )
        finally:
            await consumer.stop()

    async def _write_out_loop(self) -> None:
        # The queries behind a write-out scan every statement of the owned sources
        # (38 ms with 100,000 statements): run them only when the store has written
        # something since the last write-out that completed.
        written_at = -1
        while True:
            await asyncio.sleep(self.FLUSH_INTERVAL)
            if self._store.writes == written_at:
                continue
            try:
                mark = self._store.writes
                await self.write_out(self._owned)
                written_at = mark
            except asyncio.CancelledError:
                raise
            except (KafkaError, OSError, TimeoutError) as exc:
                log.warning("state_write_out_failed", error=str(exc))

    async def write_out(self, source_ids: Iterable[str]) -> int:
        """Write the acknowledged state of these sources to the state topic; the count.

        Statements first, then validators of sources with nothing left in the outbox
        (see the module docstring for why the order matters)."""
        ids = sorted(source_ids)
        if not ids or self._producer is None:
            return 0
        written = 0
        async with self._flush_lock:
            while True:
                statements = self._store.unsynced_statements(ids, self.BATCH)
                if not statements:
                    break
                await self._send(statements)
                self._store.mark_statements_synced(statements)
                written += len(statements)
                if len(statements) < self.BATCH:
                    break
            validators = self._store.unsynced_validators(ids)
            if validators:
                await self._send(validators)
                self._store.mark_validators_synced(validators)
                written += len(validators)
        return written

    async def _send(self, records: Sequence[StateRecord]) -> None:
        assert self._producer is not None
        futures = []
        for record in records:
            key, value = encode_state_record(record)
            shard = self._shard_map.shard_by_source.get(record.source_id)
            if shard is None:
                continue  # a source that left the config: nothing will restore it
            futures.append(
                await self._producer.send(self._config.state, value, key=key, partition=shard)
            )
        await asyncio.gather(*futures)

    async def _ensure_topics(self) -> None:
        """The control and state topics, with one partition per shard (state: compacted)."""
        admin = AIOKafkaAdminClient(**client_options(self._kafka, self._bootstrap))
        await admin.start()
        try:
            wanted = {
                self._config.control: {},
                self._config.state: {"cleanup.policy": "compact"},
            }
            existing = set(await admin.list_topics())
            missing = [
                NewTopic(
                    name,
                    num_partitions=self._config.shards,
                    replication_factor=self._kafka.replication_factor,
                    topic_configs=configs,
                )
                for name, configs in wanted.items()
                if name not in existing
            ]
            if missing:
                with contextlib.suppress(TopicAlreadyExistsError):  # another instance's
                    await admin.create_topics(missing)
            await self._check_partitions(admin, list(wanted))
        finally:
            await admin.close()

    async def _check_partitions(self, admin: AIOKafkaAdminClient, topics: list[str]) -> None:
        for attempt in range(50):
            described = await admin.describe_topics(topics)
            counts = {
                d["topic"]: len(d["partitions"]) for d in described if d["error_code"] == 0
            }
            if len(counts) == len(topics):
                break
            await asyncio.sleep(0.1 * (attempt + 1) ** 0.5)
        else:
            raise CoordinationError(f"the coordination topics {topics} could not be created")
        for topic, count in counts.items():
            if count != self._config.shards:
                raise CoordinationError(
                    f"topic {topic} has {count} partitions but coordination.shards is "
                    f"{self._config.shards}: they must match (shards are its partitions). "
                    "Set coordination.shards to the topic's partition count, or use new "
                    "topics (coordination.control_topic / state_topic)."
                )


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """aiokafka awaits these inside a rebalance: revocation completes before rejoining."""

    def __init__(self, coordinator: Coordinator) -> None:
        self._coordinator = coordinator

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._coordinator._release(frozenset(tp.partition for tp in revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._coordinator._assign(frozenset(tp.partition for tp in assigned))
