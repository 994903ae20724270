"""The statement's paragraphs: Trafilatura's main text, and the boilerplate guard.

This module owns running Trafilatura for the body (`run_trafilatura`, recall
first, precision as a second opinion) and choosing the statement's
paragraphs (`statement_paragraphs`): server footers and page furniture
dropped, navigation-heavy results checked against the page chrome, and a
page that is all chrome refused as `EMPTY`.
"""

from __future__ import annotations

from typing import Any, Final

import trafilatura
from trafilatura.settings import Document

from monitor.errors import ExtractionError
from monitor.extract.chrome import (
    chrome_share,
    chrome_shingles,
    has_repeats,
    keeps_content,
)
from monitor.extract.parse import EMPTY, PARSE_ERROR
from monitor.extract.text import (
    is_server_footer,
    normalize_whitespace,
    paragraphs_from_xml,
    trim_page_furniture,
)

__all__ = ["run_trafilatura", "statement_paragraphs", "without_headline"]

# Boilerplate guard: shares of the extraction's shingles found in the page chrome.
_RETRY_CHROME_SHARE: Final = 0.1  # above this, ask favor_precision for a second opinion
_BOILERPLATE_SHARE: Final = 0.9  # at or above this, the page has no statement


# --- Trafilatura ------------------------------------------------------------


def run_trafilatura(tree: Any, url: str | None, *, precise: bool) -> Document | None:
    """Main text of the page, or None when Trafilatura finds no text.

    favor_recall by default: a missed paragraph (often the one holding the
    quotation) costs more than a stray line, and recall scored best on the
    readability corpus. favor_precision is the second opinion asked when the
    recall result looks suspect (see `statement_paragraphs`).
    deduplicate=False: Trafilatura's cache is per process, so a repeated
    paragraph or a re-fetched page would vanish depending on what the worker
    saw before; extraction must depend on its input only.
    with_metadata=False: `_metadata` gives the same fields at a fifth of the cost.
    `url` only matters to Trafilatura's text for include_links (off here), so
    the body is the same as with its metadata pass, which passes on the page's
    canonical URL when `url` is None.
    output_format="txt": only the body tree is read here; the default ("python")
    also serializes that tree to text (`Document.text`, 0.2 ms a page) for nobody.
    """
    try:
        document = trafilatura.bare_extraction(
            tree,  # copied by Trafilatura, ours stays intact
            url=url,
            favor_recall=not precise,
            favor_precision=precise,
            include_comments=False,
            include_tables=True,
            include_images=False,
            include_links=False,
            include_formatting=False,
            deduplicate=False,
            with_metadata=False,
            output_format="txt",
        )
    except Exception as exc:  # third-party code on hostile input: one bounded reason
        raise ExtractionError(PARSE_ERROR, f"Trafilatura failed: {exc!r}") from exc
    if not isinstance(document, Document) or document.body is None:
        return None
    return document


def _paragraphs(document: Document | None) -> list[str]:
    """The body's paragraphs without server footers ("ServerCode=node3 ...") and
    without the date lines and share bars recall mode keeps at its ends."""
    if document is None:
        return []
    paragraphs = [p for p in paragraphs_from_xml(document.body) if not is_server_footer(p)]
    return trim_page_furniture(paragraphs)


def statement_paragraphs(tree: Any, url: str | None, document: Document) -> list[str]:
    """The statement's paragraphs: recall's, or precision's when those lose no content.

    Recall sometimes over-delivers: navigation leaks in (Trafilatura's
    whole-page rescue of a short statement) or a block comes out twice. Either
    sign asks favor_precision for a second opinion, taken when it keeps nearly
    all of recall's non-chrome text. Chrome is the page's header, nav, footer,
    aside and breadcrumbs; an extraction that is (nearly) all chrome is a page
    without a statement.
    """
    chrome = chrome_shingles(tree)
    paragraphs = _paragraphs(document)
    share = chrome_share(paragraphs, chrome)
    if share > _RETRY_CHROME_SHARE or has_repeats(paragraphs):
        precise = _paragraphs(run_trafilatura(tree, url, precise=True))
        if precise and keeps_content(precise, paragraphs, chrome):
            paragraphs = precise
            share = chrome_share(paragraphs, chrome)
    if not paragraphs or share >= _BOILERPLATE_SHARE:
        raise ExtractionError(EMPTY, "no statement text in the page, only navigation")
    return paragraphs


def without_headline(paragraphs: list[str], headlines: tuple[str | None, ...]) -> list[str]:
    """`paragraphs` without a first one that repeats the headline."""
    if len(paragraphs) > 1 and _same_text(paragraphs[0], headlines):
        return paragraphs[1:]
    return paragraphs


def _same_text(paragraph: str, candidates: tuple[str | None, ...]) -> bool:
    key = paragraph.casefold()
    return any(c and normalize_whitespace(c).casefold() == key for c in candidates)
