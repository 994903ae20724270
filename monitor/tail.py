"""What `monitor tail` reads: the records of some topics, from a start, across outages.

`TailReader.records()` yields Kafka records forever:

- **It waits for the broker.** Until Kafka answers (and has the topics), it
  says once `waiting for Kafka at HOST:PORT ...` and tries again every second;
  `monitor tail` started together with `monitor run` just waits.
- **It starts where asked:** the last `backlog` records of each partition (the
  CLI prints the last N statements of those), or every retained record
  (`from_beginning`), or the first record at or after a time (`since`).
- **It survives restarts.** It reads by explicit assignment (no group), keeps
  the next offset of every partition, and when the broker stops answering it
  reconnects and resumes there. An embedded broker keeps nothing across a
  restart: its log starts again at offset 0. The reader recognises this (the
  record before its position is gone or different, or the log now ends before
  its position) and reads the new log from its start, so it neither misses the
  new events nor repeats old ones (the CLI also drops an event id it printed).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

__all__ = ["TailReader"]

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"


class _BrokerLost(Exception):
    """The broker stopped answering: reconnect and resume."""


class _Reassign(Exception):
    """More partitions to follow: reconnect quietly and resume."""


class TailReader:
    """Records of `topics` from a start, resuming across broker and service restarts."""

    def __init__(
        self,
        topics: Sequence[str],
        *,
        bootstrap_servers: str,
        notify: Callable[[str], None],
        backlog: int = 10,
        from_beginning: bool = False,
        since: dt.datetime | None = None,
        retry: float = 1.0,
        idle_check: float = 2.0,
        kafka_options: dict[str, Any] | None = None,
    ) -> None:
        self.topics = list(topics)
        self.bootstrap = bootstrap_servers
        self._notify = notify
        self._backlog = max(backlog, 0)
        self._from_beginning = from_beginning
        self._since = since
        self._retry = retry
        self._idle_check = idle_check
        self._options = dict(kafka_options or {})
        self._positions: dict[TopicPartition, int] = {}  # next offset to read
        self._last: dict[TopicPartition, bytes] = {}  # digest of the record before it
        self.backlog_ends: dict[TopicPartition, int] = {}  # where the first start's backlog ends
        self._backlog_open: set[TopicPartition] = set()  # partitions still in their backlog
        self._missing: set[str] = set()  # topics not created yet: followed once they are
        self._connections: frozenset[int] = frozenset()  # the consumer's broker connections

    # -- the loop ----------------------------------------------------------------

    async def records(self) -> AsyncIterator[Record | None]:
        """Every record from the start, forever (cancel to stop). One None comes once the
        records that were already there at the start (the backlog) have all come."""
        first = True
        while True:
            consumer, partitions = await self._connect()
            try:
                if first:
                    await self._start(consumer, partitions)
                    for tp in partitions:  # resume here even if nothing is read before a restart
                        self._positions[tp] = await consumer.position(tp)
                    self._backlog_open = {
                        tp for tp in partitions if self._positions[tp] < self.backlog_ends[tp]}
                    first = False
                    if not self._backlog_open:
                        yield None
                else:
                    await self._resume(consumer, partitions)
                async for record in self._follow(consumer, partitions):
                    yield record
            except _Reassign:
                pass
            except (_BrokerLost, KafkaError, TimeoutError):
                self._notify(f"lost Kafka at {self.bootstrap}: reconnecting ...")
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()

    async def _connect(self) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
        said: set[str] = set()
        while True:
            consumer = AIOKafkaConsumer(**{
                **self._options, "bootstrap_servers": self.bootstrap, "group_id": None,
                "enable_auto_commit": False, "auto_offset_reset": "earliest",
            })
            try:
                await consumer.start()
                partitions = await self._partitions(consumer)
                if partitions:
                    return consumer, partitions
                why = f"no topic yet of {', '.join(self.topics)}"
            except (KafkaError, OSError, TimeoutError) as exc:
                why = type(exc).__name__
            with contextlib.suppress(Exception):
                await consumer.stop()
            if why not in said:
                self._notify(f"waiting for Kafka at {self.bootstrap} ({why}) ...")
                said.add(why)
            await asyncio.sleep(self._retry)

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        """Every partition of the topics that exist; the others are looked for while idle."""
        found: list[TopicPartition] = []
        self._missing = set()
        for topic in self.topics:
            numbers = consumer.partitions_for_topic(topic)
            if not numbers:
                await consumer._client.force_metadata_update()  # no public way to refresh
                numbers = consumer.partitions_for_topic(topic)
            if numbers:
                found += [TopicPartition(topic, n) for n in sorted(numbers)]
            else:
                self._missing.add(topic)
        return found

    # -- where to read -----------------------------------------------------------

    async def _start(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        self.backlog_ends = {tp: int(ends[tp]) for tp in partitions}
        if self._from_beginning:
            await consumer.seek_to_beginning(*partitions)
            return
        if self._since is not None:
            stamp = int(self._since.timestamp() * 1000)
            found = await consumer.offsets_for_times(dict.fromkeys(partitions, stamp))
            for tp in partitions:
                target = found.get(tp)
                consumer.seek(tp, target.offset if target is not None else ends[tp])
            return
        begins = await consumer.beginning_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, max(int(begins[tp]), int(ends[tp]) - self._backlog))

    async def _resume(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        """Back where we were; a partition whose log was replaced (an embedded broker
        restarted) or that is new is read from its start."""
        consumer.assign(partitions)
        for tp in partitions:
            position = self._positions.get(tp, 0)
            if position and await self._same_log(consumer, tp, position):
                consumer.seek(tp, position)
                continue
            if position:
                self._notify(
                    f"{tp.topic}[{tp.partition}]: the broker's log was replaced (a restarted "
                    "embedded broker keeps nothing): reading it from its start")
            await consumer.seek_to_beginning(tp)
            self._positions[tp] = 0

    async def _same_log(self, consumer: AIOKafkaConsumer, tp: TopicPartition,
                        position: int) -> bool:
        ends = await consumer.end_offsets([tp])
        if int(ends[tp]) < position:
            return False
        if tp not in self._last:
            return True  # nothing read from it yet: the log's length is all we can compare
        consumer.seek(tp, position - 1)
        batch = await consumer.getmany(tp, timeout_ms=5000, max_records=1)
        records = batch.get(tp) or []
        return bool(records) and records[0].offset == position - 1 and _digest(
            records[0]) == self._last.get(tp)

    # -- following ---------------------------------------------------------------

    async def _follow(
        self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
    ) -> AsyncIterator[Record | None]:
        loop = asyncio.get_running_loop()
        checked = loop.time()
        self._connections = _connections(consumer)
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            if batch and self._reconnected(consumer):
                raise _BrokerLost  # these may come from a new log: check it before reading on
            for tp, records in batch.items():
                for record in records:
                    self._positions[tp] = record.offset + 1
                    self._last[tp] = _digest(record)
                    yield record
                    if tp in self._backlog_open and record.offset + 1 >= self.backlog_ends[tp]:
                        self._backlog_open.discard(tp)
                        if not self._backlog_open:
                            yield None
            if batch:
                checked = loop.time()
            elif loop.time() - checked > self._idle_check:
                await self._check(consumer, partitions)
                checked = loop.time()

    def _reconnected(self, consumer: AIOKafkaConsumer) -> bool:
        """Whether a broker connection went away since the last look (then remember these)."""
        before, self._connections = self._connections, _connections(consumer)
        return bool(before - self._connections)

    async def _check(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        """While idle: is the broker there, and does its log still reach our position?

        A broker that restarted between two checks is seen by its connection: aiokafka
        reconnects silently, and the new log may already be longer than our position,
        so a connection that went away means "check the log before reading on"."""
        try:
            async with asyncio.timeout(5.0):
                ends = await consumer.end_offsets(partitions)
        except (KafkaError, TimeoutError) as exc:
            raise _BrokerLost from exc
        if self._reconnected(consumer):
            raise _BrokerLost
        for tp in partitions:
            position = self._positions.get(tp)
            if position is not None and int(ends[tp]) < position:
                raise _BrokerLost  # the log restarted below us: resume checks and rewinds
        if self._missing:
            await consumer._client.force_metadata_update()
            if any(consumer.partitions_for_topic(topic) for topic in self._missing):
                raise _Reassign  # a topic appeared: its partitions join, read from their start


def _digest(record: Record) -> bytes:
    return hashlib.sha256((record.key or b"") + b"\0" + (record.value or b"")).digest()


def _connections(consumer: AIOKafkaConsumer) -> frozenset[int]:
    """Identities of the consumer's open broker connections (aiokafka has no public view)."""
    return frozenset(id(conn) for conn in consumer._client._conns.values())
