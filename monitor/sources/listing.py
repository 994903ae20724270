"""HTML listing pages: a ministry's "News" page, without a feed.

With a `selector` (CSS, e.g. `ul.news-list a`), the links it selects are the
statements; a selected element that is not a link contributes the links inside
it (so `article.news-item` works too). With a `link_pattern` (a regex searched
in the absolute URL), only matching links are kept, and they must look like
an article (`looks_like_article`) outside navigation, headers, footers and
asides. With neither, the page's main list is found by its structure (a run
of repeated sibling blocks, see listing_blocks.py): each block's headline
link is a statement, with the date printed next to it as `published_at`.

Always: links are made absolute, the fragment is dropped, each URL is kept
once (first text wins), and the page itself, in-page anchors, mailto: and
javascript: links and links to other sites are left out. The title of a
candidate is the link's text (else its `title` attribute). Pure, never raises.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import lxml.html

from monitor.models import Candidate, ParsedFeed
from monitor.sources.base import (
    absolute_http_url,
    dedupe,
    failure,
    html_root,
    page_title,
    plain_text,
)
from monitor.sources.listing_blocks import find_main_list
from monitor.userregex import compile_user_regex

if TYPE_CHECKING:
    from collections.abc import Iterable

    from monitor.sources.base import DocumentParser

__all__ = ["explain_listing", "looks_like_article", "parse_listing"]

_MAX_LINKS = 5_000
_NOT_ARTICLES = re.compile(
    r"/(?:tag|tags|category|categories|author|search|login|register|page|feed|rss|"
    r"about|contact|contacts|privacy|terms|sitemap|cookies?|accessibility)(?:/|$)",
    re.IGNORECASE,
)
_FILES = re.compile(
    r"\.(?:css|js|png|jpe?g|gif|svg|webp|ico|zip|mp[34]|xml|json)$", re.IGNORECASE
)
_FURNITURE = frozenset({"nav", "header", "footer", "aside"})
_NUMBER = re.compile(r"\d{2,}")
_DATED_PATH = re.compile(r"/(?:19|20)\d\d/")
_WORD_SPLIT = re.compile(r"[-_+.]+")


def looks_like_article(url: str, text: str | None) -> bool:
    """True when a same-site link's path looks like one article, not a section.

    An article path has at least two segments, is not a known non-article
    section (tags, categories, search, contacts, pagination ...) nor a static
    file, and its last segment carries an id or date (two or more digits), or
    the path a year (`/2025/`), or the last segment is a slug of at least three
    words; or, failing that, the link text is a
    sentence-long headline (five words or more) under a two-level path.
    """
    path = urlsplit(url).path
    segments = [s for s in path.split("/") if s]
    if len(segments) < 2 or _NOT_ARTICLES.search(path) or _FILES.search(path):
        return False
    last = segments[-1].rsplit(".", 1)[0] if "." in segments[-1] else segments[-1]
    if _NUMBER.search(last) or _DATED_PATH.search(path):
        return True
    if len([w for w in _WORD_SPLIT.split(last) if w]) >= 3:
        return True
    return len((text or "").split()) >= 5


def parse_listing(
    body: bytes,
    *,
    source_id: str,
    feed_url: str,
    content_type: str | None = None,
    selector: str | None = None,
    link_pattern: str | None = None,
) -> ParsedFeed:
    """The statement links of an HTML listing page as candidates. Never raises."""
    try:
        root = html_root(body, content_type)
        if root is None:
            return failure("not a readable HTML page")
        base = _base_url(root, feed_url)
        if selector is None and link_pattern is None:
            return _main_list(root, base, source_id=source_id, feed_url=feed_url)
        pattern = compile_user_regex(link_pattern) if link_pattern else None  # RE2: linear
        anchors = _selected_links(root, selector) if selector else root.iter("a")
        candidates = []
        for anchor in anchors:
            url, text = _link(anchor, base, page_url=feed_url)
            if url is None:
                continue
            if pattern is not None and not pattern.search(url):
                continue
            if selector is None and (
                _in_page_furniture(anchor) or not looks_like_article(url, text)
            ):
                continue
            candidates.append(
                Candidate(source_id=source_id, feed_url=feed_url, url=url, guid=None, title=text)
            )
            if len(candidates) >= _MAX_LINKS:
                break
        return ParsedFeed(format="listing", title=page_title(root), entries=dedupe(candidates))
    except Exception as exc:  # the pool must get a result, whatever the document did
        return failure(f"internal error while reading a listing page: {type(exc).__name__}: {exc}")


def explain_listing(
    body: bytes,
    *,
    feed_url: str,
    content_type: str | None = None,
    selector: str | None = None,
    link_pattern: str | None = None,
) -> str:
    """Why `parse_listing` takes the links it takes, in one line for `monitor check --probe`."""
    if selector is not None:
        return f"the links the selector {selector!r} selects" + (
            f", matching link_pattern {link_pattern!r}" if link_pattern else ""
        )
    if link_pattern is not None:
        return f"article-like links matching link_pattern {link_pattern!r}, outside menus"
    try:
        root = html_root(body, content_type)
        if root is None:
            return "not a readable HTML page"
        base = _base_url(root, feed_url)
        found = find_main_list(
            root, page_url=feed_url, resolve=lambda anchor: _link(anchor, base, page_url=feed_url)
        )
    except Exception as exc:  # a probe must print something, whatever the page did
        return f"internal error while reading the page: {type(exc).__name__}: {exc}"
    if found is None:
        return "no run of repeated blocks holding statement links: give a selector"
    return f"main list at {found.path}: {found.reason}"


def _main_list(
    root: lxml.html.HtmlElement, base: str, *, source_id: str, feed_url: str
) -> ParsedFeed:
    """The headline links of the page's main list (listing_blocks.py), with their dates."""
    found = find_main_list(
        root, page_url=feed_url, resolve=lambda anchor: _link(anchor, base, page_url=feed_url)
    )
    items = found.items[:_MAX_LINKS] if found is not None else ()
    candidates = (
        Candidate(
            source_id=source_id,
            feed_url=feed_url,
            url=item.url,
            guid=None,
            title=item.title,
            published_at=item.published_at,
        )
        for item in items
    )
    return ParsedFeed(format="listing", title=page_title(root), entries=dedupe(candidates))


def _selected_links(
    root: lxml.html.HtmlElement, selector: str
) -> Iterable[lxml.html.HtmlElement]:
    for element in root.cssselect(selector):
        if element.tag == "a":
            yield element
        else:
            yield from element.iter("a")


def _in_page_furniture(anchor: lxml.html.HtmlElement) -> bool:
    """True for a link in navigation, a header, a footer or an aside ("related news")."""
    return any(
        element.tag in _FURNITURE or element.get("role") == "navigation"
        for element in anchor.iterancestors()
    )


def _base_url(root: lxml.html.HtmlElement, page_url: str) -> str:
    for element in root.iter("base"):
        return absolute_http_url(element.get("href"), page_url) or page_url
    return page_url


def _link(
    anchor: lxml.html.HtmlElement, base: str, *, page_url: str
) -> tuple[str | None, str | None]:
    """The anchor's absolute same-site URL without fragment, and its text."""
    href = (anchor.get("href") or "").strip()
    if not href or href.startswith("#"):
        return None, None
    url = absolute_http_url(href, base)
    if url is None:  # mailto:, javascript:, tel:, ...
        return None, None
    url = url.split("#", 1)[0]
    if url == page_url.split("#", 1)[0] or not _same_site(url, page_url):
        return None, None
    text = plain_text(anchor.text_content(), html_markup=False, single_line=True)
    return url, text or plain_text(anchor.get("title"), html_markup=False, single_line=True)


def _same_site(url: str, page_url: str) -> bool:
    """Same host (ignoring a leading `www.`) and port (http and https count as one site)."""
    a, b = urlsplit(url), urlsplit(page_url)
    host_a = (a.hostname or "").removeprefix("www.")
    host_b = (b.hostname or "").removeprefix("www.")
    return host_a == host_b and a.port == b.port


if TYPE_CHECKING:  # mypy proves that the function meets the adapter protocol
    _conforms: DocumentParser = parse_listing
