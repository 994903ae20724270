"""Per-source extraction rules: CSS selectors for layouts that defeat generic extraction.

This module owns what a source's `ExtractionRules` do to one parsed page, as
pure functions over an lxml tree (they run in the extraction process pool):

* `remove_matches` drops the elements of `remove_selectors` from the tree,
  before anything else reads it;
* `content_paragraphs` reads the statement body from the `content_selector`
  matches (all of them, in document order, none nested in another), one
  paragraph per block element or line break;
* `selected_title` and `selected_date` read the `title_selector` and
  `date_selector` matches; `parse_date_text` parses a date with the source's
  `date_format` (strptime), else leniently with dateutil;
* `apply_rules` does all of that and names each rule that matched nothing, so
  that `extract_article` falls back to generic extraction for that part.

Selectors are validated by the config; `compile_selector` raises
`cssselect.SelectorError` for the ones given on the command line.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from dateutil import parser as dateutil_parser
from lxml import etree
from lxml.cssselect import CSSSelector

from monitor.extract.text import normalize_whitespace, paragraphs_from_xml
from monitor.models import ExtractionRules

__all__ = [
    "CONTENT_SELECTOR",
    "DATE_SELECTOR",
    "REMOVE_SELECTORS",
    "TITLE_SELECTOR",
    "RuleOutcome",
    "apply_rules",
    "compile_selector",
    "content_paragraphs",
    "element_paragraphs",
    "parse_date_text",
    "remove_matches",
    "selected_date",
    "selected_title",
]

# Rule names as reported in `Article.rule_misses` (a metric label: keep them bounded).
CONTENT_SELECTOR: Final = "content_selector"
TITLE_SELECTOR: Final = "title_selector"
DATE_SELECTOR: Final = "date_selector"
REMOVE_SELECTORS: Final = "remove_selectors"

# Elements whose text is never statement text, even inside the selected body.
_NON_TEXT_TAGS: Final = (
    "script",
    "style",
    "noscript",
    "template",
    "iframe",
    "svg",
    "canvas",
    "object",
    "embed",
    "button",
    "select",
    "input",
    "textarea",
)
# HTML block elements that `paragraphs_from_xml` (written for Trafilatura's XML)
# does not know; renamed to `div` in a copy so that each still starts a paragraph.
_OTHER_HTML_BLOCKS: Final = frozenset(
    {
        "address",
        "aside",
        "caption",
        "center",
        "dd",
        "details",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "header",
        "hgroup",
        "hr",
        "nav",
        "summary",
    }
)
# Machine-readable dates, preferred over the element's visible text.
_DATE_ATTRIBUTES: Final = ("datetime", "content")
# "24.11.2026", "3.4.26": dotted numeric dates are day-first wherever they are used.
_DOTTED_DATE = re.compile(r"\b\d{1,2}\.\d{1,2}\.\d{2,4}\b")
_DIGIT = re.compile(r"\d")
# Two defaults that differ in every date field: a field that comes out differently
# was not in the text, and a date without a year, month or day is no date.
_PROBE_DEFAULTS: Final = (dt.datetime(2000, 1, 1), dt.datetime(2001, 2, 2))
_EARLIEST_YEAR: Final = 1900  # below this a lenient parse read a reference number, not a year
# A date element's text is short; a selector that matched a whole block gets its start read.
_MAX_LENIENT_CHARS: Final = 200
# Zone abbreviations seen on official sites whose offset is unambiguous; others stay naive.
_ZONE_OFFSETS: Final = {
    "UTC": 0,
    "GMT": 0,
    "Z": 0,
    "WET": 0,
    "WEST": 3600,
    "CET": 3600,
    "CEST": 7200,
    "EET": 7200,
    "EEST": 10800,
    "MSK": 10800,
}


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """What a source's rules read from one page; empty fields fall back to generic extraction."""

    paragraphs: tuple[str, ...] = ()  # the statement body, from content_selector
    title: str | None = None
    # ISO 8601, with an offset only when the page gave one (htmldate's convention):
    # a day without a time can then still borrow the feed's time of that day.
    date: str | None = None
    misses: tuple[str, ...] = ()  # rule names that matched nothing, in `ExtractionRules` order


def apply_rules(tree: Any, rules: ExtractionRules | None) -> RuleOutcome:
    """Apply `rules` to `tree`: remove `remove_selectors` in place, then read the rest.

    Call it before anything else reads the tree, so that removed elements are
    gone for generic extraction too.
    """
    if not rules:
        return RuleOutcome()
    misses: list[str] = []
    if rules.remove_selectors and not remove_matches(tree, rules.remove_selectors):
        misses.append(REMOVE_SELECTORS)
    paragraphs = content_paragraphs(tree, rules.content_selector) if rules.content_selector else []
    if rules.content_selector and not paragraphs:
        misses.append(CONTENT_SELECTOR)
    title = selected_title(tree, rules.title_selector) if rules.title_selector else None
    if rules.title_selector and title is None:
        misses.append(TITLE_SELECTOR)
    date = (
        selected_date(tree, rules.date_selector, rules.date_format) if rules.date_selector else None
    )
    if rules.date_selector and date is None:
        misses.append(DATE_SELECTOR)
    return RuleOutcome(
        paragraphs=tuple(paragraphs),
        title=title,
        date=None if date is None else date.isoformat(),
        misses=tuple(misses),
    )


@lru_cache(maxsize=256)
def compile_selector(selector: str) -> Any:
    """The compiled CSS selector (HTML semantics); cached, a source reuses its rules.

    Raises:
        cssselect.SelectorError: `selector` is not valid CSS.
    """
    return CSSSelector(selector, translator="html")


def _select(tree: Any, selector: str) -> list[Any]:
    """Elements matching `selector`, in document order."""
    return [element for element in compile_selector(selector)(tree) if _is_element(element)]


def _is_element(node: Any) -> bool:
    return isinstance(node, etree._Element) and isinstance(node.tag, str)


# --- remove_selectors ---------------------------------------------------------


def remove_matches(tree: Any, selectors: tuple[str, ...] | list[str]) -> int:
    """Drop every element matching any of `selectors` from `tree`; returns how many."""
    removed = 0
    for selector in selectors:  # each selector sees the tree as the ones before left it
        for element in _outermost(_select(tree, selector)):
            if element.getparent() is not None:  # the root stays: a page needs one
                _drop(element)
                removed += 1
    return removed


def _drop(element: Any) -> None:
    """Remove `element` and its subtree, keeping the text that follows it."""
    parent = element.getparent()
    if element.tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)


# --- content_selector -----------------------------------------------------------


def content_paragraphs(tree: Any, selector: str) -> list[str]:
    """The paragraphs of every `selector` match, in document order; [] when none has text.

    A match inside another match is skipped: its text is already in the outer one.
    """
    paragraphs: list[str] = []
    for element in _outermost(_select(tree, selector)):
        paragraphs.extend(element_paragraphs(element))
    return paragraphs


def _outermost(elements: list[Any]) -> list[Any]:
    """`elements` (in document order) without those nested in an earlier one."""
    kept: list[Any] = []
    seen: set[Any] = set()
    for element in elements:
        if not any(ancestor in seen for ancestor in element.iterancestors()):
            kept.append(element)
            seen.add(element)
    return kept


def element_paragraphs(element: Any) -> list[str]:
    """The text of one HTML element as paragraphs: one per block element or line break."""
    body = copy.deepcopy(element)  # the page's tree stays as it is for generic extraction
    body.tail = None
    etree.strip_elements(body, *_NON_TEXT_TAGS, with_tail=False)
    for node in body.iter():
        if isinstance(node.tag, str) and node.tag.lower() in _OTHER_HTML_BLOCKS:
            node.tag = "div"
    return paragraphs_from_xml(body)


# --- title_selector -------------------------------------------------------------


def selected_title(tree: Any, selector: str) -> str | None:
    """The whitespace-normalised text of the first `selector` match that has any.

    A `<meta>` match gives its `content` (`meta[property="og:title"]`).
    """
    for element in _select(tree, selector):
        text = _one_line(element) or normalize_whitespace(element.get("content") or "")
        if text:
            return text
    return None


def _one_line(element: Any) -> str:
    """The element's text on one line; blocks and line breaks become spaces."""
    return " ".join(element_paragraphs(element))


# --- date_selector -------------------------------------------------------------


def selected_date(tree: Any, selector: str, date_format: str | None = None) -> dt.datetime | None:
    """The date of the first `selector` match that holds one; naive when it gives no zone.

    The match's `datetime` or `content` attribute is tried before its text, since
    it is machine-readable (ISO 8601, else as the text would be).
    """
    for element in _select(tree, selector):
        for attribute in _DATE_ATTRIBUTES:
            value = (element.get(attribute) or "").strip()
            parsed = (_iso_date(value) or parse_date_text(value, date_format)) if value else None
            if parsed:
                return parsed
        parsed = parse_date_text(_one_line(element), date_format)
        if parsed:
            return parsed
    return None


def parse_date_text(text: str, date_format: str | None = None) -> dt.datetime | None:
    """The date in `text`: strictly by `date_format` when given, else leniently; None if none.

    The result is naive when the text names no zone (the caller assumes UTC).
    """
    text = normalize_whitespace(text)
    if not text:
        return None
    if date_format:
        return _strptime(text, date_format)
    return _iso_date(text) or _lenient_date(text)


def _strptime(text: str, date_format: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(text, date_format)
    except ValueError:
        return None


def _iso_date(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None


def _lenient_date(text: str) -> dt.datetime | None:
    """dateutil's fuzzy reading of `text`, if it finds a whole date (year, month and day)."""
    if not _DIGIT.search(text):
        return None  # fuzzy parsing turns a lone weekday or month name into a date
    text = text[:_MAX_LENIENT_CHARS]
    dayfirst = _DOTTED_DATE.search(text) is not None
    try:
        first, second = (
            dateutil_parser.parse(
                text, default=default, fuzzy=True, dayfirst=dayfirst, tzinfos=_zone_offset
            )
            for default in _PROBE_DEFAULTS
        )
    except (ValueError, OverflowError):  # dateutil's ParserError is a ValueError
        return None
    if first.date() != second.date() or first.year < _EARLIEST_YEAR:
        return None
    return first


def _zone_offset(name: str | None, offset: int | None) -> int | None:
    """dateutil's `tzinfos`: a numeric offset as given, a known abbreviation, else naive."""
    if offset is not None:
        return offset
    return _ZONE_OFFSETS.get((name or "").upper())
