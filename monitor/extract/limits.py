"""Structural caps on a statement page, checked before any parsing (issue 13).

A page of 10^6 attributes or 200,000 links is a few MB, well under the fetch
caps, yet it cost Trafilatura over 90 s and a worker close to 1 GB. What makes
such a page expensive is its count of elements, attributes and links, and those
can be counted in the raw bytes in milliseconds (C-level `bytes.count` and one
regex scan), long before the parser or Trafilatura sees the page. A page over a
cap is refused with `ExtractionError("page_too_complex", "<what> <n> > <cap>")`:
not retriable, since the same bytes give the same answer, so the statement is
published with the feed's text at once, like any broken page.

The counts are upper bounds taken from the markup: a `<` followed by a letter
is an element, an `=` inside a start tag an attribute, an `<a` start tag a
link. Text that looks like markup inside scripts may count too. The largest of
269 real pages (bench/pages/ and the shared readability corpus) count 9,892
elements, 14,108 attributes and 3,861 links; the defaults sit 5 to 28 times
above that, so that slack never refuses a real page. Below the caps, the
pool's per-task deadline still bounds what a page costs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from monitor.errors import ExtractionError

if TYPE_CHECKING:  # workers import this module: they need no pydantic
    from monitor.config import ExtractConfig

__all__ = ["PAGE_TOO_COMPLEX", "PageLimits", "check_page", "page_limits"]

PAGE_TOO_COMPLEX: Final = "page_too_complex"

_START_TAG: Final = re.compile(rb"<[A-Za-z]")
_START_TAG_BODY: Final = re.compile(rb"<[A-Za-z][^<>]*")
_LINK: Final = re.compile(rb"<[aA][\s>/]")


@dataclass(frozen=True, slots=True)
class PageLimits:
    """The most elements, attributes and links a page may have (0: no cap)."""

    elements: int = 200_000
    attributes: int = 400_000
    links: int = 20_000


def page_limits(config: ExtractConfig) -> PageLimits:
    """The caps that `extract:` sets."""
    return PageLimits(
        elements=config.max_elements, attributes=config.max_attributes, links=config.max_links
    )


def check_page(body: bytes, limits: PageLimits) -> None:
    """Raise `ExtractionError(page_too_complex)` for a page over one of `limits`."""
    if limits.links:  # the most specific measure first: a page of links is many elements too
        _check("links", _count(_LINK, body, limits.links), limits.links)
    if limits.attributes and body.count(b"=") > limits.attributes:  # else it cannot be over
        _check("attributes", _attributes(body), limits.attributes)
    if limits.elements:
        _check("elements", _count(_START_TAG, body, limits.elements), limits.elements)


def _check(what: str, count: int, cap: int) -> None:
    if count > cap:
        raise ExtractionError(PAGE_TOO_COMPLEX, f"{what} {count} > {cap}")


def _count(pattern: re.Pattern[bytes], body: bytes, cap: int) -> int:
    """Matches of `pattern` in `body`; a cheap `<` count first rules most pages out."""
    upper = body.count(b"<")  # every match starts with `<`
    if upper <= cap:
        return upper
    return sum(1 for _ in pattern.finditer(body))


def _attributes(body: bytes) -> int:
    """The `=` inside start tags: one per attribute with a value."""
    return sum(tag.count(b"=") for tag in _START_TAG_BODY.findall(body))
