"""One statement, many feeds: one canonical URL is one statement, published once."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from monitor import metrics
from monitor.detect import url_key, url_keys
from monitor.state import NewStatementRow, StateStore
from tests.conftest import EventReader, counter, make_config, running, wait_until
from tests.sites.feeds import Item, page, rss
from tests.sites.loopback import LoopbackSite

RSS = "application/rss+xml; charset=utf-8"


@pytest.mark.parametrize(
    "variant",
    [
        "https://mil.example/news/123",
        "https://mil.example/news/123/",
        "http://mil.example/news/123",
        "https://www.mil.example/news/123",
        "https://MIL.example:443/news/123",
        "https://mil.example/news/123#comments",
        "https://mil.example/news/123?utm_source=rss&utm_medium=feed&utm_campaign=x",
        "https://mil.example/news/123/?fbclid=IwAR0abc&gclid=1&mc_cid=2&_ga=3",
    ],
)
def test_tracking_parameters_and_trailing_slashes_name_the_same_page(variant: str) -> None:
    assert url_key(variant) == url_key("https://mil.example/news/123")


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("https://mil.example/news/123", "https://mil.example/news/124"),
        ("https://mil.example/news?id=1", "https://mil.example/news?id=2"),
        ("https://mil.example/news/123", "https://mil.example:8443/news/123"),
        ("https://mil.example/news/123", "https://mfa.example/news/123"),
        ("https://mil.example/News/123", "https://mil.example/news/123"),
    ],
)
def test_what_names_a_page_is_kept(one: str, other: str) -> None:
    assert url_key(one) != url_key(other)


def test_query_order_does_not_matter_and_keys_are_distinct() -> None:
    assert url_key("https://x.example/a?b=2&a=1") == url_key("https://x.example/a?a=1&b=2")
    assert url_keys(
        "https://x.example/a", None, "https://x.example/a/", "mailto:x@example.org"
    ) == ("x.example/a",)


def row(statement_id: str, source_id: str, url: str) -> NewStatementRow:
    data = {"statement_id": statement_id, "source_id": source_id, "sources": [source_id]}
    return NewStatementRow(
        statement_id=statement_id,
        source_id=source_id,
        entry_key=url,
        url=url,
        content_hash="sha256:" + "0" * 64,
        version=1,
        detected_at=0.0,
        event_id=f"event-{statement_id}",
        topic="statements",
        key=statement_id.encode(),
        value=b"{}",
        headers=(),
        data=data,
        url_keys=url_keys(url),
        alert_topics=("statements.alerts",),
    )


def test_the_store_records_a_second_sighting_as_an_alias(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    store.open()
    try:
        assert store.record_statement(row("s-a", "mod-a", "https://mil.example/news/1")) is None
        duplicate = row("s-b", "mod-b", "https://mil.example/news/1/?utm_source=rss")
        assert store.record_statement(duplicate) == "s-a"
        # Published once: the first statement's event, on its topic and the alert topic.
        assert [r.topic for r in store.outbox_batch(10)] == ["statements", "statements.alerts"]
        assert store.known("mod-b", ["https://mil.example/news/1/?utm_source=rss"])[
            "https://mil.example/news/1/?utm_source=rss"
        ].published is False
        assert store.last_published("s-a")["sources"] == ["mod-a", "mod-b"]  # type: ignore[index]
        assert store.aliases("s-a") == [("mod-b", "https://mil.example/news/1/?utm_source=rss")]
        assert store.statement_for_urls(url_keys("http://www.mil.example/news/1#x")) == "s-a"
    finally:
        store.close()


def test_a_schema_3_database_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE statements (statement_id TEXT PRIMARY KEY, source_id TEXT NOT NULL, "
        "entry_key TEXT NOT NULL, url TEXT, content_hash TEXT NOT NULL, version INTEGER NOT NULL, "
        "published INTEGER NOT NULL, acked_at REAL, detected_at REAL NOT NULL, "
        "UNIQUE (source_id, entry_key));"
        "INSERT INTO statements VALUES ('old', 'mod', 'k', 'https://x.example/a', 'h', 1, 1, "
        "NULL, 0);"
    )
    db.close()
    store = StateStore(path)
    store.open()
    try:
        columns = {r[1] for r in store.db.execute("PRAGMA table_info(statements)")}
        assert "alias_of" in columns
        assert store.known("mod", ["k"])["k"].statement_id == "old"
        schema = store.db.execute("SELECT value FROM meta WHERE key = 'schema_version'")
        assert schema.fetchone()[0] == "5"
    finally:
        store.close()


def statement_page(
    site: LoopbackSite, path: str, *, canonical: str | None = None, when: str = "this morning"
) -> str:
    html = page(
        "Briefing on the situation",
        [
            f"The ministry held a briefing on the situation in the region {when}.",
            "Representatives of the armed forces answered questions from journalists.",
        ],
    )
    if canonical:
        html = html.replace("<head>", f'<head><link rel="canonical" href="{canonical}">')
    return site.put(path, html)


@pytest.mark.integration
async def test_one_page_through_three_sources_is_published_once(
    tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str, events: EventReader
) -> None:
    when = dt.datetime(2025, 6, 2, 8, tzinfo=dt.UTC)
    url = statement_page(site, "/news/1")
    # The print version names the real page as canonical: known only once extracted.
    printed = statement_page(site, "/print/1", canonical=url)

    def feeds(title: str) -> None:
        site.put("/a.xml", rss([Item(title, url, guid="a-1", published=when)]), content_type=RSS)
        site.put(
            "/b.xml",
            rss([Item(title, url + "?utm_source=rss&utm_medium=b", guid="b-1", published=when)]),
            content_type=RSS,
        )
        site.put(
            "/c.xml", rss([Item(title, printed, guid="c-1", published=when)]), content_type=RSS
        )

    feeds("Briefing on the situation")
    sources: list[dict[str, Any]] = [
        {"id": name, "url": site.url(f"/{name}.xml"), "backfill": True} for name in "abc"
    ]
    config = make_config(tmp_path, bootstrap=kafka_bootstrap, topic=topic, sources=sources)
    before = sum(counter(metrics.STATEMENTS_DEDUPLICATED, source_id=s) for s in "abc")
    async with running(config) as service:
        await wait_until(lambda: all(service.store.has_seen(s) for s in "abc"))
        first = await events.read(1, settle=1.5)
        assert len(first) == 1, [e["data"]["source_id"] for e in first]
        primary = first[0]["data"]
        assert sum(counter(metrics.STATEMENTS_DEDUPLICATED, source_id=s) for s in "abc") == (
            before + 2
        )
        # An edit, announced by every feed: one `.updated`, listing every source.
        statement_page(site, "/news/1", when="this afternoon")
        statement_page(site, "/print/1", canonical=url, when="this afternoon")
        feeds("Briefing on the situation (updated)")
        received = await events.read(2, settle=1.0)
    assert [e["type"].rsplit(".", 1)[-1] for e in received] == ["published", "updated"]
    assert primary["sources"] == [primary["source_id"]]
    updated = received[1]["data"]
    assert updated["statement_id"] == primary["statement_id"]
    assert sorted(updated["sources"]) == ["a", "b", "c"]
    assert updated["sources"][0] == primary["source_id"]
    assert "this afternoon" in updated["text"]
