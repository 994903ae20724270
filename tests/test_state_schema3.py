"""State schema 3: discovered feed URLs and WebSub subscriptions, and the migration to it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from monitor.state import StateStore, Validators, WebSubRow

# A source row as schema 2 wrote it (no `discovered_url`).
_V2_SOURCES = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sources (
    source_id TEXT PRIMARY KEY, etag TEXT, last_modified TEXT, body_hash TEXT,
    updated_at REAL NOT NULL
);
INSERT INTO meta VALUES ('schema_version', '2');
INSERT INTO sources VALUES ('old', '"e1"', NULL, 'h1', 1.0);
"""


def test_a_schema_2_database_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "monitor.db"
    with sqlite3.connect(path) as db:
        db.executescript(_V2_SOURCES)
    store = StateStore(path)
    store.open()
    try:
        assert store.validators("old") == Validators('"e1"', None, "h1")
        assert store.has_seen("old") and store.discovered_url("old") is None
        version = store.db.execute("SELECT value FROM meta WHERE key='schema_version'")
        assert version.fetchone()[0] == "5"
        assert store.websub_subscriptions() == []
    finally:
        store.close()
    store.open()  # a second open finds everything in place
    store.close()


def test_a_discovered_url_is_saved_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "monitor.db"
    store = StateStore(path)
    store.open()
    store.set_discovered_url("home", "http://gov.example/feed.xml")
    assert store.discovered_url("home") == "http://gov.example/feed.xml"
    # No source row before the first poll is recorded: a row means "seen" (backfill).
    assert not store.has_seen("home")
    assert store.db.execute("SELECT COUNT(*) FROM sources").fetchone()[0] == 0
    store.save_validators("home", Validators('"e"', None, "h"))
    store.set_discovered_url("seen", None)  # forgetting what was never known: nothing
    store.close()

    store = StateStore(path)
    store.open()
    assert store.discovered_url("home") == "http://gov.example/feed.xml"
    store.set_discovered_url("home", "http://gov.example/other.xml")  # a seen source: at once
    store.close()
    store.open()
    assert store.discovered_url("home") == "http://gov.example/other.xml"
    assert store.validators("home") == Validators('"e"', None, "h")
    store.set_discovered_url("home", None)
    store.close()
    store.open()
    assert store.discovered_url("home") is None and store.has_seen("home")
    store.close()


def test_websub_subscriptions_are_saved_replaced_and_deleted(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "monitor.db")
    store.open()
    row = WebSubRow(
        source_id="s", hub="https://hub/", topic="https://t/", secret="x" * 64,
        lease_expires_at=None, state="pending",
    )  # fmt: skip
    store.save_websub_subscription(row)
    verified = WebSubRow(
        source_id="s", hub="https://hub/", topic="https://t/", secret="x" * 64,
        lease_expires_at=123.5, state="verified",
    )  # fmt: skip
    store.save_websub_subscription(verified)
    assert store.websub_subscriptions() == [verified]
    assert "x" * 64 not in repr(verified)
    store.delete_websub_subscription("s", "https://other-hub/", "https://t/")  # not this one
    assert store.websub_subscriptions() == [verified]
    store.delete_websub_subscription("s", "https://hub/", "https://t/")
    assert store.websub_subscriptions() == []
    store.close()
