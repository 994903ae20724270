"""Statements as CloudEvents: identity, the event document, and its Kafka record.

The identities here are what lets consumers trust the stream:

- `statement_key(source_id, entry_key)`: stable across versions; the Kafka key,
  so every version of a statement lands in one partition, in order.
- `event_id(statement_id, version, content_hash)`: deterministic, so the same
  statement version delivered twice carries the same CloudEvents `id`.

Three event types: `.published` (version 1), `.updated` (a later version whose
title or text changed; `data.changes` names the changed fields and carries a
unified diff of the text) and `.retracted` (the page is gone: the last known
title and text, `data.retracted_at`; its version is the last one + 1 and its id
is derived with a "retracted" marker, so it never collides with an update's).

Records use the CloudEvents Kafka protocol binding in structured mode: the
value is the whole JSON event and the `content-type` header says so. A record
never exceeds `kafka.max_event_bytes`: `monitor.eventsize` cuts what does not fit.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import json
import unicodedata
from collections.abc import Iterable
from typing import Any

from monitor.eventsize import encode_fitting
from monitor.models import Event, Figure, Quote, Speaker, Statement

__all__ = [
    "CONTENT_TYPE",
    "DATASCHEMA",
    "EVENT_TYPE_PUBLISHED",
    "EVENT_TYPE_RETRACTED",
    "EVENT_TYPE_UPDATED",
    "MAX_EVENT_BYTES",
    "build_event",
    "build_retraction_event",
    "build_update_event",
    "changes",
    "content_hash",
    "decode_record",
    "encode_record",
    "event_document",
    "event_id",
    "figures_data",
    "quotes_data",
    "rfc3339",
    "source_uri",
    "speakers_data",
    "statement_data",
    "statement_key",
]

SPECVERSION = "1.0"
CONTENT_TYPE = "application/cloudevents+json"
EVENT_TYPE_PUBLISHED = "org.statement-monitor.statement.published"
EVENT_TYPE_UPDATED = "org.statement-monitor.statement.updated"
EVENT_TYPE_RETRACTED = "org.statement-monitor.statement.retracted"
# The fields of `data` an update compares, in this order, for `changes.fields`.
CHANGE_FIELDS = ("title", "text", "summary", "published_at")
DATASCHEMA = "https://statement-monitor.github.io/schema/statement-data-v1.json"  # `data` alone
# `kafka.max_event_bytes` by default: under Kafka's default `message.max.bytes`
# (1,048,588), with room for the record batch's own framing.
MAX_EVENT_BYTES = 900_000


def _sha256(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


def statement_key(source_id: str, entry_key: str) -> str:
    """The stable id of a statement: one per (source, guid-or-link)."""
    return _sha256("statement", source_id, entry_key)[:32]


def content_hash(title: str | None, text: str) -> str:
    """A hash of what a reader sees, blind to whitespace and Unicode form."""
    normal = " ".join(unicodedata.normalize("NFC", f"{title or ''}\n{text}").split())
    return "sha256:" + _sha256(normal)


def event_id(statement_id: str, version: int, hash_: str) -> str:
    """Deterministic for one statement version: a redelivery repeats it exactly."""
    return _sha256("event", statement_id, str(version), hash_)[:32]


def source_uri(source_id: str) -> str:
    """The CloudEvents `source` of a configured source."""
    return f"urn:statement-monitor:source:{source_id}"


def rfc3339(value: dt.datetime | None) -> str | None:
    """UTC, with a `Z`: the one time format of events and of `monitor extract`."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def parse_rfc3339(value: object) -> dt.datetime | None:
    """The time an event field holds (`rfc3339`'s output), or None when it holds none."""
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def quotes_data(quotes: Iterable[Quote]) -> list[dict[str, Any]]:
    """`data.quotes`: `{text, speaker, verb}` per quotation."""
    return [{"text": q.text, "speaker": q.speaker, "verb": q.verb} for q in quotes]


def figures_data(figures: Iterable[Figure]) -> list[dict[str, Any]]:
    """`data.figures`: `{value, unit, text}` per figure, with `bound` when the text gives one."""
    out: list[dict[str, Any]] = []
    for figure in figures:
        item: dict[str, Any] = {"value": figure.value, "unit": figure.unit, "text": figure.text}
        if figure.bound:
            item["bound"] = figure.bound
        out.append(item)
    return out


def speakers_data(speakers: Iterable[Speaker]) -> list[dict[str, Any]]:
    """`data.speakers`: `{name, role}` per speaker."""
    return [{"name": s.name, "role": s.role} for s in speakers]


def statement_data(statement: Statement) -> dict[str, Any]:
    """The `data` of a statement event: the fields of the contract, JSON-ready."""
    return {
        "statement_id": statement.statement_id,
        "source_id": statement.source_id,
        "source_name": statement.source_name,
        "feed_url": statement.feed_url,
        "url": statement.url,
        "guid": statement.guid,
        "title": statement.title,
        "text": statement.text,
        "summary": statement.summary,
        "language": statement.language,
        "published_at": rfc3339(statement.published_at),
        "detected_at": rfc3339(statement.detected_at),
        "authors": list(statement.authors),
        "tags": list(statement.tags),
        "content_hash": statement.content_hash,
        "version": statement.version,
        "backfill": statement.backfill,
        "extraction_error": statement.extraction_error,
        "quotes": quotes_data(statement.quotes),
        "speakers": speakers_data(statement.speakers),
        "matches": [
            {"watchlist": m.watchlist, "term": m.term, "count": m.count}
            for m in statement.matches
        ],
        "sources": list(statement.sources or (statement.source_id,)),
        "figures": figures_data(statement.figures),
        "media_type": statement.media_type,
    } | ({"post": dict(statement.extra)} if statement.extra else {})


def build_event(statement: Statement, *, topic: str) -> Event:
    """The CloudEvent announcing a statement version."""
    return Event(
        id=event_id(statement.statement_id, statement.version, statement.content_hash),
        type=EVENT_TYPE_PUBLISHED,
        source=source_uri(statement.source_id),
        subject=statement.url,
        time=statement.detected_at,
        topic=topic,
        key=statement.statement_id,
        data=statement_data(statement),
        dataschema=DATASCHEMA,
    )


def changes(previous: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """`data.changes` of an update: the changed fields, and a unified diff of the text."""
    fields = [name for name in CHANGE_FIELDS if previous.get(name) != current.get(name)]
    diff = difflib.unified_diff(
        (previous.get("text") or "").splitlines(),
        (current.get("text") or "").splitlines(),
        fromfile=f"version {previous.get('version', '?')}",
        tofile=f"version {current.get('version', '?')}",
        lineterm="",
    )
    return {"fields": fields, "text_diff": "\n".join(diff)}


def build_update_event(
    previous: dict[str, Any], statement: Statement, *, topic: str
) -> Event:
    """The CloudEvent of a new version of a statement, against the last published `data`."""
    data = statement_data(statement)
    data["changes"] = changes(previous, data)
    return Event(
        id=event_id(statement.statement_id, statement.version, statement.content_hash),
        type=EVENT_TYPE_UPDATED,
        source=source_uri(statement.source_id),
        subject=statement.url,
        time=statement.detected_at,
        topic=topic,
        key=statement.statement_id,
        data=data,
        dataschema=DATASCHEMA,
    )


def build_retraction_event(
    previous: dict[str, Any], *, topic: str, retracted_at: dt.datetime
) -> Event:
    """The CloudEvent saying a statement was withdrawn, with its last known title and text."""
    data = {k: v for k, v in previous.items() if k != "changes"}
    version = int(previous["version"]) + 1
    data["version"] = version
    data["retracted_at"] = rfc3339(retracted_at)
    statement_id = str(previous["statement_id"])
    return Event(
        id=event_id(statement_id, version, f"retracted:{previous['content_hash']}"),
        type=EVENT_TYPE_RETRACTED,
        source=source_uri(str(previous["source_id"])),
        subject=previous.get("url"),
        time=retracted_at,
        topic=topic,
        key=statement_id,
        data=data,
        dataschema=DATASCHEMA,
    )


def event_document(event: Event) -> dict[str, Any]:
    """The structured-mode CloudEvents JSON document."""
    document: dict[str, Any] = {
        "specversion": SPECVERSION,
        "id": event.id,
        "source": event.source,
        "type": event.type,
        "time": rfc3339(event.time),
        "datacontenttype": "application/json",
    }
    if event.subject is not None:
        document["subject"] = event.subject
    if event.dataschema is not None:
        document["dataschema"] = event.dataschema
    document["data"] = event.data
    return document


def encode_record(
    event: Event, *, max_bytes: int = MAX_EVENT_BYTES
) -> tuple[bytes, bytes, tuple[tuple[str, bytes], ...]]:
    """(key, value, headers) of the Kafka record that carries the event.

    The record fits `max_bytes` (key, value and headers together): an event
    that would not is cut as `monitor.eventsize` says, `data.text` first.
    """
    key = event.key.encode("utf-8")
    headers = (("content-type", CONTENT_TYPE.encode("ascii")),)
    overhead = len(key) + sum(len(name) + len(value) for name, value in headers)
    return key, encode_fitting(event_document(event), max_bytes - overhead), headers


def decode_record(value: bytes) -> dict[str, Any]:
    """The CloudEvents document in a record value (raises ValueError if it is not one)."""
    document = json.loads(value)
    if not isinstance(document, dict) or document.get("specversion") != SPECVERSION:
        raise ValueError("not a CloudEvents 1.0 structured-mode document")
    return document
