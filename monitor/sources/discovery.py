"""Feed autodiscovery: the feeds an HTML page announces with `<link rel="alternate">`.

    <link rel="alternate" type="application/rss+xml" href="/feed.xml">

is followed to its feed (RSS, Atom or JSON Feed). Links are resolved against the
page's `<base href>`, else its URL. Comment feeds (a title or URL naming
"comments") come last, so a site's main feed wins. Pure and never raises.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lxml.html

from monitor.models import ParsedFeed
from monitor.sources.base import absolute_http_url, failure, html_root, unique

if TYPE_CHECKING:
    from monitor.sources.base import DocumentParser

__all__ = ["FEED_LINK_TYPES", "discover_feeds", "parse_discovery"]

FEED_LINK_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/feed+json",
        "application/json+feed",  # seen in the wild
        "application/rdf+xml",
    }
)


def discover_feeds(root: lxml.html.HtmlElement, page_url: str) -> tuple[str, ...]:
    """The absolute URLs of the feeds `root` links to, main feeds first."""
    base = page_url
    for element in root.iter("base"):
        href = element.get("href")
        if href:
            base = absolute_http_url(href, page_url) or page_url
        break
    main: list[str | None] = []
    comments: list[str | None] = []
    for link in root.iter("link"):
        rels = (link.get("rel") or "").lower().split()
        media_type = (link.get("type") or "").split(";", 1)[0].strip().lower()
        if "alternate" not in rels or media_type not in FEED_LINK_TYPES:
            continue
        url = absolute_http_url(link.get("href"), base)
        if url is None or url.split("#", 1)[0] == page_url.split("#", 1)[0]:
            continue
        label = f"{link.get('title') or ''} {url}".lower()
        (comments if "comment" in label else main).append(url)
    return unique([*main, *comments])


def parse_discovery(
    body: bytes,
    *,
    source_id: str,
    feed_url: str,
    content_type: str | None = None,
) -> ParsedFeed:
    """An HTML page as `follow=(its first feed,)`, or an error when it links to none."""
    try:
        root = html_root(body, content_type)
        feeds = discover_feeds(root, feed_url) if root is not None else ()
    except Exception as exc:  # the pool must get a result, whatever the document did
        return failure(f"internal error during feed discovery: {type(exc).__name__}: {exc}")
    if not feeds:
        return failure(
            'the page links to no feed (no <link rel="alternate" type=".../rss+xml|atom+xml|'
            'feed+json">)'
        )
    title = None
    if root is not None:
        found = root.find(".//title")
        title = " ".join(found.text_content().split()) or None if found is not None else None
    return ParsedFeed(format="discovery", title=title, entries=(), follow=feeds[:1])


if TYPE_CHECKING:  # mypy proves that the function meets the adapter protocol
    _conforms: DocumentParser = parse_discovery
