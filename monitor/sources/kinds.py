"""Sniff what kind of document a fetch returned, from its content first.

    json     a JSON document (a JSON Feed, or JSON that is not one)
    feed     XML whose root element is rss, feed (Atom), RDF (RSS 1.0) or channel
    sitemap  XML whose root element is urlset or sitemapindex
    html     an HTML page (home page, listing page)
    robots   a robots.txt (plain text naming `Sitemap:` lines)
    unknown  none of these; the feed parser gets it and says why it is not a feed

The content wins over the Content-Type, which official sites often get wrong
(RSS served as text/html, sitemaps as text/plain). Only the first few KB are read.
"""

from __future__ import annotations

import re
from typing import Literal

__all__ = ["DocumentKind", "sniff_kind"]

DocumentKind = Literal["json", "feed", "sitemap", "html", "robots", "unknown"]

_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_SNIFF_BYTES = 4096
# The first element, after an XML declaration, comments, processing instructions, a DOCTYPE.
_FIRST_ELEMENT = re.compile(rb"\s*<([A-Za-z_][\w.:-]*)")
_SKIPPABLE = re.compile(
    rb"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>)", re.S | re.I
)
_FEED_ROOTS = frozenset({b"rss", b"feed", b"rdf", b"channel"})
_SITEMAP_ROOTS = frozenset({b"urlset", b"sitemapindex"})
_HTML_ROOTS = frozenset({b"html", b"head", b"body"})
_ROBOTS_LINE = re.compile(rb"^\s*(?:user-agent|sitemap|disallow|allow)\s*:", re.I | re.M)


def sniff_kind(body: bytes, content_type: str | None = None) -> DocumentKind:
    """The kind of `body`, by its content, the Content-Type breaking ties."""
    head = body[:_SNIFF_BYTES]
    for bom in _BOMS:
        head = head.removeprefix(bom)
    if b"\x00" in head[:64]:  # UTF-16/32: good enough to sniff the ASCII markup
        head = head.replace(b"\x00", b"")
    head = head.lstrip()
    if head.startswith((b"{", b"[")):
        return "json"
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if head.startswith(b"<"):
        if re.match(rb"<!DOCTYPE\s+html", head, re.I):
            return "html"
        position = 0
        while match := _SKIPPABLE.match(head, position):
            if match.end() == position:
                break
            position = match.end()
        element = _FIRST_ELEMENT.match(head, position)
        if element is not None:
            name = element.group(1).rsplit(b":", 1)[-1].lower()
            if name in _FEED_ROOTS:
                return "feed"
            if name in _SITEMAP_ROOTS:
                return "sitemap"
            if name in _HTML_ROOTS:
                return "html"
        return "html" if media_type in ("text/html", "application/xhtml+xml") else "unknown"
    if _ROBOTS_LINE.search(head):
        return "robots"
    if media_type in ("application/json", "application/feed+json"):
        return "json"
    return "unknown"
