"""The pure extraction function: one statement page in, one `Article` out.

`extract_article` runs in the extraction process pool, so it is a top-level,
picklable function of plain data, with no I/O, no global state that changes
results, and nothing worse than linear in the input. It owns:

* the order of the steps, each in its own module: decoding, refusing what is
  not HTML and parsing (`monitor.extract.parse`); what the page says about
  itself in `<head>` (`monitor.extract.pagehead`); Trafilatura's main text and
  the boilerplate guard (`monitor.extract.body`); its metadata pass, cheaper
  (`monitor.extract.metadata`); the source's rules (`monitor.extract.rules`);
* assembling the `Article`: paragraphs, cleaned title, tz-aware publication
  date, language, canonical URL, authors, description, site name and tags.

Failures raise `ExtractionError` with one of the bounded reasons in `REASONS`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from trafilatura.settings import Document

from monitor.errors import ExtractionError
from monitor.extract import dates, prefilter
from monitor.extract.body import run_trafilatura, statement_paragraphs, without_headline
from monitor.extract.metadata import AUTHOR_ATTRIBUTES, metadata_of
from monitor.extract.pagehead import PageHead, clean_or_none, read_head
from monitor.extract.parse import EMPTY, NOT_HTML, PARSE_ERROR, REASONS, parse_page
from monitor.extract.rules import apply_rules
from monitor.extract.text import (
    choose_language,
    join_paragraphs,
)
from monitor.extract.titles import clean_title, names_site
from monitor.models import Article, ExtractionRules

__all__ = ["EMPTY", "NOT_HTML", "PARSE_ERROR", "REASONS", "extract_article"]

prefilter.install()  # Trafilatura's regex prunes, skipped where they cannot match (1.6 ms a page)

_MAX_TAGS = 64
_LIST_SPLIT = re.compile(r"\s*[,;]\s*")
_AUTHOR_SPLIT = re.compile(r"\s*;\s*")


def extract_article(
    html: bytes | str,
    *,
    url: str | None = None,
    feed_title: str | None = None,
    feed_published_at: dt.datetime | None = None,
    rules: ExtractionRules | None = None,
) -> Article:
    """Extract the statement in `html`, the page served at `url`.

    `feed_title` and `feed_published_at` are what the feed said about the
    entry; they stand in when the page has no title or date of its own.
    `rules` are the source's extraction rules (`monitor.extract.rules`): each
    one that matches wins over generic extraction for its part, each one that
    does not is named in `Article.rule_misses`.

    Raises:
        ExtractionError: `reason` is one of `REASONS`; never retriable, since
            the same bytes give the same answer.
    """
    tree = parse_page(html)
    ruled = apply_rules(tree, rules)  # first, so that nothing below sees what it removes
    attributes = AUTHOR_ATTRIBUTES(tree)  # one scan, for the byline and Trafilatura's prunes
    head = read_head(tree, url)
    page_dates = dates.read_page(tree)
    with prefilter.page_attributes(attributes):
        body = run_trafilatura(tree, url, precise=False)
        if body is None and not ruled.paragraphs:  # a content rule's text needs no body
            raise ExtractionError(EMPTY, "no main text found in the page")
        document = metadata_of(tree, url, attributes)
        document.body = None if body is None else body.body
        authors = _authors(document.author)
        site_names = (head.site_name, clean_or_none(document.sitename), *head.home_names)
        hostname = urlsplit(head.canonical_url or url or "").hostname
        title = ruled.title or _title(document, head, feed_title, site_names, authors, hostname)
        paragraphs = list(ruled.paragraphs) or statement_paragraphs(tree, url, document)
    text = join_paragraphs(without_headline(paragraphs, (title, feed_title, *head.headlines)))
    return Article(
        title=title,
        text=text,
        language=choose_language(head.language, text),
        published_at=_published_at(
            ruled.date or page_dates.choose(document.date), feed_published_at
        ),
        canonical_url=head.canonical_url or url,
        authors=authors,
        description=clean_or_none(document.description),
        sitename=clean_or_none(document.sitename) or head.site_name,
        tags=_tags(document.tags, document.categories),
        rule_misses=ruled.misses,
    )


# --- metadata ---------------------------------------------------------------


def _title(
    document: Document,
    head: PageHead,
    feed_title: str | None,
    site_names: tuple[str | None, ...],
    authors: tuple[str, ...],
    hostname: str | None,
) -> str | None:
    """The headline: the page's first title that is more than the site name, else the feed's.

    og:title, twitter:title and <title> come first, cleaned of the site name;
    then Trafilatura's title (JSON-LD headline or the lone <h1>, which on
    official sites is often a section name such as "Press releases").
    """
    hints = (*head.headlines, feed_title, *head.subheadings)
    strippable = (*site_names, *authors)  # "Headline | by Jane Doe"
    cleaned = [
        clean_title(raw, site_names=strippable, headlines=hints, hostname=hostname)
        for raw in (*head.titles, clean_or_none(document.title))
        if raw
    ]
    for title in cleaned:
        if title and not names_site(title, site_names=site_names, hostname=hostname):
            return title
    fallback = clean_or_none(feed_title)
    if fallback:
        return clean_title(fallback, site_names=site_names, hostname=hostname) or fallback
    return next((title for title in cleaned if title), None)


def _published_at(page_date: str | None, feed_date: dt.datetime | None) -> dt.datetime | None:
    """The page's date when it has one, else the feed's; always tz-aware.

    A date without a time of day is midnight UTC, unless the feed dates the
    entry on that same day: then the feed's timestamp is the more precise one.
    """
    feed = _aware(feed_date)
    parsed = _parse_date(page_date)
    if parsed is None:
        return feed
    page, date_only = parsed
    if date_only and feed is not None and feed.date() == page.date():
        return feed
    return page


def _parse_date(value: str | None) -> tuple[dt.datetime, bool] | None:
    """(tz-aware datetime, whether only the day was known) from htmldate's output."""
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except (ValueError, OverflowError):
        return None
    date_only = parsed.tzinfo is None and parsed.time() == dt.time()
    return _with_zone(parsed), date_only


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else _with_zone(value)


def _with_zone(value: dt.datetime) -> dt.datetime:
    """`value` with UTC assumed when it carries no time zone."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _authors(value: str | None) -> tuple[str, ...]:
    return _unique(_AUTHOR_SPLIT.split(value or ""))


def _tags(*groups: list[str] | None) -> tuple[str, ...]:
    items = (item for group in groups for entry in group or () for item in _LIST_SPLIT.split(entry))
    return _unique(items)[:_MAX_TAGS]


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    """Normalised, non-empty items in first-seen order, case-insensitively unique."""
    seen: dict[str, str] = {}
    for item in items:
        cleaned = clean_or_none(item)
        if cleaned and cleaned.casefold() not in seen:
            seen[cleaned.casefold()] = cleaned
    return tuple(seen.values())
