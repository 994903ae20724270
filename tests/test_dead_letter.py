"""Oversize and poison events against the real broker (issue 13, section 2).

The test broker (tansu) has no message size limit of its own (its `broker`
command has no such option and it ignores a topic's `max.message.bytes`), so
the size limit here is the producer's: `kafka.max_request_size`, aiokafka's
`max_request_size`, which makes the real client raise MessageSizeTooLargeError
exactly as a broker's `message.max.bytes` refusal would be classified. A broker
that validates records against a schema (tansu's `--schema-registry`) gives the
broker-side refusal, INVALID_RECORD, for a whole produce batch.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import errors as aiokafka_errors
from prometheus_client import REGISTRY

from monitor import metrics
from monitor.config import KafkaConfig
from monitor.events import content_hash
from monitor.extract.article import extract_article
from monitor.outbox import OutboxRelay
from monitor.sinks.deadletter import REJECTION_REASONS, rejection
from monitor.sinks.embedded import broker_binary
from monitor.sinks.kafka import KafkaSink
from monitor.state import NewStatementRow, StateStore
from tests.conftest import (
    EventReader,
    counter,
    free_port,
    make_config,
    running,
    wait_until,
)
from tests.sites.feeds import Item, page, rss
from tests.sites.loopback import LoopbackSite

RSS = "application/rss+xml; charset=utf-8"
SENTENCE = "The ministry sets out, in this paragraph, the measures it takes and why. "


def long_paragraphs(count: int) -> list[str]:
    return [f"Paragraph {n}. " + SENTENCE * 13 for n in range(count)]  # about 1 kB each


class Feed:
    """A feed on the loopback site; `add` puts a page and an item at the top."""

    def __init__(self, site: LoopbackSite) -> None:
        self.site = site
        self.items: list[Item] = []
        self.pages: dict[str, str] = {}
        self._publish()

    def add(self, guid: str, paragraphs: list[str], title: str | None = None) -> str:
        title = title or f"Statement {guid}"
        html = page(title, paragraphs)
        url = self.site.put(f"/s/{guid}.html", html)
        self.pages[guid] = html
        self.items.insert(0, Item(title, url, guid=guid))
        self._publish()
        return url

    def _publish(self) -> None:
        self.site.put("/feed.xml", rss(self.items), content_type=RSS)


def short(n: int) -> list[str]:
    return [f"Statement {n} of the ministry, announced today with the details released."]


def broker_up() -> float | None:
    return REGISTRY.get_sample_value("statement_monitor_broker_up")


async def raw_records(bootstrap: str, topic: str, count: int, timeout: float) -> list[Any]:
    reader = EventReader(bootstrap, topic)
    await reader.read(count, timeout=timeout, validate=False)
    return reader.records


def service_config(tmp_path: Path, bootstrap: str, topic: str, site: LoopbackSite,
                   **kafka: Any) -> dict[str, Any]:
    config = make_config(
        tmp_path, bootstrap=bootstrap, topic=topic,
        sources=[{"id": "ministry", "url": site.url("/feed.xml"), "backfill": True,
                  "interval": 0.3}],
    )
    config["kafka"].update(kafka)
    return config


async def test_an_oversize_statement_is_cut_to_fit_and_delivered(
        tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str) -> None:
    """150 kB of text with a 60 kB event limit (and a 100 kB producer limit): it arrives,
    its text cut at a paragraph, `text_truncated` set, `content_hash` of the full text."""
    feed = Feed(site)
    big_url = feed.add("big", long_paragraphs(150))
    feed.add("small", short(1))
    config = service_config(tmp_path, kafka_bootstrap, topic, site,
                            max_event_bytes=60_000, max_request_size=100_000)
    reader = EventReader(kafka_bootstrap, topic)
    async with running(config):
        documents = await reader.read(2, timeout=30)
    by_guid = {d["data"]["guid"]: d for d in documents}
    assert set(by_guid) == {"big", "small"}
    big = by_guid["big"]["data"]
    assert big["text_truncated"] is True and big["truncated_fields"] == ["text"]
    value = next(r.value for r in reader.records if json.loads(r.value)["data"]["guid"] == "big")
    assert len(value) <= 60_000
    article = extract_article(feed.pages["big"], url=big_url, feed_title="Statement big")
    assert len(article.text) > 140_000
    assert article.text.startswith(big["text"])
    assert article.text[len(big["text"]):].startswith("\n\nParagraph ")  # a paragraph boundary
    assert big["content_hash"] == content_hash(article.title, article.text)
    assert "text_truncated" not in by_guid["small"]["data"]


async def test_a_record_refused_for_good_is_dead_lettered_and_the_rest_flow(
        tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str) -> None:
    """The event fits `max_event_bytes` (400 kB) but not the producer's 100 kB: the real
    client refuses it with MessageSizeTooLargeError. It goes to `<topic>.dlq` with its
    reason; the statements behind it arrive promptly; the broker stays up."""
    feed = Feed(site)
    feed.add("poison", long_paragraphs(150))
    config = service_config(tmp_path, kafka_bootstrap, topic, site,
                            max_event_bytes=400_000, max_request_size=100_000)
    dead_before = counter(metrics.EVENTS_DEAD_LETTERED, reason="too_large")
    broker_samples: list[float | None] = []
    async with running(config) as service:
        await wait_until(lambda: broker_up() == 1.0)  # the first probe: from here on, up
        sampling = asyncio.create_task(sample(broker_samples))
        await wait_until(
            lambda: counter(metrics.EVENTS_DEAD_LETTERED, reason="too_large") > dead_before,
            timeout=30,
        )
        added = time.monotonic()
        for n in range(3):
            feed.add(f"next-{n}", short(n))
        reader = EventReader(kafka_bootstrap, topic)
        documents = await reader.read(3, timeout=20)
        delivered_after = time.monotonic() - added
        sampling.cancel()
        assert service.server is not None
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{service.server.port}/readyz"
            async with http.get(url) as response:
                ready = response.status
    assert sorted(d["data"]["guid"] for d in documents) == ["next-0", "next-1", "next-2"]
    assert delivered_after < 10, f"the statements behind it took {delivered_after:.1f} s"
    assert counter(metrics.EVENTS_DEAD_LETTERED, reason="too_large") == dead_before + 1
    assert broker_samples and all(s == 1.0 for s in broker_samples), broker_samples
    assert ready == 200
    dead = await raw_records(kafka_bootstrap, f"{topic}.dlq", 1, timeout=20)
    assert len(dead) == 1
    headers = {name: value for name, value in dead[0].headers}
    assert headers["dlq-reason"] == b"too_large"
    assert headers["dlq-topic"] == topic.encode()
    assert headers["dlq-value"] == b"omitted"
    stand_in = json.loads(dead[0].value)
    assert stand_in["reason"] == "too_large" and stand_in["bytes"] > 100_000
    assert headers["dlq-statement-id"] == stand_in["statement_id"].encode()
    assert dead[0].key == stand_in["statement_id"].encode()


async def sample(into: list[float | None]) -> None:
    while True:
        into.append(broker_up())
        await asyncio.sleep(0.1)


@pytest.fixture
def validating_broker(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A tansu broker that validates records against `<topic>.json` in its registry.

    A record that does not validate is refused with INVALID_RECORD (87), and with
    it every record of the same produce batch: a refusal for good on a healthy broker.
    """
    if os.environ.get("MONITOR_TEST_BOOTSTRAP_SERVERS"):
        pytest.skip("this test starts its own schema-validating broker")
    registry = tmp_path / "registry"
    registry.mkdir()
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [str(broker_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/", "--schema-registry", "file://./registry"],
        cwd=tmp_path,  # tansu reads a file:// registry relative to its working directory
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        yield f"127.0.0.1:{port}", registry
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_a_record_the_broker_refuses_is_told_apart_from_its_batch(
        tmp_path: Path, site: LoopbackSite, topic: str,
        validating_broker: tuple[str, Path]) -> None:
    """One partition, so the poison shares a produce batch with good records, all refused
    together (INVALID_RECORD). Only the poison is dead-lettered, with its whole value."""
    bootstrap, registry = validating_broker
    title_is_clean = {"properties": {"title": {"type": ["string", "null"],
                                               "not": {"pattern": "POISON"}}}}
    (registry / f"{topic}.json").write_text(json.dumps(
        {"type": "object",
         "properties": {"value": {"type": "object",
                                  "properties": {"data": title_is_clean}}}}))
    feed = Feed(site)
    feed.add("fine-0", short(0))
    feed.add("poison", short(9), title="A POISON statement")
    feed.add("fine-1", short(1))
    config = service_config(tmp_path, bootstrap, topic, site, partitions=1)
    before = counter(metrics.EVENTS_DEAD_LETTERED, reason="invalid_record")
    broker_samples: list[float | None] = []
    async with running(config):
        await wait_until(lambda: broker_up() == 1.0)
        sampling = asyncio.create_task(sample(broker_samples))
        documents = await EventReader(bootstrap, topic).read(2, timeout=30, settle=1.0)
        added = time.monotonic()
        feed.add("fine-2", short(2))
        more = await EventReader(bootstrap, topic).read(3, timeout=20)
        delivered_after = time.monotonic() - added
        sampling.cancel()
    assert sorted(d["data"]["guid"] for d in documents) == ["fine-0", "fine-1"]
    assert sorted(d["data"]["guid"] for d in more) == ["fine-0", "fine-1", "fine-2"]
    assert delivered_after < 10, f"the statement behind it took {delivered_after:.1f} s"
    assert counter(metrics.EVENTS_DEAD_LETTERED, reason="invalid_record") == before + 1
    assert broker_samples and all(s == 1.0 for s in broker_samples), broker_samples
    dead = await raw_records(bootstrap, f"{topic}.dlq", 1, timeout=20)
    assert len(dead) == 1
    headers = dict(dead[0].headers)
    assert headers["dlq-reason"] == b"invalid_record"
    assert b"INVALID_RECORD" in headers["dlq-error"]
    assert json.loads(dead[0].value)["data"]["title"] == "A POISON statement"  # the whole event


async def test_one_invalid_record_in_a_refused_batch_is_the_only_one_dead_lettered(
        tmp_path: Path, topic: str, validating_broker: tuple[str, Path]) -> None:
    """The relay and the Kafka sink against the validating broker, with the outbox filled
    first, so that all five rows go in one produce batch and the broker refuses them all.
    Only the invalid one ends in `<topic>.dlq`; the four others arrive, in order."""
    bootstrap, registry = validating_broker
    (registry / f"{topic}.json").write_text(json.dumps(
        {"type": "object", "properties": {"value": {"type": "object",
                                                    "properties": {"n": {"not": {"const": 2}}}}}}))
    store = StateStore(tmp_path / "state.db")
    store.open()
    for n in range(5):
        store.record_statement(NewStatementRow(
            statement_id=f"s-{n}", source_id="src", entry_key=f"e{n}", url=None,
            content_hash="sha256:" + "0" * 64, version=1, detected_at=0.0, event_id=f"id-{n}",
            topic=topic, key=b"one-key", value=json.dumps({"n": n}).encode(),
            headers=(("content-type", b"application/json"),),
        ))
    config = KafkaConfig(bootstrap_servers=bootstrap, topic=topic, enable_idempotence=False,
                         partitions=1)
    sink = KafkaSink(config, bootstrap_servers=bootstrap, topics=[topic])
    relay = OutboxRelay(store, sink, max_pending=100)
    before = counter(metrics.EVENTS_DEAD_LETTERED, reason="invalid_record")
    try:
        assert await relay.drain(timeout=20) is True
    finally:
        await sink.stop()
        store.close()
    assert relay.broker_ok
    assert counter(metrics.EVENTS_DEAD_LETTERED, reason="invalid_record") == before + 1
    delivered = await raw_records(bootstrap, topic, 4, timeout=20)
    assert [json.loads(r.value)["n"] for r in delivered] == [0, 1, 3, 4]
    dead = await raw_records(bootstrap, f"{topic}.dlq", 1, timeout=20)
    assert [json.loads(r.value)["n"] for r in dead] == [2]
    headers = dict(dead[0].headers)
    assert headers["dlq-reason"] == b"invalid_record"
    assert headers["dlq-event-id"] == b"id-2" and headers["dlq-statement-id"] == b"s-2"


@pytest.mark.parametrize(("error", "reason"), [
    (aiokafka_errors.MessageSizeTooLargeError("The message is 2000000 bytes"), "too_large"),
    (aiokafka_errors.RecordListTooLargeError(), "too_large"),
    (aiokafka_errors.for_code(87)(), "invalid_record"),
    (aiokafka_errors.CorruptRecordException(), "invalid_record"),
    (aiokafka_errors.TopicAuthorizationFailedError("statements"), "unauthorized"),
    (aiokafka_errors.InvalidTopicError(), "invalid_topic"),
    (aiokafka_errors.KafkaConnectionError(), None),
    (aiokafka_errors.KafkaTimeoutError(), None),
    (aiokafka_errors.RequestTimedOutError(), None),
    (aiokafka_errors.NotLeaderForPartitionError(), None),
    (aiokafka_errors.NotEnoughReplicasError(), None),
    (aiokafka_errors.UnknownError(), None),  # a broker's own trouble: retried
])
def test_produce_errors_are_classified(error: Exception, reason: str | None) -> None:
    refused = rejection(error)
    assert (refused.reason if refused else None) == reason
    assert reason is None or reason in REJECTION_REASONS
