"""Extraction: turn a fetched statement page into an `Article`.

`extract_article` is the pure, picklable function the process pool runs;
`clean_title` and the text helpers are exported for other stages and tests.

    article.py  the extraction function, decoding and metadata assembly
    titles.py   stripping site names from page titles
    text.py     paragraphs, whitespace/Unicode normalisation, language
"""

from monitor.extract.article import EMPTY, NOT_HTML, PARSE_ERROR, REASONS, extract_article
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
