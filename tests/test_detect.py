"""Detect: new entries against the state store, and the whole feed corpus through parse and detect."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.detect import detect
from monitor.events import statement_key
from monitor.models import Candidate
from monitor.sources import parse_document
from monitor.state import NewStatementRow, StateStore, Validators
from tests.shared import corpus_dir, requires_shared

CORPUS = corpus_dir()  # in ../shared: see tests/shared.py
INDEX = CORPUS / "feeds" / "index.json"


def candidate(guid: str | None, url: str | None) -> Candidate:
    return Candidate(source_id="s", feed_url="https://x.org/feed", url=url, guid=guid)


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    store = StateStore(tmp_path / "state.db")
    store.open()
    return store


def record(store: StateStore, key: str, source_id: str = "s") -> None:
    store.record_statement(NewStatementRow(
        statement_id=statement_key(source_id, key), source_id=source_id, entry_key=key, url=None,
        content_hash="sha256:" + "0" * 64, version=1, detected_at=0.0, event_id=key, topic="t",
        key=b"k", value=b"{}", headers=()))


def test_entries_are_known_by_guid_else_link(store: StateStore) -> None:
    record(store, "guid-1")
    record(store, "https://x.org/2")
    entries = [candidate("guid-1", "https://x.org/1"), candidate(None, "https://x.org/2"),
               candidate("guid-3", "https://x.org/3"), candidate("guid-3", "https://x.org/3-dup"),
               candidate(None, None)]
    detection = detect("s", entries, store)
    assert [c.guid for c in detection.new] == ["guid-3"]
    assert detection.known == 2
    assert detection.first_sight  # nothing saved validators for "s" yet
    store.save_validators("s", Validators())
    assert not detect("s", entries, store).first_sight


def corpus_files() -> list[dict[str, object]]:
    if not INDEX.exists():
        return []
    return list(json.loads(INDEX.read_text())["feeds"])


@requires_shared("corpus", "feeds", "index.json")
def test_every_corpus_feed_goes_through_parse_and_detect(store: StateStore) -> None:
    files = corpus_files()
    assert len(files) == 384
    candidates = 0
    for number, entry in enumerate(files):
        path = CORPUS / "feeds" / str(entry["file"])
        headers = dict(h.partition(":")[::2] for h in entry.get("simulated_http_headers") or [])  # type: ignore[union-attr]
        content_type = next((v.strip() for k, v in headers.items() if k.lower() == "content-type"), None)
        source_id = f"corpus-{number}"
        parsed = parse_document(path.read_bytes(), source_id=source_id,
                                feed_url=f"http://127.0.0.1/{entry['file']}", content_type=content_type)
        detection = detect(source_id, parsed.entries, store)
        for new in detection.new:
            assert new.key is not None
            record(store, new.key, source_id)
        # Detected once, known ever after: the same document yields nothing new.
        assert detect(source_id, parsed.entries, store).new == ()
        candidates += len(detection.new)
    assert candidates > 750  # the parser's own corpus test checks the exact count per file


def test_a_feed_that_only_bumps_the_updated_date_has_edited_the_entry() -> None:
    import datetime as dt

    from monitor.detect import entry_fingerprint

    atom = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>MFA</title><id>urn:mfa</id>
<updated>%s</updated><entry><id>urn:s1</id><title>Statement</title>
<link href="https://gov.example/s1"/><published>2025-01-01T10:00:00Z</published>
<updated>%s</updated><summary>Text.</summary></entry></feed>"""
    first, second = (
        parse_document(atom % (stamp, stamp), source_id="s", feed_url="https://gov.example/feed")
        for stamp in (b"2025-01-01T10:00:00Z", b"2025-01-02T08:00:00Z")
    )
    (before,), (after,) = first.entries, second.entries
    assert after.updated_at == dt.datetime(2025, 1, 2, 8, tzinfo=dt.UTC)
    assert before.published_at == after.published_at  # the published date did not move
    assert entry_fingerprint(before) != entry_fingerprint(after)
