"""JSON Feed 1.0 and 1.1 (https://jsonfeed.org), parsed by hand: feedparser 6 does not read it.

`parse_json_feed` turns a JSON Feed document into `Candidate`s with the same
rules as the RSS/Atom adapter (see `base.py`). It is pure and never raises.

Leniency, following what feeds in the wild do:
- `version` may be the spec's URL or a bare `1`, `1.0`, `1.1`; a missing or
  unknown version with an `items` array is still read, as format `json`, bozo.
- `id` may be a number; `url` falls back to `external_url`; relative URLs are
  resolved against the feed URL.
- titles and summaries are plain text by the spec, but entities and tags are
  decoded when present (`Blog &#8211; News` is common).
- `content_text` is carried as escaped HTML when there is no `content_html`.
- dates are RFC 3339, or failing that RFC 822 or anything dateutil reads;
  naive times are taken as UTC.
- `hubs` (1.1): the first hub of type `WebSub` (case-insensitive) with an
  absolute http(s) URL is the feed's WebSub hub; `feed_url` is its topic.
"""

from __future__ import annotations

import codecs
import datetime as dt
import email.utils
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import dateutil.parser

from monitor.models import Candidate, ParsedFeed
from monitor.sources.base import (
    absolute_http_url,
    clean,
    dedupe,
    failure,
    plain_text,
    text_to_html,
    unique,
)

if TYPE_CHECKING:
    from monitor.sources.base import DocumentParser

__all__ = ["parse_json_feed"]

_VERSIONS = {
    "https://jsonfeed.org/version/1": "json1",
    "https://jsonfeed.org/version/1.1": "json1.1",
    "1": "json1",
    "1.0": "json1",
    "1.1": "json1.1",
}
_MAX_DATE_LENGTH = 64
_YEAR = re.compile(r"\b\d{4}\b")


def parse_json_feed(
    body: bytes,
    *,
    source_id: str,
    feed_url: str,
    content_type: str | None = None,
) -> ParsedFeed:
    """Parse a JSON Feed document. Never raises for a bad document."""
    text, decoded_cleanly = _decode(body, content_type)
    try:
        document = json.loads(text.lstrip("\ufeff"))
    except json.JSONDecodeError as exc:
        return failure(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except RecursionError:
        return failure("invalid JSON Feed: the document is nested too deeply")
    if not isinstance(document, dict):
        kind = type(document).__name__
        return failure(f"not a JSON Feed: the top level is a {kind}, not an object")
    fmt = _format(document.get("version"))
    items = document.get("items")
    if fmt == "json" and not isinstance(items, list):
        return failure('not a JSON Feed: no "version" URL and no "items" array')
    items = _list(items)
    entries = dedupe(
        _candidate(item, source_id=source_id, feed_url=feed_url)
        for item in items
        if isinstance(item, Mapping)
    )
    well_formed = (
        decoded_cleanly
        and fmt != "json"
        and isinstance(document.get("items"), list)
        and all(isinstance(item, Mapping) for item in items)
    )
    return ParsedFeed(
        format=fmt,
        title=plain_text(document.get("title"), single_line=True),
        entries=entries,
        bozo=not well_formed,
        hub=_websub_hub(document.get("hubs"), feed_url),
        self_url=absolute_http_url(document.get("feed_url"), feed_url),
    )


def _websub_hub(hubs: object, feed_url: str) -> str | None:
    """The first `{"type": "WebSub", "url": ...}` of `hubs`, as an absolute http(s) URL."""
    for hub in _list(hubs):
        if not isinstance(hub, Mapping):
            continue
        kind = hub.get("type")
        if isinstance(kind, str) and kind.strip().lower() == "websub":
            url = absolute_http_url(hub.get("url"), feed_url)
            if url is not None:
                return url
    return None


def _decode(body: bytes, content_type: str | None) -> tuple[str, bool]:
    """The document as text, and whether it was valid in its encoding.

    JSON is UTF-8 (RFC 8259); UTF-16/32 are recognised from their zero bytes.
    Invalid bytes are read with the charset the server declared, else replaced.
    """
    encoding = json.detect_encoding(body)
    try:
        return body.decode(encoding), True
    except UnicodeDecodeError:
        pass
    charset = _charset(content_type)
    if charset:
        try:
            return body.removeprefix(codecs.BOM_UTF8).decode(charset), False
        except (ValueError, LookupError):  # undecodable, or no such codec
            pass
    return body.decode(encoding, errors="replace"), False


def _charset(content_type: str | None) -> str | None:
    for parameter in (content_type or "").split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip("\"'") or None
    return None


def _format(version: object) -> str:
    """`json1`, `json1.1`, or `json` for a missing or unknown version."""
    if not isinstance(version, str):
        return "json"
    return _VERSIONS.get(version.strip().rstrip("/").lower(), "json")


def _candidate(item: Mapping[str, Any], *, source_id: str, feed_url: str) -> Candidate | None:
    """One JSON Feed item as a Candidate, or None when it cannot be identified."""
    guid = _guid(item.get("id"))
    url = absolute_http_url(item.get("url"), feed_url) or absolute_http_url(
        item.get("external_url"), feed_url
    )
    if guid is None and url is None:
        return None
    return Candidate(
        source_id=source_id,
        feed_url=feed_url,
        url=url,
        guid=guid,
        title=plain_text(item.get("title"), single_line=True),
        summary=plain_text(item.get("summary"), single_line=False),
        content_html=_content_html(item),
        published_at=_date(item.get("date_published")) or _date(item.get("date_modified")),
        updated_at=_date(item.get("date_modified")),
        authors=unique(_author_names(item)),
        tags=unique(t for t in _list(item.get("tags")) if isinstance(t, str)),
    )


def _guid(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return clean(str(value)).strip() or None


def _content_html(item: Mapping[str, Any]) -> str | None:
    """`content_html`, else `content_text` rendered as escaped HTML."""
    markup = item.get("content_html")
    if isinstance(markup, str) and markup.strip():
        return clean(markup).strip()
    text = item.get("content_text")
    if isinstance(text, str) and text.strip():
        return text_to_html(text) or None
    return None


def _author_names(item: Mapping[str, Any]) -> list[str]:
    """Names from `authors` (1.1), else the deprecated `author` (1.0)."""
    people = _list(item.get("authors")) or [item.get("author")]
    names = (p.get("name") for p in people if isinstance(p, Mapping))
    return [name for name in names if isinstance(name, str)]


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _date(value: object) -> dt.datetime | None:
    """An RFC 3339 (or RFC 822, or dateutil-readable) date as aware UTC; None if unreadable."""
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_DATE_LENGTH:
        return None
    value = value.strip()
    for reader in (dt.datetime.fromisoformat, email.utils.parsedate_to_datetime, _dateutil):
        try:
            parsed = reader(value)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.UTC)
            return parsed.astimezone(dt.UTC)
        except (ValueError, TypeError, OverflowError, IndexError):
            continue
    return None


def _dateutil(value: str) -> dt.datetime:
    """dateutil's reading of a free-form date; it must name a year, or dateutil invents one."""
    if not _YEAR.search(value):
        raise ValueError("no year")
    return dateutil.parser.parse(value)


if TYPE_CHECKING:  # mypy proves that the function meets the adapter protocol
    _conforms: DocumentParser = parse_json_feed
