"""Events: deterministic ids, stable keys, and the CloudEvents structured-mode record."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import jsonschema

from monitor.events import (
    CONTENT_TYPE,
    EVENT_TYPE_PUBLISHED,
    build_event,
    content_hash,
    decode_record,
    encode_record,
    event_id,
    statement_key,
)
from monitor.models import Statement

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "monitor/schema/statement-v1.json").read_text())


def statement(**changes: object) -> Statement:
    base: dict[str, object] = dict(
        statement_id=statement_key("mod", "guid-1"), source_id="mod", source_name="Ministry",
        feed_url="https://example.org/feed", url="https://example.org/s/1", guid="guid-1",
        title="Title", text="First paragraph.\n\nSecond.", summary=None, language="en",
        published_at=dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        detected_at=dt.datetime(2025, 1, 2, 3, 5, 0, tzinfo=dt.UTC),
        authors=(), tags=("defence",), content_hash=content_hash("Title", "First paragraph.\n\nSecond."),
        version=1, backfill=False,
    )
    base.update(changes)
    return Statement(**base)  # type: ignore[arg-type]


def test_ids_are_deterministic_and_distinguish_versions() -> None:
    one, again = build_event(statement(), topic="t"), build_event(statement(), topic="t")
    assert one.id == again.id
    assert build_event(statement(version=2), topic="t").id != one.id
    assert event_id("a", 1, "sha256:x") != event_id("a", 1, "sha256:y")
    assert statement_key("mod", "guid-1") != statement_key("other", "guid-1")


def test_content_hash_ignores_whitespace_but_not_words() -> None:
    assert content_hash("T", "a  b\n\nc") == content_hash("T", "a b c")
    assert content_hash("T", "a b c") != content_hash("T", "a b d")


def test_record_is_structured_mode_cloudevent_matching_the_schema() -> None:
    key, value, headers = encode_record(build_event(statement(), topic="t"))
    assert key == statement_key("mod", "guid-1").encode()
    assert dict(headers)["content-type"] == CONTENT_TYPE.encode()
    document = decode_record(value)
    jsonschema.validate(document, SCHEMA)
    assert document["specversion"] == "1.0"
    assert document["type"] == EVENT_TYPE_PUBLISHED
    assert document["source"] == "urn:statement-monitor:source:mod"
    assert document["subject"] == "https://example.org/s/1"
    assert document["time"] == "2025-01-02T03:05:00Z"
    assert document["datacontenttype"] == "application/json"
    assert document["data"]["published_at"] == "2025-01-02T03:04:05Z"
    assert document["data"]["version"] == 1
