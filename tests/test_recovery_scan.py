"""What `TopicScan` learns from the records of an output topic (no broker needed)."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from monitor.events import EVENT_TYPE_PUBLISHED, EVENT_TYPE_UPDATED, statement_key
from monitor.recovery import TopicScan


def record(source_id: str, key: str, *, version: int = 1, guid: str | None = None,
           url: str = "https://gov.example/a", detected: float | None = None,
           event_type: str = EVENT_TYPE_PUBLISHED, statement_id: str | None = None) -> bytes:
    detected = time.time() if detected is None else detected
    data: dict[str, Any] = {
        "statement_id": statement_id or statement_key(source_id, key),
        "source_id": source_id, "guid": guid, "url": url, "title": "T", "text": "x",
        "content_hash": f"sha256:{version}", "version": version,
        "detected_at": dt.datetime.fromtimestamp(detected, dt.UTC).isoformat(),
    }
    if version > 1:
        data["changes"] = {"fields": ["text"], "text_diff": ""}
    return json.dumps({"specversion": "1.0", "id": f"e{version}", "type": event_type,
                       "source": f"urn:statement-monitor:source:{source_id}",
                       "subject": url, "data": data}).encode()


def test_the_last_version_of_each_statement_is_learnt_with_its_entry_key() -> None:
    now = time.time()
    scan = TopicScan(["mfa"], since=now - 3600)
    scan.add(record("mfa", "g-1", guid="g-1", detected=now - 60), None)
    scan.add(record("mfa", "g-1", guid="g-1", version=2, event_type=EVENT_TYPE_UPDATED,
                    detected=now - 30), None)
    scan.add(record("mfa", "https://gov.example/b", url="https://gov.example/b",
                    detected=now - 90), None)
    assert scan.events_read == 3
    assert abs(scan.horizons["mfa"] - (now - 90)) < 0.001  # the oldest event read
    by_key = {row.entry_key: row for row in scan.latest.values()}
    assert set(by_key) == {"g-1", "https://gov.example/b"}
    assert by_key["g-1"].version == 2 and by_key["g-1"].content_hash == "sha256:2"
    assert "changes" not in by_key["g-1"].data
    assert by_key["https://gov.example/b"].url_keys == ("gov.example/b",)


def test_other_sources_old_events_and_foreign_records_are_skipped() -> None:
    now = time.time()
    scan = TopicScan(["mfa"], since=now - 3600)
    scan.add(record("other", "g-1", guid="g-1"), None)
    scan.add(record("mfa", "g-2", guid="g-2", detected=now - 7200), None)
    scan.add(b"not json", None)
    scan.add(None, None)
    scan.add(json.dumps({"specversion": "1.0", "data": "x"}).encode(), None)
    assert scan.events_read == 0 and scan.latest == {} and scan.horizons == {}


def test_an_entry_key_that_cannot_be_told_is_counted_not_guessed() -> None:
    scan = TopicScan(["mfa"], since=0)
    # The feed's link was not the canonical URL the event carries, and there is no guid.
    scan.add(record("mfa", "https://gov.example/feed-link", url="https://gov.example/canonical"),
             None)
    assert scan.unmatched == 1 and scan.latest == {}
    assert "mfa" in scan.horizons  # still, the source has published: it is not new
