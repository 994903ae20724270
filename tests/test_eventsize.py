"""Events fit `kafka.max_event_bytes`: the text is cut at a paragraph, the rest in order."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.events import (
    build_event,
    build_update_event,
    content_hash,
    decode_record,
    encode_record,
    statement_data,
)
from monitor.models import Quote, Speaker, WatchMatch
from tests.test_events import statement

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[1] / "monitor/schema/statement-v1.json").read_text()
)
LIMIT = 50_000


def paragraphs(count: int, size: int = 1000) -> str:
    return "\n\n".join(f"P{n:04d} " + "é" * size for n in range(count))


def record_size(record: tuple[bytes, bytes, tuple[tuple[str, bytes], ...]]) -> int:
    key, value, headers = record
    return len(key) + len(value) + sum(len(n) + len(v) for n, v in headers)


def test_a_small_event_is_untouched() -> None:
    event = build_event(statement(), topic="t")
    _, value, _ = encode_record(event, max_bytes=LIMIT)
    data = decode_record(value)["data"]
    assert "text_truncated" not in data and "truncated_fields" not in data
    assert data == event.data


def test_an_oversize_text_is_cut_at_a_paragraph_and_keeps_the_full_hash() -> None:
    text = paragraphs(120)  # about 240 kB of UTF-8
    quotes = (Quote(text="we will act", speaker="A Minister", verb="said"),)
    full = statement(text=text, content_hash=content_hash("Title", text), quotes=quotes)
    record = encode_record(build_event(full, topic="t"), max_bytes=LIMIT)
    assert record_size(record) <= LIMIT
    document = decode_record(record[1])
    jsonschema.validate(document, SCHEMA)
    data = document["data"]
    assert data["text_truncated"] is True
    assert data["truncated_fields"] == ["text"]
    assert data["content_hash"] == content_hash("Title", text)  # of the FULL text
    assert data["quotes"] == [{"text": "we will act", "speaker": "A Minister", "verb": "said"}]
    cut = data["text"]
    assert text.startswith(cut) and text[len(cut):].startswith("\n\nP")  # a paragraph boundary
    assert len(cut.encode()) > LIMIT * 0.8  # it keeps as much as fits


def test_a_single_huge_paragraph_is_cut_at_a_word() -> None:
    text = "word " * 100_000
    record = encode_record(build_event(statement(text=text), topic="t"), max_bytes=LIMIT)
    assert record_size(record) <= LIMIT
    cut = decode_record(record[1])["data"]["text"]
    assert text.startswith(cut) and cut.endswith("word")


def test_an_update_cuts_its_diff_before_its_text() -> None:
    old, new = paragraphs(10), paragraphs(10, size=1001)
    previous = statement_data(statement(text=old))
    event = build_update_event(previous, statement(text=new, version=2), topic="t")
    record = encode_record(event, max_bytes=LIMIT)
    assert record_size(record) <= LIMIT
    data = decode_record(record[1])["data"]
    assert data["truncated_fields"] == ["changes.text_diff"]
    assert data["text"] == new and "text_truncated" not in data


def test_huge_title_quotes_and_url_still_fit_in_the_documented_order() -> None:
    many = tuple(Quote(text="q" * 2000, speaker="S", verb="said") for _ in range(100))
    big = statement(
        text=paragraphs(40), summary="s " * 20_000, title="t " * 40_000, quotes=many,
        speakers=tuple(Speaker(name=f"N{n}", role="r" * 500) for n in range(100)),
        matches=(WatchMatch(watchlist="w", term="x", count=1),),
        url="https://example.org/" + "a" * 60_000,
    )
    record = encode_record(build_event(big, topic="t"), max_bytes=20_000)
    assert record_size(record) <= 20_000
    document = decode_record(record[1])
    jsonschema.validate(document, SCHEMA)
    fields = document["data"]["truncated_fields"]
    order = ["text", "summary", "quotes", "figures", "speakers", "matches", "authors", "tags",
             "title", "other"]
    assert [f for f in order if f in fields] == fields
    assert fields[:3] == ["text", "summary", "quotes"]
    assert document["data"]["text_truncated"] is True


@settings(max_examples=40, deadline=None)
@given(
    text=st.text(min_size=0, max_size=30_000),
    title=st.text(max_size=5_000),
    guid=st.text(max_size=8_000),
    limit=st.integers(min_value=16_384, max_value=40_000),
)
def test_any_event_fits_any_limit(text: str, title: str, guid: str, limit: int) -> None:
    hostile = "\x01" * 3000  # six bytes each once escaped
    event = build_event(
        statement(text=text, title=title, guid=guid, url=hostile, source_name=hostile,
                  feed_url=hostile, extraction_error=hostile),
        topic="t",
    )
    record = encode_record(event, max_bytes=limit)
    assert record_size(record) <= limit
    data = decode_record(record[1])["data"]
    assert text.startswith(data["text"])


def test_the_size_keys_are_checked_and_overridable(tmp_path: Path) -> None:
    import pytest

    from monitor.config import load_config
    from monitor.errors import ConfigError

    path = tmp_path / "config.yaml"
    path.write_text("kafka: {max_event_bytes: 1000}\n"
                    "sources:\n  - {id: ok, url: 'https://example.org/feed'}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert any(p.startswith("kafka.max_event_bytes:") for p in caught.value.problems)
    path.write_text("sources:\n  - {id: ok, url: 'https://example.org/feed'}\n")
    assert load_config(path, env={}).kafka.max_event_bytes == 900_000
    config = load_config(path, env={"MONITOR__KAFKA__MAX_EVENT_BYTES": "500000",
                                    "MONITOR__KAFKA__MAX_REQUEST_SIZE": "2000000"})
    assert (config.kafka.max_event_bytes, config.kafka.max_request_size) == (500_000, 2_000_000)


def test_a_page_of_1_5_mb_fits_the_default_limit() -> None:
    """The issue's case: 1.5 MB of text, over Kafka's default 1 MB message size."""
    text = paragraphs(750)  # about 1.5 MB of UTF-8
    assert len(text.encode()) > 1_500_000
    record = encode_record(build_event(statement(text=text), topic="t"))
    assert 800_000 < record_size(record) <= 900_000 < 1_048_576
    assert decode_record(record[1])["data"]["text_truncated"] is True
