"""Edits, re-checks and retractions, end to end: a loopback site, the real broker."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from monitor import metrics
from monitor.events import statement_key
from monitor.recheck import is_home_redirect
from monitor.state import StateStore
from tests.conftest import EventReader, counter, make_config, running, wait_until
from tests.sites.feeds import Item, page, rss
from tests.sites.loopback import LoopbackSite

pytestmark = pytest.mark.integration

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[1] / "monitor/schema/statement-v1.json").read_text()
)
RSS = "application/rss+xml; charset=utf-8"
WHEN = dt.datetime(2025, 3, 14, 9, 30, tzinfo=dt.UTC)
PUBLISHED = "org.statement-monitor.statement.published"
UPDATED = "org.statement-monitor.statement.updated"
RETRACTED = "org.statement-monitor.statement.retracted"

FIRST = "The ministry announced measure number {n} today after a meeting of the board."
SECOND = "The measure takes effect on the first day of next month and applies nationwide."
EDITED = "The measure takes effect on the first day of the year after and applies in two regions."


def put_page(site: LoopbackSite, n: int, second: str = SECOND) -> str:
    return site.put(f"/news/{n}.html", page(f"Statement number {n}", [FIRST.format(n=n), second]))


def source(site: LoopbackSite, **extra: Any) -> dict[str, Any]:
    return {"id": "ministry", "url": site.url("/feed.xml"), "backfill": True, **extra}


def validate(events: list[dict[str, Any]]) -> None:
    checker = jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    for event in events:
        checker.validate(event)


def fingerprint_of(store: StateStore, key: str) -> str | None:
    row = store.db.execute(
        "SELECT entry_fingerprint FROM statements WHERE statement_id = ?",
        (statement_key("ministry", key),),
    ).fetchone()
    return None if row is None else row[0]


def test_a_redirect_home_is_recognised() -> None:
    assert is_home_redirect("http://a.org/news/1.html", "http://a.org/")
    assert is_home_redirect("http://a.org/news/1.html", "http://a.org")
    assert not is_home_redirect("http://a.org/news/1.html", "http://a.org/news/")
    assert not is_home_redirect("http://a.org/news/1.html", "http://b.org/")
    assert not is_home_redirect("http://a.org/", "http://a.org/")


async def test_an_edit_becomes_one_update_and_a_feed_only_change_none(
    tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str, events: EventReader
) -> None:
    url = put_page(site, 1)
    site.put("/feed.xml", rss([Item("Statement number 1", url, guid="g-1", published=WHEN,
                                    description="First words.")]), content_type=RSS)
    config = make_config(tmp_path, bootstrap=kafka_bootstrap, topic=topic, sources=[source(site)])
    async with running(config) as service:
        first = await events.read(1)
        # The page and the feed entry change: one .updated.
        put_page(site, 1, EDITED)
        site.put("/feed.xml", rss([Item("Statement number 1", url, guid="g-1", published=WHEN,
                                        description="Corrected words.")]), content_type=RSS)
        received = await events.read(2, settle=1.5)
        assert len(received) == 2, [e["type"] for e in received]
        # Only the feed entry changes, the page reads the same: no event.
        site.put("/feed.xml", rss([Item("Statement number 1", url, guid="g-1", published=WHEN,
                                        description="Corrected words, again.")]), content_type=RSS)
        stored = fingerprint_of(service.store, "g-1")
        await wait_until(lambda: fingerprint_of(service.store, "g-1") != stored)
        after = await events.read(2, settle=1.5)
    assert len(after) == 2, [e["type"] for e in after]
    validate(after)
    published, updated = after
    assert published["id"] == first[0]["id"] and published["type"] == PUBLISHED
    assert updated["type"] == UPDATED
    assert updated["data"]["version"] == 2
    assert updated["data"]["statement_id"] == published["data"]["statement_id"]
    assert events.records[0].key == events.records[1].key
    assert updated["id"] != published["id"]
    assert EDITED in updated["data"]["text"] and SECOND not in updated["data"]["text"]
    changes = updated["data"]["changes"]
    assert "text" in changes["fields"] and "title" not in changes["fields"]
    assert f"-{SECOND}" in changes["text_diff"] and f"+{EDITED}" in changes["text_diff"]
    assert "changes" not in published["data"]


@pytest.mark.parametrize("how", ["404", "410", "redirect_home"])
async def test_a_deleted_page_is_retracted_once(
    tmp_path: Path,
    site: LoopbackSite,
    topic: str,
    kafka_bootstrap: str,
    events: EventReader,
    how: str,
) -> None:
    url = put_page(site, 1)
    site.put("/", page("Ministry of Examples", ["Welcome to the ministry's home page."]))
    site.put("/feed.xml", rss([Item("Statement number 1", url, guid="g-1", published=WHEN)]),
             content_type=RSS)
    config = make_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        sources=[source(site, recheck_interval=0.5)],
    )
    before = counter(metrics.STATEMENTS_RETRACTED, source_id="ministry")
    async with running(config) as service:
        published = await events.read(1)
        # The page is unchanged: re-checks find nothing to say.
        unchanged = counter(metrics.RECHECKS, source_id="ministry", outcome="unchanged")
        await wait_until(
            lambda: counter(metrics.RECHECKS, source_id="ministry", outcome="unchanged")
            > unchanged
        )
        if how == "404":
            site.put("/news/1.html", "gone", status=404)
        elif how == "410":
            site.put("/news/1.html", "gone for good", status=410)
        else:
            site.put("/news/1.html", "", status=302, headers={"Location": "/"})
        received = await events.read(2, settle=2.0)  # four re-check intervals more
        assert service.store.statement_count("ministry") == 1
    assert [e["type"] for e in received] == [PUBLISHED, RETRACTED]
    validate(received)
    retracted = received[1]["data"]
    last = published[0]["data"]
    assert (retracted["title"], retracted["text"]) == (last["title"], last["text"])
    assert retracted["statement_id"] == last["statement_id"]
    assert retracted["version"] == 2 and retracted["retracted_at"]
    assert received[1]["id"] != received[0]["id"]
    assert counter(metrics.STATEMENTS_RETRACTED, source_id="ministry") == before + 1


async def test_state_survives_a_restart(
    tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str, events: EventReader
) -> None:
    items = [Item(f"Statement number {n}", put_page(site, n), guid=f"g-{n}", published=WHEN)
             for n in (1, 2)]
    # No ETag: every poll parses the feed, so only stored fingerprints prevent updates.
    site.put("/feed.xml", rss(items), content_type=RSS, etag=False)
    config = make_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        sources=[source(site, recheck_interval=0.5)],
    )
    async with running(config):
        await events.read(2)
        site.put("/news/1.html", "gone", status=404)
        first_run = await events.read(3, settle=1.0)
    assert [e["type"] for e in first_run] == [PUBLISHED, PUBLISHED, RETRACTED]

    # The feed's bytes change (not its entries): parsed again, nothing edited.
    site.put("/feed.xml", rss(items, title="Press releases (all)"), content_type=RSS, etag=False)
    unchanged = counter(metrics.RECHECKS, source_id="ministry", outcome="unchanged")
    parses = counter(metrics.FEED_PARSES, source_id="ministry")
    async with running(config):
        await wait_until(lambda: counter(metrics.FEED_PARSES, source_id="ministry") > parses)
        await wait_until(
            lambda: counter(metrics.RECHECKS, source_id="ministry", outcome="unchanged")
            > unchanged + 1
        )
        second_run = await events.read(3, settle=1.5)
    assert len(second_run) == 3, [e["type"] for e in second_run]


# The schema before edits and retractions (schema_version 1), as an older release wrote it.
_OLD_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sources (source_id TEXT PRIMARY KEY, etag TEXT, last_modified TEXT,
    body_hash TEXT, updated_at REAL NOT NULL);
CREATE TABLE statements (statement_id TEXT PRIMARY KEY, source_id TEXT NOT NULL,
    entry_key TEXT NOT NULL, url TEXT, content_hash TEXT NOT NULL, version INTEGER NOT NULL,
    published INTEGER NOT NULL, acked_at REAL, detected_at REAL NOT NULL,
    UNIQUE (source_id, entry_key));
CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL,
    statement_id TEXT NOT NULL, source_id TEXT NOT NULL, topic TEXT NOT NULL, key BLOB NOT NULL,
    value BLOB NOT NULL, headers TEXT NOT NULL, created_at REAL NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
"""


async def test_a_database_of_the_previous_schema_is_upgraded_without_updates(
    tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str, events: EventReader
) -> None:
    path = tmp_path / "state" / "monitor.db"
    path.parent.mkdir()
    old = sqlite3.connect(path)
    old.executescript(_OLD_SCHEMA)
    now = dt.datetime.now(dt.UTC).timestamp()
    old.execute("INSERT INTO sources VALUES ('ministry', NULL, NULL, 'old', ?)", (now,))
    old.execute(
        "INSERT INTO statements VALUES (?, 'ministry', 'g-1', ?, ?, 1, 1, ?, ?)",
        (statement_key("ministry", "g-1"), site.url("/news/1.html"), "sha256:" + "0" * 64,
         now, now),
    )
    old.commit()
    old.close()

    items = [Item(f"Statement number {n}", put_page(site, n), guid=f"g-{n}", published=WHEN)
             for n in (2, 1)]
    site.put("/feed.xml", rss(items), content_type=RSS)
    config = make_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        sources=[source(site, recheck_interval=0.5)],
    )
    async with running(config) as service:
        await wait_until(lambda: fingerprint_of(service.store, "g-1") is not None)
        received = await events.read(1, settle=2.0)
        version = service.store.db.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'"
        ).fetchone()[0]
    # Only the new entry: the known one got its fingerprint silently (its hash differs,
    # but there was no feed-side change), and it is not re-checked (no last text).
    assert [(e["type"], e["data"]["guid"]) for e in received] == [(PUBLISHED, "g-2")]
    assert version == "5"
