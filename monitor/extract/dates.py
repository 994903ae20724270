"""The statement's own date, read where official pages write it.

htmldate (`find_date(original_date=True)`, as Trafilatura runs it) is good at
metadata and URLs, but on pages without either it falls back to the dates it
finds in the whole page: a sidebar of newer news, a "last updated" line, the
copyright year in the footer. Official pages state the date of the statement
in its lead: a dateline ("MOSCOW, October 19, 2015 –"), a press-release date
line ("Pressemitteilung vom 12.03.2024", "Publié le 3 mars 2024", "For
Immediate Release: April 10, 2015", "19 октября 2015 г."), a `<time>` in the
article's header.

`read_page(tree)` reads what the page holds (before anything else touches the
tree) and `PageDates.choose(found)` decides between htmldate's answer `found`
and this module's own pass, by what bench/dates.py measured:

1. the page has structured publication metadata (JSON-LD `datePublished`,
   `article:published_time` and kin): htmldate's answer, which reads them;
2. else the first date in the lead of the main content (the first
   `LEAD_CHARS` characters of `<article>`, `<main>`, ... outside navigation,
   sidebars and footers; a date labelled "updated" is skipped), or a
   `<time datetime>` there;
3. else htmldate's answer, unless it is only the copyright year (January 1 of
   a year the page writes after "©"): a page with no date gives None.

Dates are read in English, German, French and Russian, in the forms those
pages use; each is checked as a calendar date. Pure, bounded by LEAD_CHARS.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["PageDates", "find_lead_date", "read_page", "statement_date"]

LEAD_CHARS = 1_500
_SKIPPED = {
    *("aside", "nav", "footer", "script", "style", "noscript", "form", "select", "button"),
    *("blockquote", "figcaption", "figure", "iframe"),  # embeds and captions date themselves
}
# Class or id words of blocks that date other pages ("sidebar", "related-news"), as
# whole words of the attribute: "sectionRelated" is the article's own meta line.
_SKIPPED_CLASS = re.compile(
    r"(?:^|[\s_-])(?:sidebar|related|latest|breadcrumbs?|share|social|menu|teaser|comments?)"
    r"(?:$|[\s_-])",
    re.I,
)
# A date in running prose ("the law takes effect on 1 January 2026") is not the
# statement's: a lead date is in a short line, or opens its paragraph (a dateline).
_SHORT_LINE = 120
_DATELINE_CHARS = 80
_ROOT_PATHS = (
    "(//*[@role='main'])[1]",
    "(//*[@id='content' or @id='main' or @id='main-content'])[1]",
)
# <meta> names and properties that date the publication: htmldate reads them.
_STRUCTURED_META = frozenset(
    {
        *("article:published_time", "og:published_time", "datepublished", "dc.date"),
        *("dc.date.issued", "dcterms.created", "dcterms.issued", "date", "pubdate"),
        *("publishdate", "publish-date", "publish_date", "citation_publication_date"),
        *("sailthru.date", "parsely-pub-date"),
    }
)

_MONTHS: dict[str, int] = {}
for _number, _names in enumerate(
    (
        "january jan januar jänner janvier janv января январь",
        "february feb februar février fevrier févr fevr февраля февраль",
        "march mar märz maerz mars марта март",
        "april apr avril avr апреля апрель",
        "may mai мая май",
        "june jun juni juin июня июнь",
        "july jul juli juillet juil июля июль",
        "august aug août aout августа август",
        "september sep sept septembre сентября сентябрь",
        "october oct oktober okt octobre октября октябрь",
        "november nov novembre ноября ноябрь",
        "december dec dezember dez décembre decembre déc декабря декабрь",
    ),
    start=1,
):
    for _name in _names.split():
        _MONTHS[_name] = _number
_MONTH = "|".join(sorted((re.escape(m) for m in _MONTHS), key=len, reverse=True))
_DATES = (
    re.compile(r"\b(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})\b"),
    re.compile(r"\b(?P<d>\d{1,2})\.(?P<m>\d{1,2})\.(?P<y>\d{4})\b"),
    re.compile(
        rf"\b(?P<d>\d{{1,2}})(?:st|nd|rd|th|er)?\.?\s+(?:de\s+)?(?P<month>{_MONTH})\.?,?\s+"
        r"(?P<y>\d{4})\b",
        re.I,
    ),
    re.compile(
        rf"\b(?P<month>{_MONTH})\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y>\d{{4}})\b",
        re.I,
    ),
)
_UPDATED = re.compile(
    r"(?:updated|modified|revised|expires?|aktualisiert|geändert|stand|mis à jour|modifié|"
    r"обновлен[оа]?|изменен[оа]?)\W{0,3}(?:on|am|le)?\W{0,3}$",
    re.I,
)
_COPYRIGHT = re.compile(r"(?:©|\(c\)|copyright)\s*(?:\d{4}\s*[-–]\s*)?(\d{4})", re.I)


@dataclass(frozen=True, slots=True)
class PageDates:
    """What a page says about its date, apart from htmldate's answer."""

    structured: bool  # it has publication metadata (JSON-LD, meta tags) for htmldate
    lead: str | None  # the first date in the lead of its main content, "YYYY-MM-DD"
    copyright_years: frozenset[str]  # the years it names after "©"

    def choose(self, found: str | None) -> str | None:
        """The statement's date: htmldate's `found`, or the lead's (module docstring)."""
        if found and self.structured:
            return found
        if self.lead is not None:
            return self.lead
        if found and _is_copyright(found, self.copyright_years):
            return None
        return found


def read_page(tree: Any) -> PageDates:
    """The date evidence of a parsed page."""
    lead = find_lead_date(tree)
    return PageDates(
        structured=_has_structured_date(tree),
        lead=lead,
        # Only read when no lead date stands in for htmldate's answer.
        copyright_years=_copyright_years(tree) if lead is None else frozenset(),
    )


def statement_date(tree: Any, found: str | None) -> str | None:
    """`read_page(tree).choose(found)`."""
    return read_page(tree).choose(found)


def find_lead_date(tree: Any) -> str | None:
    """The first date ("YYYY-MM-DD") in the lead of the page's main content, or None."""
    root = _main_root(tree)
    if root is None:
        return None
    text = ""
    for kind, value in _lead_items(root):
        if kind == "time":
            day = _parse_iso(value)
            if day is not None:
                return day.isoformat()
            continue
        start = len(text)
        text += value + "\n"
        line = value.strip()
        for position, day in _dates_in(text, start):
            if len(line) <= _SHORT_LINE or position - start <= _DATELINE_CHARS:
                return day.isoformat()
        if len(text) > LEAD_CHARS:
            break
    return None


def _has_structured_date(tree: Any) -> bool:
    """Whether the page dates itself in meta tags or JSON-LD (`datePublished`)."""
    for element in tree.iter("meta", "script"):
        if element.tag == "script":
            if "ld+json" in (element.get("type") or "") and "datePublished" in (
                element.text or ""
            ):
                return True
            continue
        for attribute in ("property", "name", "itemprop"):
            if (element.get(attribute) or "").strip().lower() in _STRUCTURED_META:
                return True
    return False


def _main_root(tree: Any) -> Any:
    """<article>, <main> and kin; else the block around the first <h1> (the
    headline and its meta line); else <body>. lxml's own walks, not Python's."""
    for tag in ("article", "main"):
        element = next(tree.iter(tag), None)
        if element is not None:
            return element
    for path in _ROOT_PATHS:
        found = tree.xpath(path)
        if found:
            return found[0]
    headline = next(tree.iter("h1"), None)
    if headline is not None and headline.getparent() is not None:
        return headline.getparent()
    return next(tree.iter("body"), None)


def _skipped(element: Any) -> bool:
    tag = element.tag if isinstance(element.tag, str) else ""
    if tag.lower() in _SKIPPED:
        return True
    marks = f"{element.get('class') or ''} {element.get('id') or ''}"
    return bool(_SKIPPED_CLASS.search(marks))


def _lead_items(root: Any) -> Iterator[tuple[str, str]]:
    """("time", datetime) and ("text", text) of `root` in document order, skipping
    navigation, sidebars and footers (but not the text that follows them)."""
    from lxml import etree

    walker = etree.iterwalk(root, events=("start", "end"))
    for event, element in walker:
        if event == "end":
            if element is not root and element.tail and element.tail.strip():
                yield "text", element.tail
            continue
        if not isinstance(element.tag, str) or (element is not root and _skipped(element)):
            walker.skip_subtree()
            continue
        if element.tag.lower() == "time" and element.get("datetime"):
            yield "time", element.get("datetime")
        if element.text and element.text.strip():
            yield "text", element.text


def _dates_in(text: str, start: int) -> list[tuple[int, dt.date]]:
    found: list[tuple[int, dt.date]] = []
    for pattern in _DATES:
        for match in pattern.finditer(text, max(0, start - 40)):
            if match.end() <= start:
                continue  # seen with the text before
            if _UPDATED.search(text[max(0, match.start() - 30) : match.start()]):
                continue
            day = _as_date(match)
            if day is not None:
                found.append((match.start(), day))
    return sorted(found, key=lambda item: item[0])


def _as_date(match: re.Match[str]) -> dt.date | None:
    groups = match.groupdict()
    month = _MONTHS.get(groups["month"].lower()) if groups.get("month") else int(groups["m"])
    try:
        day = dt.date(int(groups["y"]), month or 0, int(groups["d"]))
    except ValueError:
        return None
    return day if 1990 <= day.year <= dt.date.today().year + 1 else None


def _parse_iso(value: str) -> dt.date | None:
    match = _DATES[0].search(value)
    return _as_date(match) if match else None


def _copyright_years(tree: Any) -> frozenset[str]:
    footer = next(tree.iter("footer"), None)
    text = footer.text_content() if footer is not None else tree.text_content()
    return frozenset(_COPYRIGHT.findall(text[-20_000:]))


def _is_copyright(found: str, years: frozenset[str]) -> bool:
    """Whether htmldate's `found` is January 1 of a year the page names as its copyright
    (htmldate's last resort, not the statement's date)."""
    match = re.fullmatch(r"(\d{4})-01-01(?:[T ]00:00(?::00)?)?(?:Z|[+-]00:?00)?", found.strip())
    return match is not None and match[1] in years
