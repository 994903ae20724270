"""RSS 0.9x/1.0/2.0 and Atom 0.3/1.0 through feedparser, and the sniffing entry point.

`parse_document` is the one function the pipeline calls for a fetched feed. It
sends JSON Feeds to `jsonfeed.py` and everything else to feedparser, then turns
each entry into a `Candidate`. It is pure and picklable (bytes in, frozen
dataclasses out) and never raises.

XML safety, as measured with feedparser 6.0.14 on expat 2.5.0:

- External entities are not resolved. feedparser turns off external general
  entities in expat, external parameter entities stay off, and its fallback
  parser (sgmllib) never reads files or URLs. An XXE feed naming
  `file:///etc/passwd` yields no file content.
- Entity expansion is NOT safe. feedparser strips entity declarations it thinks
  unsafe only when each sits on its own line: a billion-laughs DTD written on one
  line reaches expat, which stops it only after about 2 s and 60 MB. Worse, a
  "quadratic blowup" (one long literal entity referenced many times) passes
  feedparser's filter, and its fallback parser expands it with no limit: a
  110 KB document took 41 s and 3 GB.

So `_refuse_entities` checks every `<!ENTITY` declaration, in the document as
feedparser will see it (after its own conversion to UTF-8, so UTF-16 or UTF-7
tricks do not hide one), before feedparser runs. A declaration is allowed only
when it is a general entity with a literal value made of text and character
references, and the declared entities together expand to at most
`_MAX_ENTITY_EXPANSION` characters. Anything else (external or parameter
entities, entities that reference entities, too much expansion) gets a
`ParsedFeed` with `error` set. A feed that merely quotes such a declaration in a
CDATA section next to a DOCTYPE would be refused too; no real feed does that.

Links: the document is parsed without a base URI, and relative links are
resolved here against the feed URL. (Given a base URI, feedparser rewrites an
RSS `<guid>` such as `12345` into `https://host/path/12345`, both as the guid and
as the link, which would change the entry's identity and invent a URL.) An RSS
guid that stands in for a missing `<link>` counts as a link only when it is
already an absolute http(s) URL.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import charset_normalizer
import feedparser
from feedparser.encodings import convert_to_utf8

from monitor.models import Candidate, ParsedFeed, SourceKind
from monitor.sources.base import (
    GZIP_MAGIC,
    DocumentParser,
    absolute_http_url,
    clean,
    dedupe,
    failure,
    gunzip,
    plain_text,
    text_to_html,
    unique,
)
from monitor.sources.discovery import parse_discovery
from monitor.sources.jsonfeed import parse_json_feed
from monitor.sources.kinds import sniff_kind
from monitor.sources.listing import parse_listing
from monitor.sources.sitemap import parse_robots, parse_sitemap
from monitor.sources.telegram import parse_telegram

__all__ = ["parse_document", "parse_xml_feed"]

_JSON_MEDIA_TYPES = frozenset({"application/feed+json", "application/json"})
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_SNIFF_BYTES = 512

_ENTITY_OPEN = re.compile(rb"<!ENTITY")
_SAFE_ENTITY = re.compile(
    rb"""<!ENTITY\s+(?P<name>[A-Za-z_:][\w.:-]*)\s+(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)')\s*>"""
)
_REFERENCE = re.compile(rb"&(?!#[0-9]+;|#[xX][0-9A-Fa-f]+;)|%")
_MAX_ENTITY_DECLARATIONS = 100
_MAX_ENTITY_EXPANSION = 1_000_000  # characters the declared entities may add in total

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "html", "xhtml"})


def parse_document(
    body: bytes,
    *,
    source_id: str,
    feed_url: str,
    content_type: str | None = None,
    kind: SourceKind = "auto",
    selector: str | None = None,
    link_pattern: str | None = None,
) -> ParsedFeed:
    """Parse one fetched document of any supported kind. Never raises.

    A gzipped body is unpacked first (capped, see `base.gunzip`). Then, with
    `kind` "auto", the content decides (`kinds.sniff_kind`): a sitemap or
    robots.txt goes to `sitemap.py`; "telegram" is a channel's web preview
    (`telegram.py`); an HTML page with a `selector` is a
    listing page, without one it is searched for a feed link (`discovery.py`)
    and, linking to none, read as a listing page by the heuristic. "sitemap"
    and "listing" force those adapters; "feed" (and any other document) goes to
    the feed parsers: JSON Feed by a JSON media type or a body that starts with
    `{` (a JSON content type on a body that starts with `<` is a server error,
    and the body wins), everything else to feedparser.
    """
    try:
        if body.startswith(GZIP_MAGIC):
            unpacked = gunzip(body)
            if isinstance(unpacked, str):
                return failure(f"unreadable gzipped document: {unpacked}")
            body = unpacked
        if not body.strip():
            return failure("empty document: the server sent no body")
        if kind == "telegram":
            return parse_telegram(
                body, source_id=source_id, feed_url=feed_url, content_type=content_type
            )
        sniffed = sniff_kind(body, content_type) if kind != "feed" else "feed"
        parser: DocumentParser
        if kind == "listing" or (kind == "auto" and sniffed == "html" and selector):
            return parse_listing(
                body,
                source_id=source_id,
                feed_url=feed_url,
                content_type=content_type,
                selector=selector,
                link_pattern=link_pattern,
            )
        if kind == "sitemap" or (kind == "auto" and sniffed in ("sitemap", "robots")):
            parser = parse_robots if sniffed == "robots" else parse_sitemap
        elif kind == "auto" and sniffed == "html":
            discovered = parse_discovery(
                body, source_id=source_id, feed_url=feed_url, content_type=content_type
            )
            if discovered.follow:
                return discovered
            listing = parse_listing(
                body,
                source_id=source_id,
                feed_url=feed_url,
                content_type=content_type,
                link_pattern=link_pattern,
            )
            if listing.entries or listing.error:
                return listing
            return failure(
                "an HTML page that links to no feed and to nothing that looks like a statement: "
                "give the feed's URL, or set `kind: listing` and a `selector` for its news links"
            )
        else:
            parser = parse_json_feed if _is_json(body, content_type) else parse_xml_feed
        return parser(body, source_id=source_id, feed_url=feed_url, content_type=content_type)
    except Exception as exc:  # the pool must get a result, whatever the document did
        return failure(f"internal error while parsing: {type(exc).__name__}: {exc}")


def parse_xml_feed(
    body: bytes,
    *,
    source_id: str,
    feed_url: str,
    content_type: str | None = None,
) -> ParsedFeed:
    """Parse RSS or Atom with feedparser. Never raises for a bad document."""
    declared = content_type
    content_type = _with_detected_charset(body, content_type)
    guessed_charset = content_type != declared
    headers = {"content-type": content_type} if content_type else {}
    try:
        refusal = _refuse_entities(body, headers)
    except (ValueError, LookupError) as exc:  # feedparser's charset sniffing gave up
        return failure(
            f"unreadable character encoding ({type(exc).__name__}: {exc}): the XML "
            "declaration or the Content-Type names an encoding that cannot be used"
        )
    if refusal:
        return failure(refusal)
    try:
        # A stream, never bytes or str: feedparser treats a string as a path or URL to open.
        result = feedparser.parse(io.BytesIO(body), response_headers=headers)
    except Exception as exc:  # feedparser's fallback parser crashes on some broken markup
        return failure(
            f"feedparser failed on this malformed document ({type(exc).__name__}: {exc}); "
            "the feed must be fixed at its source"
        )
    version = str(result.get("version") or "")
    raw_entries = result.get("entries") or []
    if not version and not raw_entries:
        return failure(_not_a_feed(result))
    feed = result.get("feed") or {}
    entries = dedupe(
        _candidate(entry, source_id=source_id, feed_url=feed_url) for entry in raw_entries
    )
    return ParsedFeed(
        format=version or "unknown",
        title=_text(feed, "title", single_line=True),
        entries=entries,
        # A non-UTF-8 document that names no charset is malformed, even once decoded.
        bozo=bool(result.get("bozo")) or guessed_charset,
        ttl=_ttl(feed.get("ttl")),
        hub=_feed_link(feed, "hub", feed_url),
        self_url=_feed_link(feed, "self", feed_url),
    )


def _feed_link(feed: Any, rel: str, feed_url: str) -> str | None:
    """The first absolute http(s) `<link rel=...>` of the feed itself (WebSub `hub`, `self`)."""
    for link in feed.get("links") or []:
        if isinstance(link, Mapping) and link.get("rel") == rel:
            url = absolute_http_url(link.get("href"), feed_url)
            if url is not None:
                return url
    return None


def _is_json(body: bytes, content_type: str | None) -> bool:
    """True when the document is (meant to be) a JSON Feed."""
    head = body[:_SNIFF_BYTES]
    for bom in _BOMS:
        head = head.removeprefix(bom)
    head = head.replace(b"\x00", b"").lstrip()  # UTF-16/32 JSON: drop the zero bytes
    if head.startswith(b"{"):
        return True
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type in _JSON_MEDIA_TYPES and not head.startswith(b"<")


def _refuse_entities(body: bytes, headers: Mapping[str, str]) -> str | None:
    """Why the document's entity declarations are unsafe to expand, or None if they are safe.

    Always looks at the document as feedparser will parse it, after its conversion
    to UTF-8: a declaration can hide in UTF-16, EBCDIC, UTF-7 or `unicode_escape`.
    """
    data: bytes = convert_to_utf8(dict(headers), body, {})
    declarations = list(_ENTITY_OPEN.finditer(data))
    if len(declarations) > _MAX_ENTITY_DECLARATIONS:
        return _refusal(f"declares {len(declarations)} XML entities")
    expansion = 0
    for found in declarations:
        match = _SAFE_ENTITY.match(data, found.start())
        value = _literal(match)
        if match is None or value is None or _REFERENCE.search(value):
            snippet = data[found.start() : found.start() + 80].decode("utf-8", "replace")
            return _refusal(f"declares an external, parameter or nested XML entity ({snippet!r})")
        expansion += len(value) * data.count(b"&" + match.group("name") + b";")
        if expansion > _MAX_ENTITY_EXPANSION:
            return _refusal("declares XML entities that expand to more than 1 MB")
    return None


def _literal(match: re.Match[bytes] | None) -> bytes | None:
    """The quoted value of a matched entity declaration."""
    if match is None:
        return None
    value: bytes | None = match.group("dq")
    return value if value is not None else match.group("sq")


def _refusal(reason: str) -> str:
    return (
        f"refused: the document {reason}, which could expand without bound or read local "
        "files (billion laughs / XXE); a genuine feed needs no DTD entities"
    )


def _not_a_feed(result: Any) -> str:
    """The error for a document feedparser found no feed in."""
    problem = result.get("bozo_exception")
    detail = f" ({type(problem).__name__}: {problem})" if problem else ""
    return (
        f"not an RSS, Atom or JSON feed{detail}: check that the URL serves the feed "
        "itself, not an HTML page or an error page"
    )


def _candidate(entry: Any, *, source_id: str, feed_url: str) -> Candidate | None:
    """One feedparser entry as a Candidate, or None when it cannot be identified."""
    guid = _guid(entry)
    url = _link(entry, feed_url)
    if guid is None and url is None:
        return None
    return Candidate(
        source_id=source_id,
        feed_url=feed_url,
        url=url,
        guid=guid,
        title=_text(entry, "title", single_line=True),
        summary=_text(entry, "summary", single_line=False),
        content_html=_content_html(entry.get("content")),
        published_at=_utc(entry.get("published_parsed")) or _utc(entry.get("updated_parsed")),
        updated_at=_distinct_update(entry),
        authors=unique(_names(entry.get("authors"), "name") or [entry.get("author")]),
        tags=unique(_names(entry.get("tags"), "term") or _names(entry.get("tags"), "label")),
    )


def _guid(entry: Any) -> str | None:
    value = entry.get("id")
    if not isinstance(value, str):
        return None
    return clean(value).strip() or None


def _link(entry: Any, feed_url: str) -> str | None:
    """The entry's absolute http(s) link: `link`, else its first alternate link."""
    link = entry.get("link")
    if entry.get("guidislink") and link == entry.get("id"):
        # A guid (or Atom id) standing in for the link counts only as a full URL already.
        url = absolute_http_url(link, "")
    else:
        url = absolute_http_url(link, feed_url)
    if url is not None:
        return url
    for alternate in entry.get("links") or []:
        if isinstance(alternate, Mapping) and alternate.get("rel", "alternate") == "alternate":
            return absolute_http_url(alternate.get("href"), feed_url)
    return None


def _text(container: Any, key: str, *, single_line: bool) -> str | None:
    """Plain text of a feedparser text construct such as `title` or `summary`."""
    detail = container.get(f"{key}_detail") or {}
    kind = str(detail.get("type") or "").lower()
    return plain_text(
        container.get(key),
        html_markup=(kind in _HTML_TYPES) if kind else None,
        single_line=single_line,
    )


def _content_html(content: Any) -> str | None:
    """The entry's full content as HTML: the first HTML part, else the first part escaped."""
    parts = [p for p in content or [] if isinstance(p, Mapping) and isinstance(p.get("value"), str)]
    if not parts:
        return None
    html_parts = [p for p in parts if str(p.get("type") or "").lower() in _HTML_TYPES]
    if html_parts:
        value = clean(html_parts[0]["value"]).strip()
    else:
        value = text_to_html(parts[0]["value"]).strip()
    return value or None


def _utc(value: Any) -> dt.datetime | None:
    """A feedparser `*_parsed` struct_time (always UTC) as an aware datetime."""
    try:
        year, month, day, hour, minute, second = (int(v) for v in value[:6])
        return dt.datetime(year, month, day, hour, minute, min(second, 59), tzinfo=dt.UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _names(items: Any, key: str) -> list[str]:
    """The `key` of each mapping in a feedparser list such as `authors` or `tags`."""
    if not isinstance(items, list):
        return []
    values = (item.get(key) for item in items if isinstance(item, Mapping))
    return [v for v in values if isinstance(v, str) and v.strip()]


def _ttl(value: Any) -> float | None:
    """RSS `<ttl>` (minutes) in seconds, when it is a positive number."""
    if not isinstance(value, str):
        return None
    try:
        minutes = float(value.strip())
    except ValueError:
        return None
    return minutes * 60 if math.isfinite(minutes) and minutes > 0 else None


if TYPE_CHECKING:  # mypy proves that both functions meet the adapter protocol
    _conforms: DocumentParser = parse_document
    _conforms_too: DocumentParser = parse_xml_feed


_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*\bencoding\s*=""", re.IGNORECASE)


def _distinct_update(entry: Mapping[str, Any]) -> dt.datetime | None:
    """The entry's updated date where the feed gives one of its own.

    feedparser mirrors an RSS `pubDate` into `updated_parsed`: that is no update.
    """
    updated = _utc(entry.get("updated_parsed"))
    return updated if updated != _utc(entry.get("published_parsed")) else None


def _with_detected_charset(body: bytes, content_type: str | None) -> str | None:
    """Name a charset for a feed that declares none and is not UTF-8.

    With no BOM, no XML `encoding` and no HTTP charset, feedparser falls back
    to windows-1252, which turns a cp1251 or koi8-r feed into mojibake. Such
    a document gets the charset that detection finds instead.
    """
    if content_type and "charset=" in content_type.lower():
        return content_type
    if body.startswith(_BOMS) or _XML_ENCODING.match(body[:512]):
        return content_type
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        best = charset_normalizer.from_bytes(body[:65536]).best()
        if best is not None and best.encoding not in {"utf_8", "ascii"}:
            return f"{content_type or 'application/xml'}; charset={best.encoding}"
    return content_type
