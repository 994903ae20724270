"""Sitemaps: `urlset`, sitemap indexes, gzipped sitemaps, Google News sitemaps, robots.txt.

`parse_sitemap` turns one sitemap document into candidates (one per `<loc>` of
a `urlset`) or, for a `sitemapindex`, into `follow` URLs (its child sitemaps),
which the pipeline fetches in the same poll. `parse_robots` reads the
`Sitemap:` lines of a robots.txt (with protego) into `follow` URLs.

Candidates: `url` is the `<loc>`, `guid` is None (the URL is the identity),
`title` the `news:title` of a Google News sitemap, `published_at` its
`news:publication_date`, else `<lastmod>`.

Safety: the XML parser never expands entities, resolves external ones, reads
the network or builds huge trees (lxml `resolve_entities=False,
no_network=True, huge_tree=False`); a billion-laughs sitemap yields at most
unexpanded references. A gzipped body (`.xml.gz` served as application/gzip)
is unpacked here, up to `base.MAX_GUNZIPPED_BYTES`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import dateutil.parser
import lxml.etree
from protego import Protego

from monitor.models import Candidate, ParsedFeed
from monitor.sources.base import (
    GZIP_MAGIC,
    absolute_http_url,
    dedupe,
    failure,
    gunzip,
    plain_text,
    unique,
)

if TYPE_CHECKING:
    from monitor.sources.base import DocumentParser

__all__ = ["MAX_SITEMAP_URLS", "parse_robots", "parse_sitemap"]

MAX_SITEMAP_URLS = 50_000  # the protocol's own limit per sitemap file
_MAX_DATE_LENGTH = 64


def _parser() -> lxml.etree.XMLParser:
    return lxml.etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        dtd_validation=False,
        recover=True,
        remove_comments=True,
        remove_pis=True,
    )


def parse_sitemap(
    body: bytes,
    *,
    source_id: str,
    feed_url: str,
    content_type: str | None = None,
) -> ParsedFeed:
    """Parse a sitemap (`urlset`) or sitemap index, plain or gzipped. Never raises."""
    try:
        if body.startswith(GZIP_MAGIC):
            unpacked = gunzip(body)
            if isinstance(unpacked, str):
                return failure(f"unreadable gzipped sitemap: {unpacked}")
            body = unpacked
        if not body.strip():
            return failure("empty sitemap")
        try:
            root = lxml.etree.fromstring(body, parser=_parser())
        except (lxml.etree.XMLSyntaxError, ValueError) as exc:
            return failure(f"not a readable XML sitemap: {exc}")
        if root is None:
            return failure("not a readable XML sitemap: no root element")
        name = lxml.etree.QName(root).localname
        if name == "sitemapindex":
            children = unique(
                absolute_http_url(_text(child, "loc"), feed_url)
                for child in _children(root, "sitemap")
            )
            return ParsedFeed(format="sitemapindex", title=None, entries=(), follow=children)
        if name != "urlset":
            return failure(
                f"not a sitemap: the root element is <{name}>, not <urlset> or <sitemapindex>"
            )
        entries = dedupe(
            _candidate(element, source_id=source_id, feed_url=feed_url)
            for element in _children(root, "url")[:MAX_SITEMAP_URLS]
        )
        news = any(_news(element) is not None for element in _children(root, "url")[:1])
        return ParsedFeed(format="newssitemap" if news else "sitemap", title=None, entries=entries)
    except Exception as exc:  # the pool must get a result, whatever the document did
        return failure(f"internal error while parsing a sitemap: {type(exc).__name__}: {exc}")


def parse_robots(
    body: bytes,
    *,
    source_id: str,
    feed_url: str,
    content_type: str | None = None,
) -> ParsedFeed:
    """The sitemaps a robots.txt names, as `follow` URLs. Never raises."""
    try:
        text = body.decode("utf-8", "replace")
        sitemaps = unique(absolute_http_url(s, feed_url) for s in Protego.parse(text).sitemaps)
    except Exception as exc:
        return failure(f"unreadable robots.txt: {type(exc).__name__}: {exc}")
    if not sitemaps:
        return failure("robots.txt names no sitemap (no `Sitemap:` line)")
    return ParsedFeed(format="robots", title=None, entries=(), follow=sitemaps)


def _children(element: lxml.etree._Element, name: str) -> list[lxml.etree._Element]:
    return [
        child
        for child in element
        if isinstance(child.tag, str) and lxml.etree.QName(child).localname == name
    ]


def _text(element: lxml.etree._Element, name: str) -> str | None:
    for child in _children(element, name):
        value = "".join(child.itertext()).strip()
        return value or None
    return None


def _news(element: lxml.etree._Element) -> lxml.etree._Element | None:
    found = _children(element, "news")
    return found[0] if found else None


def _candidate(element: lxml.etree._Element, *, source_id: str, feed_url: str) -> Candidate | None:
    url = absolute_http_url(_text(element, "loc"), feed_url)
    if url is None:
        return None
    news = _news(element)
    title = plain_text(_text(news, "title"), single_line=True) if news is not None else None
    published = (_date(_text(news, "publication_date")) if news is not None else None) or _date(
        _text(element, "lastmod")
    )
    return Candidate(
        source_id=source_id,
        feed_url=feed_url,
        url=url,
        guid=None,
        title=title,
        published_at=published,
    )


def _date(value: str | None) -> dt.datetime | None:
    """A W3C datetime (`2025-03-14`, `2025-03-14T09:30:00+01:00`) as aware UTC."""
    if not value or len(value) > _MAX_DATE_LENGTH:
        return None
    try:
        parsed = dateutil.parser.isoparse(value.strip())
    except (ValueError, OverflowError):
        try:
            parsed = dateutil.parser.parse(value.strip())
        except (ValueError, OverflowError):
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


if TYPE_CHECKING:  # mypy proves that both functions meet the adapter protocol
    _conforms: DocumentParser = parse_sitemap
    _conforms_too: DocumentParser = parse_robots
