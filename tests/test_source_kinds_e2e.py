"""End to end, each source kind: a loopback site, the real broker, the whole service.

Atom, JSON Feed, a Google News sitemap reached from a site root (robots.txt →
sitemap index → gzipped news sitemap), a listing page with a selector, and a
home page whose feed is found by autodiscovery. Every candidate goes through
the same detect → extract → publish path; `data.feed_url` names the document
it was found in.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import jsonschema
import pytest
from structlog.testing import capture_logs

from tests.conftest import EventReader, make_config, running, wait_until
from tests.sites.feeds import Item, page, rss
from tests.sites.loopback import LoopbackSite

pytestmark = pytest.mark.integration

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[1] / "monitor/schema/statement-v1.json").read_text()
)
SM = "http://www.sitemaps.org/schemas/sitemap/0.9"
NEWS = "http://www.google.com/schemas/sitemap-news/0.9"


def statement_page(site: LoopbackSite, n: int) -> str:
    return site.put(
        f"/news/2025/statement-{n}.html",
        page(
            f"Statement number {n}",
            [
                f"The ministry announced measure number {n} today after a meeting of the board.",
                "The measure takes effect on the first day of next month and applies nationwide.",
            ],
        ),
    )


def atom(urls: list[str]) -> str:
    entries = "".join(
        f"<entry><id>tag:gov,2025:{n}</id><title>Statement number {n}</title>"
        f'<link rel="alternate" href="{escape(url)}"/><updated>2025-03-14T09:30:00Z</updated></entry>'
        for n, url in enumerate(urls, 1)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>Ministry</title><id>tag:gov,2025:feed</id><updated>2025-03-14T09:30:00Z</updated>"
        f"{entries}</feed>"
    )


def json_feed(urls: list[str]) -> str:
    items = [
        {"id": f"j-{n}", "url": url, "title": f"Statement number {n}"}
        for n, url in enumerate(urls, 1)
    ]
    return json.dumps(
        {"version": "https://jsonfeed.org/version/1.1", "title": "Ministry", "items": items}
    )


def news_sitemap(urls: list[str]) -> bytes:
    entries = "".join(
        f"<url><loc>{escape(url)}</loc><news:news><news:publication><news:name>Gov</news:name>"
        f"<news:language>en</news:language></news:publication>"
        f"<news:publication_date>2025-03-14T09:30:00Z</news:publication_date>"
        f"<news:title>Statement number {n}</news:title></news:news></url>"
        for n, url in enumerate(urls, 1)
    )
    xml = f'<?xml version="1.0"?><urlset xmlns="{SM}" xmlns:news="{NEWS}">{entries}</urlset>'
    return gzip.compress(xml.encode())


def listing(urls: list[str]) -> str:
    links = "".join(
        f'<li><a href="{escape(url)}">Statement number {n}</a></li>'
        for n, url in enumerate(urls, 1)
    )
    return (
        "<!DOCTYPE html><html><head><title>News</title></head><body>"
        '<nav><a href="/">Home</a><a href="/news/2025/archive-of-everything">Archive</a></nav>'
        f'<ul class="news-list">{links}</ul></body></html>'
    )


def check(event: dict[str, Any], *, n: int, feed_url: str, url: str) -> None:
    jsonschema.validate(event, SCHEMA)
    data = event["data"]
    assert data["feed_url"] == feed_url
    assert data["url"] == url
    assert data["title"] == f"Statement number {n}"
    assert data["text"].startswith(f"The ministry announced measure number {n}")


async def test_atom_feed(
    tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str, events: EventReader
) -> None:
    url = statement_page(site, 1)
    feed = site.put("/atom.xml", atom([url]), content_type="application/atom+xml")
    config = make_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        sources=[{"id": "atom", "url": feed, "backfill": True}],
    )
    async with running(config):
        received = await events.read(1, settle=1.0)
    assert len(received) == 1
    check(received[0], n=1, feed_url=feed, url=url)
    assert received[0]["data"]["guid"] == "tag:gov,2025:1"


async def test_json_feed(
    tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str, events: EventReader
) -> None:
    url = statement_page(site, 1)
    feed = site.put("/feed.json", json_feed([url]), content_type="application/feed+json")
    config = make_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        sources=[{"id": "json", "url": feed, "backfill": True}],
    )
    async with running(config):
        received = await events.read(1, settle=1.0)
    assert len(received) == 1
    check(received[0], n=1, feed_url=feed, url=url)


async def test_news_sitemap_found_from_the_site_root(
    tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str, events: EventReader
) -> None:
    urls = [statement_page(site, 1)]
    site.put(
        "/robots.txt",
        f"User-agent: *\nDisallow: /private\nSitemap: {site.url('/sitemap-index.xml')}\n",
        content_type="text/plain",
    )
    site.put(
        "/sitemap-index.xml",
        f'<?xml version="1.0"?><sitemapindex xmlns="{SM}"><sitemap>'
        f"<loc>{site.url('/news-sitemap.xml.gz')}</loc></sitemap></sitemapindex>",
        content_type="application/xml",
    )
    sitemap = site.put("/news-sitemap.xml.gz", news_sitemap(urls), content_type="application/gzip")
    config = make_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        sources=[{"id": "sitemap", "url": site.url("/"), "kind": "sitemap"}],
    )
    async with running(config) as service:
        await wait_until(lambda: service.store.has_seen("sitemap"))  # first sight: silent
        urls.insert(0, statement_page(site, 2))
        site.put("/news-sitemap.xml.gz", news_sitemap(urls), content_type="application/gzip")
        received = await events.read(1, settle=1.5)
    assert len(received) == 1, [e["data"]["title"] for e in received]
    check(received[0], n=2, feed_url=sitemap, url=urls[0])
    assert received[0]["data"]["guid"] is None
    # The unchanged child sitemap is asked conditionally: 304s, not full downloads.
    assert any(r.status == 304 for r in site.hits("/news-sitemap.xml.gz"))


async def test_listing_page_with_a_selector(
    tmp_path: Path, site: LoopbackSite, topic: str, kafka_bootstrap: str, events: EventReader
) -> None:
    urls = [statement_page(site, 1)]
    news = site.put("/news/", listing(urls))
    source = {"id": "listing", "url": news, "kind": "listing", "selector": "ul.news-list a"}
    config = make_config(tmp_path, bootstrap=kafka_bootstrap, topic=topic, sources=[source])
    async with running(config) as service:
        await wait_until(lambda: service.store.has_seen("listing"))
        urls.insert(0, statement_page(site, 2))
        site.put("/news/", listing(urls))
        received = await events.read(1, settle=1.5)
    assert len(received) == 1, [e["data"]["title"] for e in received]
    check(received[0], n=2, feed_url=news, url=urls[0])


async def test_home_page_with_autodiscovery(
    tmp_path: Path,
    site: LoopbackSite,
    topic: str,
    kafka_bootstrap: str,
    events: EventReader,
) -> None:
    feed = [Item("Statement number 1", statement_page(site, 1), guid="g-1")]
    feed_url = site.put("/feed.xml", rss(feed), content_type="application/rss+xml")
    home = site.put(
        "/",
        "<!DOCTYPE html><html><head><title>Ministry</title>"
        '<link rel="alternate" type="application/rss+xml" title="News" href="/feed.xml">'
        "</head><body><p>Welcome</p></body></html>",
    )
    config = make_config(
        tmp_path,
        bootstrap=kafka_bootstrap,
        topic=topic,
        sources=[{"id": "home", "url": home}],
    )
    with capture_logs() as logs:
        async with running(config) as service:
            await wait_until(lambda: service.store.has_seen("home"))
            feed.insert(0, Item("Statement number 2", statement_page(site, 2), guid="g-2"))
            site.put("/feed.xml", rss(feed), content_type="application/rss+xml")
            received = await events.read(1, settle=1.5)
            await wait_until(lambda: len(site.hits("/feed.xml")) >= 3)
    assert len(received) == 1, [e["data"]["title"] for e in received]
    check(received[0], n=2, feed_url=feed_url, url=feed[0].link)
    # The discovered feed is remembered: the home page is read once, then the feed is polled.
    assert len(site.hits("/")) == 1
    discovered = [e for e in logs if e["event"] == "feed_discovered"]
    assert [(e["source_id"], e["url"]) for e in discovered] == [("home", feed_url)]


async def test_a_discovered_feed_is_remembered_across_restarts(
    tmp_path: Path,
    site: LoopbackSite,
    topic: str,
    kafka_bootstrap: str,
    events: EventReader,
) -> None:
    feed = [Item("Statement number 1", statement_page(site, 1), guid="g-1")]
    feed_url = site.put("/feed.xml", rss(feed), content_type="application/rss+xml")
    home = site.put(
        "/",
        "<!DOCTYPE html><html><head><title>Ministry</title>"
        '<link rel="alternate" type="application/rss+xml" title="News" href="/feed.xml">'
        "</head><body><p>Welcome</p></body></html>",
    )
    config = make_config(
        tmp_path, bootstrap=kafka_bootstrap, topic=topic, sources=[{"id": "home", "url": home}]
    )
    async with running(config) as service:
        await wait_until(lambda: service.store.has_seen("home"))
        assert service.store.discovered_url("home") == feed_url
    assert len(site.hits("/")) == 1
    hits = len(site.hits("/feed.xml"))
    with capture_logs() as logs:
        async with running(config) as service:
            assert service.store.discovered_url("home") == feed_url
            feed.insert(0, Item("Statement number 2", statement_page(site, 2), guid="g-2"))
            site.put("/feed.xml", rss(feed), content_type="application/rss+xml")
            received = await events.read(1, settle=1.5)
            await wait_until(lambda: len(site.hits("/feed.xml")) >= hits + 2)
    # After the restart the home page is not read again: the saved feed is polled.
    assert len(site.hits("/")) == 1
    assert [e for e in logs if e["event"] == "feed_discovered"] == []
    assert len(received) == 1, [e["data"]["title"] for e in received]
    check(received[0], n=2, feed_url=feed_url, url=feed[0].link)
