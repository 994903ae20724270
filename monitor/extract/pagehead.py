"""What a page says about itself: language, canonical URL, site name, titles, headlines.

This module owns `read_head`, which reads a parsed page's `<head>` and its
first `<h1>`/`<h2>`s into a `PageHead`: the declared language, the canonical
URL made absolute (never a home page standing in for a deeper one), the site
name, the raw title candidates and the headline hints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from monitor.extract.chrome import (
    in_chrome,
)
from monitor.extract.headings import home_link_names, subheadings
from monitor.extract.text import (
    normalize_whitespace,
)

__all__ = ["PageHead", "clean_or_none", "read_head"]

_MAX_HEADLINES = 3  # <h1>s read as headline hints
_HTTP_SCHEMES = frozenset({"http", "https"})


# --- what the page says about itself ----------------------------------------


@dataclass(frozen=True, slots=True)
class PageHead:
    language: str | None  # as declared (<html lang>, Content-Language, og:locale), raw
    canonical_url: str | None
    site_name: str | None
    titles: tuple[str, ...]  # og:title, twitter:title, <title>: raw, in that order
    headlines: tuple[str, ...]  # the first <h1>s that are not a logo in the header
    subheadings: tuple[str, ...] = ()  # the first <h2>s: headline hints (headings.py)
    home_names: tuple[str, ...] = ()  # the site's name in its logo or home link


def read_head(tree: Any, url: str | None) -> PageHead:
    metas = _metas(tree)
    return PageHead(
        language=_declared_language(tree, metas),
        canonical_url=_canonical_url(tree, metas, url),
        site_name=clean_or_none(metas.get("og:site_name") or metas.get("application-name")),
        titles=tuple(
            title
            for title in (
                clean_or_none(metas.get("og:title")),
                clean_or_none(metas.get("twitter:title")),
                clean_or_none(_first_text(tree, ".//title")),
            )
            if title
        ),
        headlines=_headlines(tree),
        subheadings=subheadings(tree),
        home_names=home_link_names(tree),
    )


def _metas(tree: Any) -> dict[str, str]:
    """<meta> contents by lower-cased name / property / http-equiv; first one wins."""
    found: dict[str, str] = {}
    for meta in tree.iterfind(".//meta[@content]"):
        for attribute in ("name", "property", "http-equiv", "itemprop"):
            key = (meta.get(attribute) or "").strip().lower()
            if key and key not in found:
                found[key] = meta.get("content") or ""
    return found


def _declared_language(tree: Any, metas: dict[str, str]) -> str | None:
    root = tree.getroottree().getroot()
    for value in (
        root.get("lang"),
        root.get("xml:lang"),
        metas.get("content-language"),
        metas.get("og:locale"),
    ):
        if value and value.strip():
            return str(value).strip()
    return None


def _canonical_url(tree: Any, metas: dict[str, str], url: str | None) -> str | None:
    """<link rel=canonical>, else og:url, made absolute; None when neither is usable."""
    base = url or ""
    base_href = _first_attribute(tree, ".//base[@href]", "href")
    if base_href:
        base = urljoin(base, base_href)
    links = (
        link.get("href")
        for link in tree.iterfind(".//link[@rel][@href]")
        if "canonical" in (link.get("rel") or "").lower().split()
    )
    for href in (next(links, None), metas.get("og:url")):
        candidate = _absolute_http_url(base, href)
        if candidate and not _is_home_page_of_other(candidate, url):
            return candidate
    return None


def _absolute_http_url(base: str, href: str | None) -> str | None:
    if not href or not href.strip():
        return None
    absolute = urljoin(base, href.strip())
    parts = urlsplit(absolute)
    return absolute if parts.scheme in _HTTP_SCHEMES and parts.netloc else None


def _is_home_page_of_other(candidate: str, url: str | None) -> bool:
    """True for a canonical pointing at the home page from a deeper page (a CMS bug)."""
    if not url:
        return False
    return urlsplit(candidate).path in ("", "/") and urlsplit(url).path not in ("", "/")


def _headlines(tree: Any) -> tuple[str, ...]:
    found: list[str] = []
    for h1 in tree.iterfind(".//h1"):
        text = normalize_whitespace(h1.text_content())
        if text and not _is_logo(h1, text):
            found.append(text)
        if len(found) == _MAX_HEADLINES:
            break
    return tuple(found)


def _is_logo(h1: Any, text: str) -> bool:
    """True for an <h1> that is the site's logo: in the chrome, named so, or just a link."""
    if in_chrome(h1):
        return True
    parent = h1.getparent()
    for element in (h1, parent) if parent is not None else (h1,):
        names = f"{element.get('class') or ''} {element.get('id') or ''}".lower()
        if "logo" in names or "brand" in names:
            return True
    links = h1.findall(".//a")
    return len(links) == 1 and normalize_whitespace(links[0].text_content()) == text


def _first_text(tree: Any, path: str) -> str | None:
    element = tree.find(path)
    return None if element is None else str(element.text_content())


def _first_attribute(tree: Any, path: str, attribute: str) -> str | None:
    element = tree.find(path)
    return None if element is None else element.get(attribute)


def clean_or_none(value: str | None) -> str | None:
    """Whitespace-normalised `value`, or None when nothing is left."""
    if not value:
        return None
    return normalize_whitespace(value) or None
