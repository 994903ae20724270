"""Extraction and enrichment: a fetched statement page in, an `Article`, then who
said what and which watchlists it touches.

`extract_article` and `enrich` are the pure, picklable functions the process
pool runs; `stage.ExtractionStage` is how the event loop calls them.
`clean_title` and the text helpers are exported for other stages and tests.

    article.py     the extraction function: its steps in order, the Article assembled
    parse.py       decoding bytes, refusing what is no HTML, parsing the tree
    pagehead.py    what <head> says: language, canonical URL, site name, titles
    body.py        Trafilatura's main text and the boilerplate guard
    metadata.py    Trafilatura's metadata pass, cheaper (byline, categories, tags)
    rules.py       per-source rules: content, title and date selectors, removals
    titles.py      stripping site names from page titles
    headings.py    the site's name in its logo or home link; <h2> headline hints
    dates.py       the statement's own date (dateline, date line) against htmldate's
    text.py        paragraphs, whitespace/Unicode normalisation, language
    chrome.py      telling site chrome (navigation, footers) from the statement
    feedtext.py    the feed's own HTML as text, when the page cannot be had
    quotes/        direct quotations, their speakers and the speakers' roles
                   (lexicon, marks, attribution, names)
    figures.py     the quantities a statement claims ("46 command centres")
    watchlists.py  watchlist terms and patterns found in a statement
    enrich.py      quotes, watchlist matches and figures of one statement version
    isolate.py     a bug in one step costs that step only (internal errors)
    stage.py       pool calls, rule misses, enrichment failures, alert routing
"""

from typing import Any

from monitor.extract.text import (
    detect_language,
    join_paragraphs,
    normalize_language_tag,
    normalize_whitespace,
)
from monitor.extract.titles import clean_title, names_site

__all__ = [
    "EMPTY",
    "NOT_HTML",
    "PARSE_ERROR",
    "REASONS",
    "clean_title",
    "detect_language",
    "extract_article",
    "join_paragraphs",
    "names_site",
    "normalize_language_tag",
    "normalize_whitespace",
]

# The extraction function and its reasons come from article.py, which imports
# Trafilatura: loaded on first use, so that the service's own process (which only
# sends work to the pool by name) never pays for it.
_FROM_ARTICLE = frozenset({"EMPTY", "NOT_HTML", "PARSE_ERROR", "REASONS", "extract_article"})


def __getattr__(name: str) -> Any:
    if name in _FROM_ARTICLE:
        from monitor.extract import article

        return getattr(article, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
