"""Every feed of the shared corpus goes through `parse_document` without an exception,
and every entry with an http(s) link comes out as a candidate with that absolute URL.

The corpus lives next to the repository (`../shared/corpus`, or
`$MONITOR_SHARED_DIR/corpus`); set MONITOR_CORPUS_DIR to use another copy (the
directory holding `feeds/`, or `feeds/` itself). Without it the test skips (fails
under MONITOR_REQUIRE_SHARED=1, as in CI): see tests/shared.py. The
expected links are worked out here independently: from feedparser's own entries
for RSS/Atom, and from the raw JSON for JSON Feeds.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
import pytest

from monitor.models import ParsedFeed
from monitor.sources import parse_document
from tests.shared import corpus_dir, requires_shared


def _feeds_dir() -> Path:
    base = corpus_dir()
    return base if (base / "index.json").is_file() else base / "feeds"


FEEDS = _feeds_dir()
INDEX = FEEDS / "index.json"


def _cases() -> list[Any]:
    if not INDEX.is_file():
        return [pytest.param(None, id="corpus-missing", marks=requires_shared("corpus", "feeds"))]
    feeds = json.loads(INDEX.read_text(encoding="utf-8"))["feeds"]
    return [pytest.param(case, id=case["file"]) for case in feeds]


def _content_type(case: dict[str, Any]) -> str | None:
    for header in case.get("simulated_http_headers") or []:
        name, _, value = header.partition(":")
        if name.strip().lower() == "content-type":
            return str(value.strip())
    return None


def _http(link: object, base: str) -> str | None:
    if not isinstance(link, str) or not link.strip():
        return None
    try:
        url = urljoin(base, link.strip())
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in ("http", "https") and parts.hostname else None


def _linked(pairs: list[tuple[str | None, str | None]]) -> Counter[str]:
    """The URLs of the linked entries, keeping the first entry of each guid (else URL)."""
    seen: set[str] = set()
    urls: Counter[str] = Counter()
    for guid, url in pairs:
        key = guid or url
        if key is None or key in seen:
            continue
        seen.add(key)
        if url:
            urls[url] += 1
    return urls


def _expected_xml(body: bytes, feed_url: str, content_type: str | None) -> Counter[str]:
    headers = {"content-type": content_type} if content_type else {}
    parsed = feedparser.parse(io.BytesIO(body), response_headers=headers)
    pairs = []
    for entry in parsed.entries:
        guid = (entry.get("id") or "").strip() or None
        link = entry.get("link")
        guid_as_link = entry.get("guidislink") and link == entry.get("id")
        url = _http(link, "") if guid_as_link else _http(link, feed_url)  # a guid: full URLs only
        if url is None:
            alternates = [
                item.get("href")
                for item in entry.get("links", [])
                if item.get("rel", "alternate") == "alternate"
            ]
            url = _http(alternates[0], feed_url) if alternates else None
        pairs.append((guid, url))
    return _linked(pairs)


def _expected_json(body: bytes, feed_url: str) -> Counter[str]:
    try:
        document = json.loads(body)
    except ValueError:
        return Counter()
    items = document.get("items") if isinstance(document, dict) else None
    pairs = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        raw_id = item.get("id")
        scalar = isinstance(raw_id, str | int | float) and not isinstance(raw_id, bool)
        guid = (str(raw_id).strip() or None) if scalar else None
        url = _http(item.get("url"), feed_url) or _http(item.get("external_url"), feed_url)
        pairs.append((guid, url))
    return _linked(pairs)


@pytest.mark.parametrize("case", _cases())
def test_corpus_feed(case: dict[str, Any]) -> None:
    body = (FEEDS / case["file"]).read_bytes()
    content_type = _content_type(case)
    feed_url = f"https://corpus.test/{case['file']}"

    result = parse_document(body, source_id="corpus", feed_url=feed_url, content_type=content_type)

    assert isinstance(result, ParsedFeed)
    if result.error is not None:
        assert result.entries == ()
        assert result.format == "unknown"
    if case.get("bozo_expected"):
        assert result.bozo or result.error is not None, (
            "a malformed document must not pass as clean"
        )
    assert all(c.key is not None for c in result.entries)
    assert len({c.key for c in result.entries}) == len(result.entries)
    is_json = case["format"].startswith("json")
    expected = (
        _expected_json(body, feed_url) if is_json else _expected_xml(body, feed_url, content_type)
    )
    assert Counter(c.url for c in result.entries if c.url) == expected
