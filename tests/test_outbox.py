"""The outbox: durable until acknowledged, per-key order, backpressure, and the real broker."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from monitor.config import KafkaConfig
from monitor.errors import BrokerRefusedError, RecordRejectedError, SinkError
from monitor.outbox import OutboxRelay, acked_prefix
from monitor.sinks.kafka import KafkaSink
from monitor.state import NewStatementRow, OutboxRecord, StateStore, Validators
from tests.conftest import EventReader


def row(n: int, key: str = "k") -> NewStatementRow:
    return NewStatementRow(
        statement_id=f"{key}-{n}", source_id="src", entry_key=f"e{n}", url=None,
        content_hash="sha256:" + "0" * 64, version=1, detected_at=0.0, event_id=f"id-{n}",
        topic="t", key=key.encode(), value=f'{{"n": {n}}}'.encode(),
        headers=(("content-type", b"application/cloudevents+json"),),
    )


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    store = StateStore(tmp_path / "state.db")
    store.open()
    return store


class FlakySink:
    """A sink that refuses the records whose value is in `refuse`."""

    def __init__(self) -> None:
        self.refuse: set[bytes] = set()
        self.down = False
        self.sent: list[bytes] = []

    async def start(self) -> None: ...
    async def stop(self) -> None: ...

    async def check(self) -> None:
        if self.down:
            raise SinkError("down")

    async def send(self, records: Sequence[OutboxRecord]) -> list[BaseException | None]:
        if self.down:
            raise SinkError("broker down")
        outcomes: list[BaseException | None] = []
        for record in records:
            if record.value in self.refuse:
                outcomes.append(SinkError("refused"))
            else:
                self.sent.append(record.value)
                outcomes.append(None)
        return outcomes

    async def dead_letter(self, record: OutboxRecord, error: RecordRejectedError) -> None:
        raise SinkError("no dead-letter topic here")


class PoisonSink(FlakySink):
    """Refuses for good, as a broker does, the whole batch that holds a poison value."""

    def __init__(self) -> None:
        super().__init__()
        self.poison: set[bytes] = set()
        self.dead: list[tuple[bytes, str]] = []
        self.dead_letter_refused = False
        self.dead_letter_down = False

    async def send(self, records: Sequence[OutboxRecord]) -> list[BaseException | None]:
        if any(r.value in self.poison for r in records):
            return [RecordRejectedError("invalid_record", "INVALID_RECORD")] * len(records)
        return await super().send(records)

    async def dead_letter(self, record: OutboxRecord, error: RecordRejectedError) -> None:
        if self.dead_letter_down:
            raise SinkError("broker down")
        if self.dead_letter_refused:
            raise RecordRejectedError("unauthorized", "TopicAuthorizationFailed")
        self.dead.append((record.value, error.reason))


def test_acked_prefix_keeps_later_records_of_a_failed_key() -> None:
    records = [OutboxRecord(seq=i, event_id=str(i), statement_id=str(i), source_id="s", topic="t",
                            key=k.encode(), value=b"", headers=(), created_at=0.0)
               for i, k in enumerate(["a", "b", "a", "c"])]
    outcomes: list[BaseException | None] = [SinkError("x"), None, None, None]
    assert [r.seq for r in acked_prefix(records, outcomes)] == [1, 3]


def test_rows_survive_a_reopen_until_acknowledged(tmp_path: Path, store: StateStore) -> None:
    store.record_statement(row(1))
    store.record_statement(row(2))
    store.close()
    reopened = StateStore(tmp_path / "state.db")
    reopened.open()
    batch = reopened.outbox_batch(10)
    assert [r.event_id for r in batch] == ["id-1", "id-2"]
    reopened.outbox_acked(batch[:1])
    assert [r.event_id for r in reopened.outbox_batch(10)] == ["id-2"]


def test_validators_live_in_memory_and_on_disk(tmp_path: Path, store: StateStore) -> None:
    assert not store.has_seen("src")
    store.save_validators("src", Validators('"e1"', "Mon, 01 Jan 2024 00:00:00 GMT", "h"))
    store.close()
    reopened = StateStore(tmp_path / "state.db")
    reopened.open()
    assert reopened.has_seen("src")
    assert reopened.validators("src").etag == '"e1"'


async def test_relay_waits_out_an_outage_and_keeps_key_order(store: StateStore) -> None:
    sink = FlakySink()
    sink.down = True
    relay = OutboxRelay(store, sink, max_pending=100, min_backoff=0.01, max_backoff=0.05)
    task = asyncio.create_task(relay.run())
    for n in range(1, 4):
        store.record_statement(row(n))
        relay.notify()
    await asyncio.sleep(0.2)
    assert sink.sent == [] and store.outbox_stats()[0] == 3 and not relay.broker_ok
    sink.down = False
    for _ in range(100):
        if store.outbox_stats()[0] == 0:
            break
        await asyncio.sleep(0.02)
    relay.stop()
    await task
    assert sink.sent == [b'{"n": 1}', b'{"n": 2}', b'{"n": 3}']
    assert relay.broker_ok


async def test_a_refused_record_holds_back_its_key_but_not_others(store: StateStore) -> None:
    sink = FlakySink()
    sink.refuse = {b'{"n": 1}'}
    store.record_statement(row(1, key="a"))
    store.record_statement(row(2, key="b"))
    store.record_statement(row(3, key="a"))
    relay = OutboxRelay(store, sink, max_pending=100)
    assert await relay.drain(timeout=0.3) is False
    assert [r.event_id for r in store.outbox_batch(10)] == ["id-1", "id-3"]
    sink.refuse.clear()
    assert await relay.drain(timeout=1.0) is True
    # Resent after its elder: the last copy a consumer sees of key "a" is the newest.
    last_of_a = [v for v in sink.sent if v in {b'{"n": 1}', b'{"n": 3}'}][-1]
    assert last_of_a == b'{"n": 3}'
    assert sink.sent.index(b'{"n": 1}') < len(sink.sent) - 1 - sink.sent[::-1].index(b'{"n": 3}')


async def test_backpressure_when_the_outbox_is_full(store: StateStore) -> None:
    sink = FlakySink()
    sink.down = True
    relay = OutboxRelay(store, sink, max_pending=2)
    for n in (1, 2):
        store.record_statement(row(n))
        relay.notify()
    waiter = asyncio.create_task(relay.wait_for_room())
    await asyncio.sleep(0.05)
    assert not waiter.done()
    sink.down = False
    await relay.drain(timeout=1.0)
    await asyncio.wait_for(waiter, 1.0)


async def test_kafka_sink_publishes_with_acks(kafka_bootstrap: str, topic: str, store: StateStore) -> None:
    sink = KafkaSink(KafkaConfig(bootstrap_servers=kafka_bootstrap, topic=topic, enable_idempotence=False),
                     bootstrap_servers=kafka_bootstrap, topics=[topic])
    store.record_statement(_with_topic(row(1), topic))
    relay = OutboxRelay(store, sink, max_pending=10)
    assert await relay.drain(timeout=10) is True
    await sink.stop()
    events = await EventReader(kafka_bootstrap, topic).read(1, validate=False)  # raw values
    assert events == [{"n": 1}]


async def test_a_broker_without_idempotence_is_named_clearly(kafka_bootstrap: str, topic: str,
                                                             idempotence: bool) -> None:
    if idempotence:
        pytest.skip("this broker supports idempotent producers")
    sink = KafkaSink(KafkaConfig(bootstrap_servers=kafka_bootstrap, topic=topic, enable_idempotence=True),
                     bootstrap_servers=kafka_bootstrap, topics=[topic])
    record = OutboxRecord(seq=1, event_id="x", statement_id="x", source_id="s", topic=topic, key=b"k",
                          value=b"{}", headers=(), created_at=0.0)
    with pytest.raises(BrokerRefusedError, match=r"enable_idempotence: false"):
        await asyncio.wait_for(sink.send([record]), 20)
    await sink.stop()


def _with_topic(r: NewStatementRow, topic: str) -> NewStatementRow:
    from dataclasses import replace

    return replace(r, topic=topic)


def value(n: int) -> bytes:
    return f'{{"n": {n}}}'.encode()


async def test_a_poison_record_is_dead_lettered_alone_and_the_rest_flow(
        store: StateStore) -> None:
    """The broker refuses the whole batch; sent one at a time, only the poison is refused."""
    from monitor import metrics
    from tests.conftest import counter

    sink = PoisonSink()
    sink.poison = {value(2)}
    for n, key in enumerate(["a", "a", "a", "b"], start=1):
        store.record_statement(row(n, key=key))
    relay = OutboxRelay(store, sink, max_pending=100)
    before = counter(metrics.EVENTS_DEAD_LETTERED, reason="invalid_record")
    published = counter(metrics.EVENTS_PUBLISHED, source_id="src")
    assert await relay.drain(timeout=2.0) is True
    assert sink.dead == [(value(2), "invalid_record")]
    assert sink.sent == [value(1), value(3), value(4)]  # in order, the poison left out
    assert counter(metrics.EVENTS_DEAD_LETTERED, reason="invalid_record") == before + 1
    assert counter(metrics.EVENTS_PUBLISHED, source_id="src") == published + 3
    assert relay.broker_ok and relay.pending == 0


async def test_a_refused_dead_letter_drops_the_row_and_never_blocks(store: StateStore) -> None:
    from monitor import metrics
    from tests.conftest import counter

    sink = PoisonSink()
    sink.poison = {value(1)}
    sink.dead_letter_refused = True
    store.record_statement(row(1))
    store.record_statement(row(2))
    before = counter(metrics.EVENTS_DROPPED, reason="invalid_record")
    relay = OutboxRelay(store, sink, max_pending=100)
    assert await relay.drain(timeout=2.0) is True
    assert sink.sent == [value(2)] and sink.dead == []
    assert counter(metrics.EVENTS_DROPPED, reason="invalid_record") == before + 1
    assert relay.broker_ok


async def test_a_dead_letter_that_fails_for_now_keeps_the_row(store: StateStore) -> None:
    sink = PoisonSink()
    sink.poison = {value(1)}
    sink.dead_letter_down = True
    store.record_statement(row(1))
    store.record_statement(row(2))
    relay = OutboxRelay(store, sink, max_pending=100)
    assert await relay.drain(timeout=0.3) is False
    assert [r.event_id for r in store.outbox_batch(10)] == ["id-1", "id-2"]
    sink.dead_letter_down = False
    assert await relay.drain(timeout=2.0) is True
    assert sink.dead == [(value(1), "invalid_record")] and sink.sent == [value(2)]


async def test_a_broker_failure_in_the_one_at_a_time_pass_keeps_what_it_settled(
        store: StateStore) -> None:
    """Rows dead-lettered or acknowledged before the broker failed are not sent again."""
    sink = PoisonSink()
    sink.poison = {value(1)}
    for n, key in enumerate(["a", "b", "c"], start=1):
        store.record_statement(row(n, key=key))
    original = sink.send
    singles: list[bytes] = []

    async def send(records: Sequence[OutboxRecord]) -> list[BaseException | None]:
        if len(records) == 1:
            singles.append(records[0].value)
            if len(singles) == 3:  # the third record alone: the broker goes away
                sink.down = True
        return await original(records)

    sink.send = send  # type: ignore[method-assign]
    relay = OutboxRelay(store, sink, max_pending=100)
    assert await relay.drain(timeout=0.3) is False
    assert sink.dead == [(value(1), "invalid_record")] and sink.sent == [value(2)]
    assert [r.event_id for r in store.outbox_batch(10)] == ["id-3"]
    assert not relay.broker_ok
    sink.down = False
    assert await relay.drain(timeout=2.0) is True
    assert sink.dead == [(value(1), "invalid_record")]  # never twice
    assert sink.sent == [value(2), value(3)]
