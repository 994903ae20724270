"""The embedded broker stops at once whoever is connected (issue 14: SIGTERM took 5.0 s
whenever a consumer was connected, against 0.1 s without one)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from monitor.sinks.embedded import EmbeddedBroker
from tests.conftest import free_port


@pytest.fixture
async def broker() -> AsyncIterator[EmbeddedBroker]:
    running = EmbeddedBroker(port=free_port())
    running.start()
    yield running
    running.stop()


async def _stop_seconds(broker: EmbeddedBroker) -> float:
    process = broker._process
    assert process is not None
    started = time.monotonic()
    broker.stop()
    elapsed = time.monotonic() - started
    assert process.poll() is not None  # gone, not left behind
    return elapsed


@pytest.mark.integration
async def test_stop_is_quick_with_a_consumer_connected(broker: EmbeddedBroker) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers,
                                enable_idempotence=False)
    await producer.start()
    await producer.send_and_wait("statements", b"{}", key=b"k")
    await producer.stop()
    consumer = AIOKafkaConsumer("statements", bootstrap_servers=broker.bootstrap_servers,
                                group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        assert await consumer.getmany(timeout_ms=5000)  # connected and fetching
        assert await _stop_seconds(broker) < 1.0
    finally:
        await consumer.stop()


@pytest.mark.integration
async def test_stop_without_clients_stays_quick(broker: EmbeddedBroker) -> None:
    assert await _stop_seconds(broker) < 1.0
