"""Statements as CloudEvents: identity, the event document, and its Kafka record.

The identities here are what lets consumers trust the stream:

- `statement_key(source_id, entry_key)`: stable across versions; the Kafka key,
  so every version of a statement lands in one partition, in order.
- `event_id(statement_id, version, content_hash)`: deterministic, so the same
  statement version delivered twice carries the same CloudEvents `id`.

Records use the CloudEvents Kafka protocol binding in structured mode: the
value is the whole JSON event and the `content-type` header says so.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import unicodedata
from typing import Any

from monitor.models import Event, Statement

__all__ = [
    "CONTENT_TYPE",
    "DATASCHEMA",
    "EVENT_TYPE_PUBLISHED",
    "build_event",
    "content_hash",
    "decode_record",
    "encode_record",
    "event_document",
    "event_id",
    "rfc3339",
    "source_uri",
    "statement_data",
    "statement_key",
]

SPECVERSION = "1.0"
CONTENT_TYPE = "application/cloudevents+json"
EVENT_TYPE_PUBLISHED = "org.statement-monitor.statement.published"
DATASCHEMA = "https://statement-monitor.github.io/schema/statement-v1.json"


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
    }


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


def encode_record(event: Event) -> tuple[bytes, bytes, tuple[tuple[str, bytes], ...]]:
    """(key, value, headers) of the Kafka record that carries the event."""
    value = json.dumps(event_document(event), ensure_ascii=False, separators=(",", ":"))
    headers = (("content-type", CONTENT_TYPE.encode("ascii")),)
    return event.key.encode("utf-8"), value.encode("utf-8"), headers


def decode_record(value: bytes) -> dict[str, Any]:
    """The CloudEvents document in a record value (raises ValueError if it is not one)."""
    document = json.loads(value)
    if not isinstance(document, dict) or document.get("specversion") != SPECVERSION:
        raise ValueError("not a CloudEvents 1.0 structured-mode document")
    return document
