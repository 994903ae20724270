"""The consumer's side: `monitor.consumer` against the real broker, and `monitor tail` filters."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from structlog.testing import capture_logs

from monitor import models
from monitor.cli import TailFilter, parse_since, tail_topics
from monitor.config import Config
from monitor.consumer import Changes, Match, Quote, Speaker, Statement, StatementConsumer, consume
from monitor.events import (
    build_event,
    build_retraction_event,
    build_update_event,
    encode_record,
    event_document,
    statement_data,
)
from tests.conftest import make_config
from tests.test_cli import start_monitor

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def statement(n: int, *, source_id: str = "bank", detected_at: dt.datetime = NOW,
              **fields: Any) -> models.Statement:
    values: dict[str, Any] = {
        "statement_id": f"st-{n}", "source_id": source_id, "source_name": source_id.title(),
        "feed_url": "https://example.org/feed.xml", "url": f"https://example.org/s/{n}",
        "guid": f"g{n}", "title": f"Statement {n}", "text": f"Text of statement {n}.",
        "summary": None, "language": "en", "published_at": detected_at - dt.timedelta(hours=1),
        "detected_at": detected_at, "authors": (), "tags": (), "content_hash": f"sha256:{n:064x}",
        "version": 1, "backfill": False,
    }
    values.update(fields)
    return models.Statement(**values)


Record = tuple[bytes | None, bytes | None]


def record(event: models.Event) -> Record:
    key, value, _ = encode_record(event)
    return key, value


async def create_topics(bootstrap: str, *names: str, partitions: int = 1) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1) for name in names])
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, records: Sequence[Record]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def take(statements: AsyncIterator[Statement], count: int,
               timeout: float = 20.0) -> list[Statement]:
    return [await asyncio.wait_for(anext(statements), timeout) for _ in range(count)]


async def nothing_more(statements: AsyncIterator[Statement], wait: float = 1.5) -> None:
    with pytest.raises(TimeoutError):
        extra = await asyncio.wait_for(anext(statements), wait)
        pytest.fail(f"unexpected statement {extra}")


# -- Statement.from_event: the typed view of the contract -------------------------------


def test_from_event_types_every_field() -> None:
    first = statement(
        1, authors=("Press office",), tags=("rates",),
        quotes=(models.Quote(text="Rates stay put.", speaker="Anna Berg", verb="said"),),
        speakers=(models.Speaker(name="Anna Berg", role="Governor"),),
        matches=(models.WatchMatch(watchlist="rates", term="rate", count=2),),
        sources=("bank", "wire"),
    )
    parsed = Statement.from_event(event_document(build_event(first, topic="t")),
                                  topic="t", partition=2, offset=7)
    assert parsed.type == "published" and parsed.version == 1
    assert parsed.event_id == build_event(first, topic="t").id
    assert (parsed.statement_id, parsed.source_id, parsed.source_name) == ("st-1", "bank", "Bank")
    assert parsed.detected_at == NOW and parsed.detected_at.tzinfo is not None
    assert parsed.published_at == NOW - dt.timedelta(hours=1)
    assert parsed.authors == ("Press office",) and parsed.tags == ("rates",)
    assert parsed.quotes == (Quote("Rates stay put.", "Anna Berg", "said"),)
    assert parsed.speakers == (Speaker("Anna Berg", "Governor"),)
    assert parsed.matches == (Match("rates", "rate", 2),) and parsed.watchlists == {"rates"}
    assert parsed.sources == ("bank", "wire") and parsed.carried_by("wire")
    assert (parsed.topic, parsed.partition, parsed.offset) == ("t", 2, 7)
    assert parsed.changes is None and parsed.retracted_at is None
    assert parsed.data == statement_data(first)

    second = statement(1, text="New text.", version=2, content_hash="sha256:" + "f" * 64)
    update = Statement.from_event(event_document(
        build_update_event(statement_data(first), second, topic="t")))
    assert update.type == "updated" and update.version == 2
    assert update.changes == Changes(("text",), update.data["changes"]["text_diff"])
    assert "+New text." in update.changes.text_diff

    gone = NOW + dt.timedelta(days=1)
    retraction = Statement.from_event(event_document(
        build_retraction_event(statement_data(second), topic="t", retracted_at=gone)))
    assert retraction.type == "retracted" and retraction.version == 3
    assert retraction.retracted_at == gone and retraction.text == "New text."


def test_older_events_read_as_empty_and_unknown_fields_are_kept() -> None:
    document = event_document(build_event(statement(1), topic="t"))
    for name in ("quotes", "speakers", "matches", "sources"):
        del document["data"][name]
    document["data"]["sentiment"] = {"score": 0.4}
    parsed = Statement.from_event(document)
    assert (parsed.quotes, parsed.speakers, parsed.matches, parsed.sources) == ((), (), (), ())
    assert parsed.carried_by("bank") and not parsed.carried_by("wire")
    assert parsed.data["sentiment"] == {"score": 0.4}


@pytest.mark.parametrize("mutate", [
    lambda d: d.update(type="com.example.other"),
    lambda d: d.update(data="text"),
    lambda d: d["data"].pop("statement_id"),
    lambda d: d["data"].update(detected_at="yesterday"),
    lambda d: d["data"].update(quotes=[{"speaker": "no text"}]),
])
def test_malformed_events_raise_value_error(mutate: Any) -> None:
    document = event_document(build_event(statement(1), topic="t"))
    mutate(document)
    with pytest.raises(ValueError):
        Statement.from_event(document)


def test_the_consumer_refuses_options_that_would_break_its_offsets() -> None:
    with pytest.raises(ValueError, match="enable_auto_commit"):
        StatementConsumer("t", bootstrap_servers="x", enable_auto_commit=True)
    with pytest.raises(ValueError, match="group_id=None"):
        StatementConsumer("t", bootstrap_servers="x", since=NOW)


# -- against the broker ------------------------------------------------------------------


@pytest.mark.integration
async def test_statements_arrive_typed_and_non_events_are_skipped(
        kafka_bootstrap: str, topic: str) -> None:
    await create_topics(kafka_bootstrap, topic)
    other_type = event_document(build_event(statement(9), topic=topic))
    other_type["type"] = "com.example.something"
    await produce(kafka_bootstrap, topic, [
        record(build_event(statement(1, quotes=(models.Quote(text="Q", speaker=None, verb=None),)),
                           topic=topic)),
        (b"k", b"not json"),
        (b"k", json.dumps({"hello": "world"}).encode()),
        (b"k", None),  # a tombstone
        (b"k", json.dumps(other_type).encode()),
        record(build_event(statement(2), topic=topic)),
    ])
    with capture_logs() as logs:
        async with consume(topic, bootstrap_servers=kafka_bootstrap, group_id=None,
                           from_beginning=True) as statements:
            first, second = await take(statements, 2)
    assert (first.statement_id, second.statement_id) == ("st-1", "st-2")
    assert first.quotes == (Quote("Q", None, None),) and first.topic == topic
    assert (first.offset, second.offset) == (0, 5)
    skipped = [entry for entry in logs if entry["event"] == "record_skipped"]
    assert [entry["offset"] for entry in skipped] == [1, 2, 3, 4]
    assert all(entry["log_level"] == "warning" for entry in skipped)


class Failed(Exception):
    pass


@pytest.mark.integration
@pytest.mark.slow
async def test_a_group_resumes_after_the_last_processed_statement(
        kafka_bootstrap: str, topic: str) -> None:
    """tansu stores consumer-group offsets: this runs against it as against Kafka.

    Each join of the group takes tansu about 5 s; a short session timeout keeps a
    lingering member from holding up the next one for longer.
    """
    await create_topics(kafka_bootstrap, topic)
    await produce(kafka_bootstrap, topic,
                  [record(build_event(statement(n), topic=topic)) for n in range(1, 6)])
    group = f"test-{uuid.uuid4().hex[:8]}"

    def reader() -> StatementConsumer:
        return consume(topic, bootstrap_servers=kafka_bootstrap, group_id=group,
                       from_beginning=True, session_timeout_ms=6000, heartbeat_interval_ms=500)

    processed: list[str] = []
    with pytest.raises(Failed):
        async with reader() as statements:
            async for item in statements:
                if item.statement_id == "st-3":
                    raise Failed  # processing st-3 crashed: it is not committed
                processed.append(item.statement_id)
    assert processed == ["st-1", "st-2"]

    async with reader() as statements:
        again = await take(statements, 2)  # st-3 again, then st-4; leaving commits st-4
    assert [s.statement_id for s in again] == ["st-3", "st-4"]
    assert again[0].event_id == build_event(statement(3), topic=topic).id  # dedupe on it

    async with reader() as statements:
        [last] = await take(statements, 1)
        assert last.statement_id == "st-5"
        await nothing_more(statements)


@pytest.mark.integration
async def test_since_skips_statements_detected_before_it(kafka_bootstrap: str, topic: str) -> None:
    await create_topics(kafka_bootstrap, topic, partitions=3)
    old, new = NOW - dt.timedelta(days=2), NOW - dt.timedelta(minutes=5)
    await produce(kafka_bootstrap, topic, [
        record(build_event(statement(n, detected_at=old if n % 2 else new), topic=topic))
        for n in range(1, 7)
    ])
    async with consume(topic, bootstrap_servers=kafka_bootstrap, group_id=None,
                       since=NOW - dt.timedelta(hours=1)) as statements:
        found = await take(statements, 3)
        await nothing_more(statements)
    assert sorted(s.statement_id for s in found) == ["st-2", "st-4", "st-6"]


# -- monitor tail ------------------------------------------------------------------------


def test_parse_since_takes_durations_and_times() -> None:
    assert parse_since("2h", now=NOW) == NOW - dt.timedelta(hours=2)
    assert parse_since("30m", now=NOW) == NOW - dt.timedelta(minutes=30)
    assert parse_since("1d", now=NOW) == NOW - dt.timedelta(days=1)
    assert parse_since("2025-06-01T08:00:00Z") == dt.datetime(2025, 6, 1, 8, tzinfo=dt.UTC)
    assert parse_since("2025-06-01T10:00:00+02:00") == dt.datetime(2025, 6, 1, 8, tzinfo=dt.UTC)
    assert parse_since("2025-06-01") == dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="neither a duration"):
        parse_since("last tuesday")


def test_tail_filter_by_source_and_watchlist() -> None:
    def typed(**fields: Any) -> Statement:
        return Statement.from_event(event_document(build_event(statement(1, **fields), topic="t")))

    plain = typed()
    carried = typed(source_id="wire", sources=("wire", "bank"))
    rates = typed(source_id="wire", matches=(models.WatchMatch(watchlist="rates", term="rate",
                                                               count=1),))
    assert all(TailFilter()(s) for s in (plain, carried, rates))
    by_bank = TailFilter(sources=frozenset({"bank"}))
    assert by_bank(plain) and by_bank(carried) and not by_bank(rates)
    by_rates = TailFilter(watchlists=frozenset({"rates", "war"}))
    assert by_rates(rates) and not by_rates(plain)
    both = TailFilter(sources=frozenset({"bank"}), watchlists=frozenset({"rates"}))
    assert not any(both(s) for s in (plain, carried, rates))


def test_tail_follows_the_watchlist_topic_unless_topics_are_given(tmp_path: Path) -> None:
    config = Config.model_validate({
        **make_config(tmp_path, bootstrap="x:9092", topic="statements",
                      sources=[{"id": "bank", "url": "https://example.org/feed.xml"}]),
        "watchlists": [{"id": "rates", "terms": ["rate"], "topic": "statements.rates"}],
    })
    assert tail_topics(config, (), ("rates",)) == ["statements", "statements.rates"]
    assert tail_topics(config, ("mine",), ("rates",)) == ["mine"]


async def run_tail(config: dict[str, Any], tmp_path: Path, *args: str, until: str,
                   settle: float = 1.5) -> list[dict[str, Any]]:
    """`monitor tail --json ARGS` until a line holds `until` (and `settle` s more)."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    tail = await start_monitor("tail", "--config", str(path), "--json", *args)
    assert tail.stdout is not None
    output = b""
    try:
        while until.encode() not in output:
            output += await asyncio.wait_for(tail.stdout.readline(), timeout=20)
        with pytest.raises(TimeoutError):
            while True:
                output += await asyncio.wait_for(tail.stdout.readline(), timeout=settle)
    finally:
        tail.terminate()
        await tail.wait()
    return [json.loads(line) for line in output.decode().splitlines() if line.strip()]


def tail_config(tmp_path: Path, bootstrap: str, topic: str) -> dict[str, Any]:
    config = make_config(tmp_path, bootstrap=bootstrap, topic=topic,
                         sources=[{"id": "bank", "url": "http://127.0.0.1:9/feed.xml"}])
    config["watchlists"] = [{"id": "rates", "terms": ["rate"], "topic": f"{topic}.rates"}]
    return config


@pytest.mark.integration
async def test_tail_by_source_since(tmp_path: Path, kafka_bootstrap: str, topic: str) -> None:
    await create_topics(kafka_bootstrap, topic, f"{topic}.rates")
    old = NOW - dt.timedelta(days=3)
    await produce(kafka_bootstrap, topic, [
        record(build_event(statement(1, detected_at=old), topic=topic)),  # too old
        record(build_event(statement(2, source_id="wire"), topic=topic)),  # another source
        record(build_event(statement(3, source_id="wire", sources=("wire", "bank")), topic=topic)),
        record(build_event(statement(4), topic=topic)),
    ])
    printed = await run_tail(tail_config(tmp_path, kafka_bootstrap, topic), tmp_path,
                             "--source", "bank", "--since", "1h", until="Statement 4")
    assert [event["data"]["statement_id"] for event in printed] == ["st-3", "st-4"]


@pytest.mark.integration
async def test_tail_by_watchlist_reads_its_topic_and_prints_each_event_once(
        tmp_path: Path, kafka_bootstrap: str, topic: str) -> None:
    alerts = f"{topic}.rates"
    await create_topics(kafka_bootstrap, topic, alerts)
    hit = build_event(statement(2, matches=(models.WatchMatch(watchlist="rates", term="rate",
                                                              count=1),)), topic=topic)
    await produce(kafka_bootstrap, topic, [record(build_event(statement(1), topic=topic)),
                                           record(hit)])
    await produce(kafka_bootstrap, alerts, [record(hit)])  # the same event, on the alert topic
    config = tail_config(tmp_path, kafka_bootstrap, topic)
    printed = await run_tail(config, tmp_path, "--watchlist", "rates", "--from-beginning",
                             until="Statement 2")
    assert [event["id"] for event in printed] == [hit.id]


async def test_tail_refuses_a_bad_since(tmp_path: Path) -> None:
    tail = await start_monitor("tail", "--config", str(tmp_path / "absent.yaml"),
                               "--since", "soon")
    _, stderr = await asyncio.wait_for(tail.communicate(), timeout=30)
    assert tail.returncode == 2 and b"--since" in stderr
