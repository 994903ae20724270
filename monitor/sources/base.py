"""The contract every source adapter meets, and the helpers that keep their output uniform.

An adapter turns the bytes of one fetched document into a `ParsedFeed` of
`Candidate`s. It is a plain top-level function so that it can run inside a
`ProcessPoolExecutor`: bytes in, frozen dataclasses out, no I/O, and it never
raises (a document it cannot use comes back as a `ParsedFeed` with `error` set).

The helpers below are shared by the adapters (`feed.py`, `jsonfeed.py`, and
later sitemaps and listing pages) so that every adapter cleans text, resolves
links and de-duplicates entries the same way.
"""

from __future__ import annotations

import codecs
import html
import re
import zlib
from collections.abc import Iterable
from typing import Protocol
from urllib.parse import urljoin, urlsplit

import charset_normalizer
import lxml.etree
import lxml.html

from monitor.models import Candidate, ParsedFeed

__all__ = [
    "DocumentParser",
    "absolute_http_url",
    "clean",
    "dedupe",
    "failure",
    "gunzip",
    "html_root",
    "looks_like_html",
    "plain_text",
    "text_to_html",
    "unique",
]


class DocumentParser(Protocol):
    """Turns one fetched document into candidates. Pure, picklable, never raises."""

    def __call__(
        self,
        body: bytes,
        *,
        source_id: str,
        feed_url: str,
        content_type: str | None = None,
    ) -> ParsedFeed: ...


# C0 controls other than tab/newline/carriage return, DEL, and lone surrogates
# (which JSON allows and which no encoder downstream will take).
_UNWANTED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_HORIZONTAL_SPACE = re.compile(r"[^\S\n]+")
_ANY_SPACE = re.compile(r"\s+")
_BLANK_LINES = re.compile(r"\n\s*\n")
_ANY_TAG = re.compile(r"<[^<>]*>")
_TAG_OR_ENTITY = re.compile(
    r"</?[A-Za-z][^<>]*>|&(?:#[0-9]+|#[xX][0-9A-Fa-f]+|[A-Za-z][A-Za-z0-9]*);"
)

# Elements whose start and end are paragraph breaks in plain text.
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt",
        "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6",
        "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section",
        "table", "tr", "ul",
    }
)  # fmt: skip
_INVISIBLE = frozenset({"script", "style", "template", "noscript"})


def clean(value: str) -> str:
    """Drop control characters and lone surrogates that no encoder downstream accepts."""
    return _UNWANTED.sub("", value)


def looks_like_html(value: str) -> bool:
    """True when `value` carries a tag or an entity reference, i.e. needs HTML decoding."""
    return _TAG_OR_ENTITY.search(value) is not None


def plain_text(value: object, *, html_markup: bool | None = None, single_line: bool) -> str | None:
    """Plain text of `value`, or None if it is not a string or holds no text.

    `html_markup` says whether `value` is HTML (None: guess from its content).
    HTML loses its tags and entities; block elements become paragraph breaks,
    unless `single_line`, which collapses all whitespace to single spaces.
    """
    if not isinstance(value, str):
        return None
    text = clean(value)
    if html_markup is None:
        html_markup = looks_like_html(text)
    if html_markup and ("<" in text or "&" in text):
        text = _html_to_text(text)
    text = _ANY_SPACE.sub(" ", text).strip() if single_line else _paragraphs(text)
    return text or None


def text_to_html(text: str) -> str:
    """Render plain text as HTML: escaped, paragraphs in `<p>`, line breaks as `<br>`."""
    paragraphs = [p.strip() for p in _BLANK_LINES.split(clean(text).replace("\r\n", "\n"))]
    return "\n".join(
        "<p>" + "<br>\n".join(html.escape(line) for line in p.split("\n")) + "</p>"
        for p in paragraphs
        if p
    )


def absolute_http_url(link: object, base: str) -> str | None:
    """`link` resolved against `base`, if the result is an http(s) URL with a host."""
    if not isinstance(link, str):
        return None
    link = clean(link).strip()
    if not link:
        return None
    try:
        url = urljoin(base, link)
        parts = urlsplit(url)
    except ValueError:  # e.g. an invalid IPv6 literal in the host
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


def unique(values: Iterable[str | None]) -> tuple[str, ...]:
    """The non-empty values, stripped, without repeats, in their first order."""
    cleaned = (clean(v).strip() for v in values if v)
    return tuple(dict.fromkeys(v for v in cleaned if v))


def dedupe(candidates: Iterable[Candidate | None]) -> tuple[Candidate, ...]:
    """Keep the first candidate of each key (guid, else url); drop unidentifiable ones."""
    seen: set[str] = set()
    kept: list[Candidate] = []
    for candidate in candidates:
        key = candidate.key if candidate is not None else None
        if candidate is None or key is None or key in seen:
            continue
        seen.add(key)
        kept.append(candidate)
    return tuple(kept)


def failure(message: str) -> ParsedFeed:
    """The result for a document nothing usable could be read from."""
    return ParsedFeed(format="unknown", title=None, entries=(), error=message)


def _html_to_text(markup: str) -> str:
    """Text of an HTML fragment, with a blank line around each block element."""
    try:
        root = lxml.html.fragment_fromstring(markup, create_parent="div")
    except (lxml.etree.ParserError, ValueError):  # no content at all, or unparsable
        return html.unescape(_ANY_TAG.sub(" ", markup))
    parts: list[str] = []
    for event, element in lxml.etree.iterwalk(root, events=("start", "end")):
        tag = element.tag if isinstance(element.tag, str) else ""
        if event == "start":
            if tag in _BLOCKS:
                parts.append("\n\n")
            elif tag == "br":
                parts.append("\n")
            if tag and tag not in _INVISIBLE and element.text:
                parts.append(_ANY_SPACE.sub(" ", element.text))
        else:
            if tag in _BLOCKS:
                parts.append("\n\n")
            if element is not root and element.tail:
                parts.append(_ANY_SPACE.sub(" ", element.tail))
    return "".join(parts)


def _paragraphs(text: str) -> str:
    """Normalise whitespace, keeping line breaks and one blank line between paragraphs."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = []
    for block in _BLANK_LINES.split(text):
        lines = (_HORIZONTAL_SPACE.sub(" ", line).strip() for line in block.split("\n"))
        paragraph = "\n".join(line for line in lines if line)
        if paragraph:
            paragraphs.append(paragraph)
    return "\n\n".join(paragraphs)


GZIP_MAGIC = b"\x1f\x8b"
MAX_GUNZIPPED_BYTES = 50_000_000  # a sitemap may hold 50,000 URLs in at most 50 MB


def gunzip(body: bytes, *, max_bytes: int = MAX_GUNZIPPED_BYTES) -> bytes | str:
    """`body` gunzipped, or the reason it cannot be: corrupt, or over `max_bytes` unpacked.

    A `.xml.gz` sitemap served as application/gzip reaches an adapter still
    compressed (the fetcher only undoes Content-Encoding). Decompression stops
    at `max_bytes`, so a gzip bomb costs at most that much memory.
    """
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        return f"corrupt gzip data: {exc}"
    if len(data) > max_bytes or inflater.unconsumed_tail:
        return f"gzip data unpacks to more than {max_bytes} bytes"
    return data


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


def html_root(body: bytes, content_type: str | None) -> lxml.html.HtmlElement | None:
    """The parsed HTML document, decoded by HTTP charset, `<meta charset>`, or detection."""
    encoding = _html_encoding(body, content_type)
    try:
        parser = lxml.html.HTMLParser(encoding=encoding, no_network=True)
        root: lxml.html.HtmlElement = lxml.html.document_fromstring(body, parser=parser)
    except (lxml.etree.ParserError, ValueError, LookupError):
        return None
    return root


def page_title(root: lxml.html.HtmlElement) -> str | None:
    """The document's `<title>`, on one line, or None when it has none."""
    title = root.find(".//title")
    if title is None:
        return None
    return plain_text(title.text_content(), html_markup=False, single_line=True)


def _html_encoding(body: bytes, content_type: str | None) -> str:
    declared = None
    if content_type and "charset=" in content_type.lower():
        declared = content_type.lower().split("charset=", 1)[1].split(";")[0].strip(" \"'")
    if not declared and (match := _META_CHARSET.search(body[:4096])):
        declared = match.group(1).decode("ascii", "replace")
    if declared:
        try:
            return codecs.lookup(declared).name
        except LookupError:
            pass
    try:
        body.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        best = charset_normalizer.from_bytes(body[:65536]).best()
        return best.encoding if best is not None else "utf-8"
