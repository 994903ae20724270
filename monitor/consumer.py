"""Reading statements back: typed `Statement` objects from Kafka, offsets handled.

This module owns the consumer's side of the event contract: it turns the
structured-mode CloudEvents that the monitor publishes into frozen, typed
`Statement` objects, and it owns when a consumer group commits.

    import asyncio
    from monitor.consumer import consume

    async def main() -> None:
        async with consume("statements", bootstrap_servers="localhost:9092",
                           group_id="my-app") as statements:
            async for statement in statements:
                print(statement.type, statement.source_id, statement.title)

    asyncio.run(main())

Delivery is at least once. A statement's offset is committed only once the
loop body has finished with it: when the loop asks for the next statement, or
when the `async with` block is left normally (`break` included). If the body
raises, that statement is not committed and the group gets it again. So a
consumer may see an event twice (after a crash, a rebalance, or because the
monitor itself re-sent it): a redelivered event carries the same `event_id`,
so deduplicate on it. Different versions of one statement share the
`statement_id` (and the Kafka key, hence the partition and their order) but
never the `event_id`.

Records that are not statement events (not JSON, not CloudEvents 1.0, another
event type, a malformed `data`) are skipped with a warning and never stop the
iterator. Fields of `data` this version does not know are kept in
`Statement.data`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self, cast, get_args

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import ConsumerStoppedError, KafkaError

from monitor.events import decode_record

__all__ = [
    "Changes",
    "EventKind",
    "Match",
    "Quote",
    "Speaker",
    "Statement",
    "StatementConsumer",
    "consume",
    "parse_record",
]

log = structlog.get_logger(__name__)

EventKind = Literal["published", "updated", "retracted"]
_TYPE_PREFIX = "org.statement-monitor.statement."
_KINDS: frozenset[str] = frozenset(get_args(EventKind))
# Options this module decides itself: passing them would break its offset handling.
_RESERVED_OPTIONS = frozenset({"group_id", "enable_auto_commit", "auto_offset_reset"})


@dataclass(frozen=True, slots=True)
class Quote:
    """A direct quotation in the statement, and who said it (None when the text does not say)."""

    text: str
    speaker: str | None = None
    verb: str | None = None  # the reporting verb as written: "said", "according to", ...


@dataclass(frozen=True, slots=True)
class Speaker:
    """A named person quoted in the statement, with the role the text gives them."""

    name: str
    role: str | None = None


@dataclass(frozen=True, slots=True)
class Match:
    """A watchlist hit: how often `term` (as configured) occurs in the title and text."""

    watchlist: str
    term: str
    count: int


@dataclass(frozen=True, slots=True)
class Changes:
    """What an update changed since the previous version."""

    fields: tuple[str, ...]  # of "title", "text", "summary", "published_at"
    text_diff: str  # unified diff of the text, previous version to this one


@dataclass(frozen=True, slots=True, kw_only=True)
class Statement:
    """One statement event as a consumer sees it: the typed `data`, and where it was read.

    `event_id` is the CloudEvents id, the same on every delivery of one event;
    `type` is the last word of the CloudEvents type. `document` is the whole
    event as received (for `--json`-style output and fields added later).
    """

    event_id: str
    type: EventKind
    statement_id: str
    source_id: str
    source_name: str
    feed_url: str | None
    url: str | None
    guid: str | None
    title: str | None
    text: str
    summary: str | None
    language: str | None
    published_at: dt.datetime | None
    detected_at: dt.datetime
    version: int
    content_hash: str | None
    backfill: bool
    extraction_error: str | None = None
    authors: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    quotes: tuple[Quote, ...] = ()
    speakers: tuple[Speaker, ...] = ()
    matches: tuple[Match, ...] = ()
    sources: tuple[str, ...] = ()  # every source that carried it; empty in older events
    changes: Changes | None = None  # on updates
    retracted_at: dt.datetime | None = None  # on retractions
    topic: str = ""
    partition: int = -1
    offset: int = -1
    document: Mapping[str, Any] = field(default_factory=dict, hash=False, repr=False)

    @property
    def data(self) -> Mapping[str, Any]:
        """The event's raw `data`, unknown fields included."""
        return cast(Mapping[str, Any], self.document.get("data") or {})

    @property
    def watchlists(self) -> frozenset[str]:
        """The ids of the watchlists the statement matched."""
        return frozenset(match.watchlist for match in self.matches)

    def carried_by(self, source_id: str) -> bool:
        """Whether the source found the statement or also carried it."""
        return source_id == self.source_id or source_id in self.sources

    @classmethod
    def from_event(
        cls, document: Mapping[str, Any], *, topic: str = "", partition: int = -1, offset: int = -1
    ) -> Statement:
        """The statement in a decoded CloudEvents document; ValueError if it is not one."""
        try:
            return cls._parse(document, topic=topic, partition=partition, offset=offset)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed statement event: {exc!r}") from exc

    @classmethod
    def _parse(
        cls, document: Mapping[str, Any], *, topic: str, partition: int, offset: int
    ) -> Statement:
        data = document["data"]
        if not isinstance(data, Mapping):
            raise ValueError("the event's data is not a JSON object")
        return cls(
            event_id=_text(document["id"]),
            type=_kind(document.get("type")),
            statement_id=_text(data["statement_id"]),
            source_id=_text(data["source_id"]),
            source_name=str(data.get("source_name") or data["source_id"]),
            feed_url=_optional_text(data.get("feed_url")),
            url=_optional_text(data.get("url")),
            guid=_optional_text(data.get("guid")),
            title=_optional_text(data.get("title")),
            text=str(data.get("text") or ""),
            summary=_optional_text(data.get("summary")),
            language=_optional_text(data.get("language")),
            published_at=_time(data.get("published_at")),
            detected_at=_required_time(data.get("detected_at") or document.get("time")),
            version=int(data.get("version", 1)),
            content_hash=_optional_text(data.get("content_hash")),
            backfill=bool(data.get("backfill", False)),
            extraction_error=_optional_text(data.get("extraction_error")),
            authors=_texts(data.get("authors")),
            tags=_texts(data.get("tags")),
            quotes=_quotes(data.get("quotes")),
            speakers=_speakers(data.get("speakers")),
            matches=_matches(data.get("matches")),
            sources=_texts(data.get("sources")),
            changes=_changes(data.get("changes")),
            retracted_at=_time(data.get("retracted_at")),
            topic=topic,
            partition=partition,
            offset=offset,
            document=document,
        )


def _kind(event_type: object) -> EventKind:
    kind = str(event_type).removeprefix(_TYPE_PREFIX)
    if not str(event_type).startswith(_TYPE_PREFIX) or kind not in _KINDS:
        raise ValueError(f"not a statement event type: {event_type!r}")
    return cast(EventKind, kind)


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value


def _optional_text(value: object) -> str | None:
    return None if value is None else str(value)


def _texts(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError(f"expected a list of strings, got {value!r}")
    return tuple(str(item) for item in value)


def _objects(value: object) -> list[Mapping[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise ValueError(f"expected a list of objects, got {value!r}")
    return value


def _quotes(value: object) -> tuple[Quote, ...]:
    return tuple(
        Quote(_text(q["text"]), _optional_text(q.get("speaker")), _optional_text(q.get("verb")))
        for q in _objects(value)
    )


def _speakers(value: object) -> tuple[Speaker, ...]:
    return tuple(Speaker(_text(s["name"]), _optional_text(s.get("role"))) for s in _objects(value))


def _matches(value: object) -> tuple[Match, ...]:
    return tuple(
        Match(_text(m["watchlist"]), _text(m["term"]), int(m["count"])) for m in _objects(value)
    )


def _time(value: object) -> dt.datetime | None:
    """An RFC 3339 time as an aware datetime (UTC when the text has no offset)."""
    if value is None:
        return None
    parsed = dt.datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def _required_time(value: object) -> dt.datetime:
    parsed = _time(value)
    if parsed is None:
        raise ValueError("the event has no detected_at")
    return parsed


def _changes(value: object) -> Changes | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"expected changes to be an object, got {value!r}")
    return Changes(_texts(value.get("fields")), str(value.get("text_diff") or ""))


class StatementConsumer:
    """An async iterator of `Statement`s from Kafka topics; an async context manager.

    `group_id`: the consumer group whose committed offsets say where to resume;
    None reads without a group and commits nothing. `from_beginning`: where a
    partition with no committed offset starts, the oldest retained event
    rather than the next new one. `since` (only without a group): start each
    partition at the first record written at or after that time (Kafka's
    offsets-for-times) and skip statements detected before it.
    `kafka_options` go to `aiokafka.AIOKafkaConsumer` as they are (security
    settings, `client_id`, timeouts, ...).

    Offsets are committed at least once: see the module docstring.
    """

    def __init__(
        self,
        *topics: str,
        bootstrap_servers: str,
        group_id: str | None = "statement-consumer",
        from_beginning: bool = False,
        since: dt.datetime | None = None,
        **kafka_options: Any,
    ) -> None:
        if not topics:
            raise ValueError("name at least one topic")
        reserved = _RESERVED_OPTIONS & kafka_options.keys()
        if reserved:
            raise ValueError(f"set by StatementConsumer itself: {', '.join(sorted(reserved))}")
        if since is not None and group_id is not None:
            raise ValueError("since needs group_id=None: a group resumes at its committed offsets")
        self.topics = topics
        self.group_id = group_id
        self.since = None if since is None else _aware(since)
        self._options: dict[str, Any] = {
            **kafka_options,
            "bootstrap_servers": bootstrap_servers,
            "group_id": group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest" if from_beginning or since else "latest",
        }
        self._consumer: AIOKafkaConsumer | None = None
        self._pending: dict[TopicPartition, int] = {}  # offsets to commit, once processed
        self._positioned: set[TopicPartition] = set()  # partitions already moved to `since`

    async def start(self) -> None:
        """Connect and subscribe (raises aiokafka's KafkaError if the broker is unreachable)."""
        consumer = AIOKafkaConsumer(*self.topics, **self._options)
        await consumer.start()
        self._consumer = consumer

    async def stop(self, *, commit: bool = True) -> None:
        """Commit the last statement handed out (unless `commit` is False), then disconnect."""
        consumer, self._consumer = self._consumer, None
        if consumer is None:
            return
        try:
            if commit:
                await self._commit(consumer)
        finally:
            self._pending.clear()
            await consumer.stop()

    async def commit(self) -> None:
        """Commit every statement handed out so far (done for you on the next one)."""
        await self._commit(self._running())

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop(commit=exc_type is None)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Statement:
        consumer = self._running()
        await self._commit(consumer)
        while True:
            try:
                record = await consumer.getone()
            except ConsumerStoppedError:
                raise StopAsyncIteration from None
            statement = await self._accept(consumer, record)
            if statement is not None:
                return statement

    def _running(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("use the consumer inside `async with`")
        return self._consumer

    async def _accept(
        self, consumer: AIOKafkaConsumer, record: ConsumerRecord[bytes, bytes]
    ) -> Statement | None:
        """The record's statement, or None to skip it; either way the record counts as
        processed (committable) from the next `__anext__` on."""
        if not await self._at_since(consumer, record):
            return None
        self._done_with(record)
        statement = parse_record(record)
        if statement is None or (self.since is not None and statement.detected_at < self.since):
            return None
        return statement

    def _done_with(self, record: ConsumerRecord[bytes, bytes]) -> None:
        if self.group_id is not None:
            self._pending[TopicPartition(record.topic, record.partition)] = record.offset + 1

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        if not self._pending:
            return
        offsets, self._pending = self._pending, {}
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:
            # Typically a rebalance took the partition away: its new owner gets the
            # record again, which at-least-once allows.
            log.warning("commit_failed", group_id=self.group_id, error=repr(exc))

    async def _at_since(
        self, consumer: AIOKafkaConsumer, record: ConsumerRecord[bytes, bytes]
    ) -> bool:
        """With `since`: position each partition on its first record; False to drop the record.

        Partitions start at the earliest offset, so every partition with records
        yields a first one; then all unpositioned partitions move to their
        offset for `since` in one request.
        """
        here = TopicPartition(record.topic, record.partition)
        if self.since is None or here in self._positioned:
            return True
        waiting = {tp for tp in consumer.assignment() if tp not in self._positioned} | {here}
        stamp = int(self.since.timestamp() * 1000)
        found = await consumer.offsets_for_times(dict.fromkeys(waiting, stamp))
        self._positioned |= waiting
        target = found.get(here)
        keep = target is not None and target.offset <= record.offset
        for tp in waiting - {here} if keep else waiting:
            await self._seek(consumer, tp, found.get(tp))
        return keep

    @staticmethod
    async def _seek(consumer: AIOKafkaConsumer, tp: TopicPartition, target: Any) -> None:
        """To `target` (an OffsetAndTimestamp), or the end if no record is that recent."""
        if target is None:
            await consumer.seek_to_end(tp)
        else:
            consumer.seek(tp, target.offset)


def parse_record(record: ConsumerRecord[bytes, bytes]) -> Statement | None:
    """The statement a Kafka record carries, or None (logged) if it carries none."""
    try:
        document = decode_record(record.value)
        return Statement.from_event(
            document, topic=record.topic, partition=record.partition, offset=record.offset
        )
    except (ValueError, TypeError) as exc:
        log.warning(
            "record_skipped",
            reason=f"not a statement event: {exc}",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
        return None


def consume(
    *topics: str,
    bootstrap_servers: str,
    group_id: str | None = "statement-consumer",
    from_beginning: bool = False,
    since: dt.datetime | None = None,
    **kafka_options: Any,
) -> StatementConsumer:
    """A `StatementConsumer`, to use as `async with consume(...) as statements:`."""
    return StatementConsumer(
        *topics,
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        from_beginning=from_beginning,
        since=since,
        **kafka_options,
    )


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
