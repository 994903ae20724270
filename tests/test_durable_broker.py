"""The durable test broker keeps what it acknowledged across `kill -9` and a restart."""

from __future__ import annotations

import json

import pytest
from aiokafka import AIOKafkaProducer

from tests.conftest import EventReader
from tests.durable_broker import DurableBroker

pytestmark = pytest.mark.integration


async def test_records_survive_a_kill_9_of_the_durable_broker(
        durable_broker: DurableBroker, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=durable_broker.bootstrap_servers,
                                acks="all", enable_idempotence=False)
    await producer.start()
    try:
        for n in range(10):
            await producer.send_and_wait(topic, json.dumps({"n": n}).encode(), key=b"k")
    finally:
        await producer.stop()
    durable_broker.kill9()
    assert not durable_broker.running
    durable_broker.restart()
    documents = await EventReader(durable_broker.bootstrap_servers, topic).read(
        10, timeout=30, settle=0.5, validate=False)
    assert sorted(d["n"] for d in documents) == list(range(10))
