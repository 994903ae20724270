"""Page chrome: the header, navigation, footer and asides around a statement.

The boilerplate guard of `body.py` asks two questions of an extraction:
how much of it is chrome (`chrome_share`, over word shingles of the page's
chrome elements), and whether a second extraction keeps the first one's
content (`keeps_content`). A long paragraph that comes twice (`has_repeats`)
is the other sign that Trafilatura's recall mode over-delivered.
"""

from __future__ import annotations

from typing import Any, Final

from lxml import etree

from monitor.extract.text import SHINGLE_SIZE, content_shingles, overlap, shingles, tokens

__all__ = [
    "chrome_share",
    "chrome_shingles",
    "has_repeats",
    "in_chrome",
    "is_chrome",
    "keeps_content",
]

_KEEP_CONTENT: Final = 0.97  # ...and take it if it keeps this much of the non-chrome shingles
_MIN_REPEAT_LENGTH: Final = 50  # characters; a verbatim repeat this long is suspect
_CHROME_TAGS: Final = frozenset({"header", "nav", "footer", "aside"})
_CHROME_ROLES: Final = frozenset(
    {"navigation", "banner", "contentinfo", "complementary", "search", "menubar"}
)
_CHROME_NAMES: Final = frozenset(
    {
        "breadcrumb",
        "breadcrumbs",
        "nav",
        "navbar",
        "navigation",
        "menu",
        "footer",
        "header",
        "sidebar",
        "social",
        "share",
    }
)
_CONTENT_TAGS: Final = frozenset({"article", "main"})
_CHROME_MAX_PAGE_SHARE: Final = 0.5  # of the page's <p> text...
_MIN_PAGE_PARAGRAPHS: Final = 200  # ...when it has this many characters of <p> text
# A subtree's text nodes in document order: `itertext()`'s pieces (element texts and
# tails, not comments' text) as plain strings from one C call, 4x faster than iterating.
_TEXT_NODES: Final = etree.XPath("descendant::text()", smart_strings=False)
_PARAGRAPH_TEXT_NODES: Final = etree.XPath("descendant-or-self::p//text()", smart_strings=False)
_NESTED_PARAGRAPH: Final = etree.XPath("boolean(descendant-or-self::p//p)")


def chrome_share(paragraphs: list[str], chrome: set[tuple[str, ...]]) -> float:
    total, hits = overlap(" ".join(paragraphs), chrome)
    return hits / total if total else 0.0


def keeps_content(candidate: list[str], reference: list[str], chrome: set[tuple[str, ...]]) -> bool:
    """True when `candidate` holds nearly all of `reference`'s non-chrome shingles.

    Shingles straddling a chrome/content boundary of `reference` are content
    there but nowhere in a clean candidate: allow one boundary on each side.
    """
    wanted = content_shingles(" ".join(reference), chrome)
    kept = len(wanted & content_shingles(" ".join(candidate), chrome))
    return kept + 2 * (SHINGLE_SIZE - 1) >= _KEEP_CONTENT * len(wanted)


def has_repeats(paragraphs: list[str]) -> bool:
    """True when a long paragraph comes twice: usually recall extracting a block twice.

    Short ones ("Question:", "Thank you.") legitimately recur in transcripts.
    Repeats are not dropped here: some pages do repeat themselves.
    """
    long_ones = [p for p in paragraphs if len(p) >= _MIN_REPEAT_LENGTH]
    return len(set(long_ones)) < len(long_ones)


def chrome_shingles(tree: Any) -> set[tuple[str, ...]]:
    """Word shingles (and words) of the page's outermost chrome elements.

    Chrome is header/nav/footer/aside, ARIA landmarks of the same kind and
    elements named like breadcrumbs or menus, outside <article> and <main>;
    an element holding most of the page's paragraph text is the page, not chrome.

    One walk of "start" events that skips content and chrome subtrees (what is
    inside them never counts); the page's paragraph text is only measured for a
    chrome element with paragraph text of its own, and the words come from the
    subtree's text nodes, the same pieces `itertext()` gives (0.9 ms instead of
    1.9 ms on a bench/backfill.py page).
    """
    page_paragraphs = -1  # not measured yet
    known: set[tuple[str, ...]] = set()
    walker = etree.iterwalk(tree, events=("start",))
    for _, element in walker:
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag in _CONTENT_TAGS:
            walker.skip_subtree()
            continue
        if not is_chrome(element, tag):
            continue
        walker.skip_subtree()
        size = _paragraph_text_size(element)
        if size:  # without <p> text of its own, an element cannot hold the page
            if page_paragraphs < 0:
                page_paragraphs = _paragraph_text_size(tree)
            if _holds_the_page(size, page_paragraphs):
                continue
        words = tokens(" ".join(_TEXT_NODES(element)))
        known.update(shingles(words))
        known.update((word,) for word in words)
    return known


def _paragraph_text_size(element: Any) -> int:
    """Characters of <p> text in `element`: each <p>'s `text_content()`, summed.

    From the text nodes inside a <p>, one C call, a quarter of the cost of a
    string per <p> (0.06 instead of 0.21 ms for a bench/backfill.py page). A text
    node inside a <p> nested in another is in both `text_content()`s: where the
    parser left such nesting, the strings are summed as before.
    """
    if _NESTED_PARAGRAPH(element):
        return sum(len(p.text_content()) for p in element.iter("p"))
    return sum(map(len, _PARAGRAPH_TEXT_NODES(element)))


def _holds_the_page(size: int, page_paragraphs: int) -> bool:
    """True for a "chrome" element with `size` characters of the page's <p> text
    when that is most of a real page's."""
    if page_paragraphs < _MIN_PAGE_PARAGRAPHS:
        return False
    return size > _CHROME_MAX_PAGE_SHARE * page_paragraphs


def in_chrome(element: Any) -> bool:
    """True when `element` sits in page chrome, as `chrome_shingles` draws it.

    A <header> inside <article> or <main> is the article's own header (its
    headline, byline and date), not the site's: the content tags win.
    """
    chrome = False
    for ancestor in element.iterancestors():
        tag = ancestor.tag if isinstance(ancestor.tag, str) else ""
        if tag in _CONTENT_TAGS:
            return False
        chrome = chrome or is_chrome(ancestor, tag)
    return chrome


def is_chrome(element: Any, tag: str) -> bool:
    if tag in _CHROME_TAGS or (element.get("role") or "").lower() in _CHROME_ROLES:
        return True
    names = f"{element.get('class') or ''} {element.get('id') or ''}".lower().split()
    return not _CHROME_NAMES.isdisjoint(names)
