"""Unit tests of the source kinds: sniffing, sitemaps, listing pages, feed autodiscovery."""

from __future__ import annotations

import datetime as dt
import gzip
import pickle
import time
from pathlib import Path

import pytest

from monitor.config import load_config
from monitor.errors import ConfigError
from monitor.models import ParsedFeed, SourceKind
from monitor.sources import (
    parse_discovery,
    parse_document,
    parse_listing,
    parse_robots,
    parse_sitemap,
    sniff_kind,
)
from monitor.sources.base import gunzip
from monitor.sources.listing import looks_like_article

BASE = "https://gov.example"
SM = "http://www.sitemaps.org/schemas/sitemap/0.9"
NEWS = "http://www.google.com/schemas/sitemap-news/0.9"


def doc(
    body: bytes | str,
    *,
    kind: SourceKind = "auto",
    url: str = f"{BASE}/news/",
    content_type: str | None = None,
    selector: str | None = None,
    link_pattern: str | None = None,
) -> ParsedFeed:
    data = body.encode() if isinstance(body, str) else body
    return parse_document(
        data,
        source_id="gov",
        feed_url=url,
        content_type=content_type,
        kind=kind,
        selector=selector,
        link_pattern=link_pattern,
    )


def urlset(*urls: str, news: bool = False) -> str:
    items = []
    for n, loc in enumerate(urls):
        extra = (
            f"<news:news><news:publication><news:name>Gov</news:name><news:language>en"
            f"</news:language></news:publication><news:publication_date>2025-03-1{n}T09:30:00+01:00"
            f"</news:publication_date><news:title>Statement &amp; {n}</news:title></news:news>"
            if news
            else f"<lastmod>2025-01-0{n + 1}</lastmod>"
        )
        items.append(f"<url><loc>{loc}</loc>{extra}</url>")
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="{SM}" xmlns:news="{NEWS}">'
        + "".join(items)
        + "</urlset>"
    )


def index(*locs: str) -> str:
    children = "".join(f"<sitemap><loc>{loc}</loc></sitemap>" for loc in locs)
    return f'<?xml version="1.0"?><sitemapindex xmlns="{SM}">{children}</sitemapindex>'


LISTING = f"""<!DOCTYPE html><html><head><title>News | Ministry</title>
<link rel="stylesheet" href="/style.css"></head><body>
<nav><a href="/">Home</a> <a href="/about">About us</a> <a href="/news/">News</a>
<a href="/tag/economy">Economy</a> <a href="/contacts">Contacts</a></nav>
<ul class="news-list">
  <li><a href="/news/2025/03/14/minister-meets-envoy.html">Minister meets envoy</a></li>
  <li><a href="/news/2025/03/13/budget-approved.html#top"> Budget   approved </a></li>
  <li><a href="/news/2025/03/13/budget-approved.html">Budget approved (again)</a></li>
  <li><a href="/news/12345">Statement on the flood</a></li>
  <li><a href="https://other.example/news/2025/03/12/elsewhere">Elsewhere</a></li>
  <li><a href="mailto:press@gov.example">Write to us</a></li>
  <li><a href="javascript:void(0)">Share</a></li>
  <li><a href="#comments">Comments</a></li>
</ul>
<div class="pager"><a href="/news/page/2">Next page</a></div>
<footer><a href="/privacy">Privacy</a> <a href="{BASE}/news/">This page</a></footer>
</body></html>"""


# --- sniffing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('<?xml version="1.0"?>\n<!-- c --><rss version="2.0"><channel/></rss>', "feed"),
        ('<feed xmlns="http://www.w3.org/2005/Atom"></feed>', "feed"),
        ('<?xml version="1.0"?><rdf:RDF xmlns:rdf="x"></rdf:RDF>', "feed"),
        (urlset("https://a/1"), "sitemap"),
        (index("https://a/s.xml"), "sitemap"),
        ('{"version": "https://jsonfeed.org/version/1.1", "items": []}', "json"),
        ("<!DOCTYPE html><html><body></body></html>", "html"),
        ("<html><body>x</body></html>", "html"),
        ("User-agent: *\nDisallow: /admin\nSitemap: https://a/sitemap.xml\n", "robots"),
        ("hello", "unknown"),
    ],
)
def test_sniff_kind_by_content(body: str, expected: str) -> None:
    assert sniff_kind(body.encode()) == expected


def test_sniff_kind_content_beats_a_wrong_content_type() -> None:
    assert sniff_kind(urlset("https://a/1").encode(), "text/html") == "sitemap"
    assert sniff_kind(b'\xef\xbb\xbf<rss version="2.0"/>', "text/plain") == "feed"


# --- sitemaps -----------------------------------------------------------------------------


def test_urlset_entries_are_candidates_keyed_by_url() -> None:
    result = doc(urlset(f"{BASE}/a", "/relative/b", f"{BASE}/a", "ftp://x/y"))
    assert result.error is None and result.format == "sitemap"
    assert [c.url for c in result.entries] == [f"{BASE}/a", f"{BASE}/relative/b"]
    first = result.entries[0]
    assert first.guid is None and first.key == f"{BASE}/a"
    assert first.published_at == dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    assert first.feed_url == f"{BASE}/news/"


def test_news_sitemap_title_and_publication_date() -> None:
    result = doc(urlset(f"{BASE}/s/1", news=True))
    assert result.format == "newssitemap"
    (entry,) = result.entries
    assert entry.title == "Statement & 0"
    assert entry.published_at == dt.datetime(2025, 3, 10, 8, 30, tzinfo=dt.UTC)


def test_sitemap_index_lists_children_to_follow() -> None:
    result = doc(index(f"{BASE}/s1.xml", "/s2.xml.gz", f"{BASE}/s1.xml"))
    assert result.format == "sitemapindex" and result.entries == ()
    assert result.follow == (f"{BASE}/s1.xml", f"{BASE}/s2.xml.gz")


def test_gzipped_sitemap_is_unpacked() -> None:
    body = gzip.compress(urlset(f"{BASE}/gz/1").encode())
    kinds: tuple[SourceKind, ...] = ("auto", "sitemap")
    for kind in kinds:
        result = doc(body, kind=kind, content_type="application/x-gzip")
        assert [c.url for c in result.entries] == [f"{BASE}/gz/1"]


def test_gzip_bomb_is_refused_within_the_cap() -> None:
    bomb = gzip.compress(b"<" + b" " * 60_000_000, compresslevel=9)
    assert len(bomb) < 200_000
    result = doc(bomb, kind="sitemap")
    assert result.entries == () and result.error and "more than" in result.error
    assert isinstance(gunzip(gzip.compress(b"x" * 1000), max_bytes=999), str)
    assert gunzip(gzip.compress(b"x" * 1000), max_bytes=1000) == b"x" * 1000
    assert "corrupt" in str(gunzip(b"\x1f\x8bnot gzip"))


def test_billion_laughs_sitemap_does_not_expand() -> None:
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    body = (
        f'<?xml version="1.0"?><!DOCTYPE urlset [{entities}]>'
        f'<urlset xmlns="{SM}"><url><loc>{BASE}/&lol9;</loc></url></urlset>'
    )
    started = time.monotonic()
    result = doc(body, kind="sitemap")
    assert time.monotonic() - started < 2
    assert all("lollollol" not in (c.url or "") for c in result.entries)


def test_external_entity_is_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    body = (
        f'<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY x SYSTEM "file://{secret}">]>'
        f'<urlset xmlns="{SM}"><url><loc>{BASE}/&x;</loc></url></urlset>'
    )
    result = parse_sitemap(body.encode(), source_id="gov", feed_url=BASE)
    assert all("TOPSECRET" not in (c.url or "") for c in result.entries)


def test_robots_txt_names_the_sitemaps() -> None:
    body = b"User-agent: *\nDisallow: /private\nSitemap: https://gov.example/sitemap.xml\nSitemap: /news-sitemap.xml\n"
    result = parse_robots(body, source_id="gov", feed_url=f"{BASE}/robots.txt")
    assert result.follow == (f"{BASE}/sitemap.xml", f"{BASE}/news-sitemap.xml")
    assert doc(body, kind="sitemap", url=f"{BASE}/robots.txt").follow == result.follow
    assert parse_robots(b"User-agent: *\n", source_id="gov", feed_url=BASE).error


@pytest.mark.parametrize("body", [b"", b"<urlset", b"<html><body>x</body></html>", b"\x00\xff"])
def test_bad_sitemaps_give_an_error_and_never_raise(body: bytes) -> None:
    result = doc(body, kind="sitemap")
    assert result.entries == ()
    assert result.error or result.follow == ()


# --- listing pages ------------------------------------------------------------------------


def test_listing_with_a_selector() -> None:
    result = doc(LISTING, kind="listing", selector="ul.news-list a")
    assert result.error is None and result.format == "listing"
    assert [(c.url, c.title) for c in result.entries] == [
        (f"{BASE}/news/2025/03/14/minister-meets-envoy.html", "Minister meets envoy"),
        (f"{BASE}/news/2025/03/13/budget-approved.html", "Budget approved"),
        (f"{BASE}/news/12345", "Statement on the flood"),
    ]
    assert all(c.guid is None and c.feed_url == f"{BASE}/news/" for c in result.entries)


def test_listing_selector_on_containers_and_a_link_pattern() -> None:
    result = doc(LISTING, kind="listing", selector="ul.news-list li", link_pattern=r"/\d{4}/")
    assert [c.title for c in result.entries] == ["Minister meets envoy", "Budget approved"]


def test_a_selector_on_an_auto_source_reads_a_listing() -> None:
    result = doc(LISTING, selector="ul.news-list a")
    assert result.format == "listing" and len(result.entries) == 3


def test_listing_heuristic_without_a_selector() -> None:
    result = doc(LISTING, kind="listing")
    assert [c.url for c in result.entries] == [
        f"{BASE}/news/2025/03/14/minister-meets-envoy.html",
        f"{BASE}/news/2025/03/13/budget-approved.html",
        f"{BASE}/news/12345",
    ]
    # The same for an auto source whose page links to no feed.
    assert doc(LISTING).entries == result.entries


@pytest.mark.parametrize(
    ("url", "text", "expected"),
    [
        (f"{BASE}/press/2025-03-14-statement", None, True),
        (f"{BASE}/news/minister-visits-the-north", None, True),
        (f"{BASE}/news/item", "The minister visits the northern region today", True),
        (f"{BASE}/news/item", "Item", False),
        (f"{BASE}/about", "About the ministry and its many departments", False),
        (f"{BASE}/news/page/2", None, False),
        (f"{BASE}/category/news-and-events-2025", None, False),
        (f"{BASE}/img/photo-2025-03-14.jpg", None, False),
    ],
)
def test_looks_like_article(url: str, text: str | None, expected: bool) -> None:
    assert looks_like_article(url, text) is expected


def test_listing_respects_base_href_and_page_charset() -> None:
    body = (
        b'<html><head><meta charset="windows-1251"><base href="https://gov.example/ru/">'
        b'</head><body><a class="n" href="news/123">'
        + "Заявление".encode("cp1251")
        + b"</a></body></html>"
    )
    result = parse_listing(body, source_id="gov", feed_url=f"{BASE}/ru/", selector="a.n")
    assert [(c.url, c.title) for c in result.entries] == [(f"{BASE}/ru/news/123", "Заявление")]


def test_an_html_page_with_nothing_to_read_is_an_error() -> None:
    result = doc("<html><head><title>404</title></head><body><p>Not found</p></body></html>")
    assert result.entries == () and result.error


# --- autodiscovery ------------------------------------------------------------------------


def home(*links: str) -> str:
    return f"<!DOCTYPE html><html><head><title>Ministry</title>{''.join(links)}</head><body><a href='/news/2025/03/14/x-y-z'>x</a></body></html>"


def test_autodiscovery_finds_the_main_feed() -> None:
    page = home(
        '<link rel="alternate" type="application/rss+xml" title="Comments" href="/comments/feed">',
        '<link rel="stylesheet" href="/s.css">',
        '<link rel="Alternate" type="application/atom+xml; charset=utf-8" href="/atom.xml">',
        '<link rel="alternate" type="application/feed+json" href="/feed.json">',
    )
    result = doc(page, url=f"{BASE}/")
    assert result.format == "discovery" and result.error is None
    assert result.follow == (f"{BASE}/atom.xml",)
    assert result.title == "Ministry"


def test_autodiscovery_of_a_json_feed_only() -> None:
    page = home('<link rel="alternate" type="application/feed+json" href="feed.json">')
    assert doc(page, url=f"{BASE}/en/").follow == (f"{BASE}/en/feed.json",)


def test_forced_listing_does_not_discover() -> None:
    page = home('<link rel="alternate" type="application/rss+xml" href="/rss">')
    result = doc(page, kind="listing")
    assert result.follow == () and result.format == "listing"


def test_no_feed_link_is_an_error_for_parse_discovery() -> None:
    result = parse_discovery(home().encode(), source_id="gov", feed_url=BASE)
    assert result.error and result.follow == ()


def test_results_are_picklable() -> None:
    for result in (doc(LISTING, kind="listing"), doc(urlset(f"{BASE}/1", news=True))):
        assert pickle.loads(pickle.dumps(result)) == result


# --- configuration ------------------------------------------------------------------------


def test_config_accepts_the_new_kinds(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "sources:\n"
        "  - {id: a, url: 'https://gov.example/news/', kind: listing, selector: 'ul.news-list a',"
        " link_pattern: '/news/\\d+'}\n"
        "  - {id: b, url: 'https://gov.example/', kind: sitemap}\n"
    )
    sources = load_config(path, env={}).resolved_sources()
    assert (sources[0].kind, sources[0].selector, sources[0].link_pattern) == (
        "listing",
        "ul.news-list a",
        r"/news/\d+",
    )
    assert sources[1].kind == "sitemap" and sources[1].selector is None


def test_config_errors_name_the_path(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "sources:\n"
        "  - {id: a, url: 'https://gov.example/1'}\n"
        "  - {id: b, url: 'https://gov.example/2', kind: rss}\n"
        "  - {id: c, url: 'https://gov.example/3', selector: 'ul..news a', link_pattern: '(['}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    problems = "\n".join(caught.value.problems)
    assert "sources[1].kind:" in problems
    assert "sources[2].selector: must be a valid CSS selector" in problems
    assert "sources[2].link_pattern: must be a valid regular expression" in problems
