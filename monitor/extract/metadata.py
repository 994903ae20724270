"""Trafilatura's metadata pass, at a third of its cost: title, author, date, site, tags.

This module owns `metadata_of`, which gives what `trafilatura.extract_metadata`
gives (tests/test_extract_metadata.py holds it to that), with its two
expensive searches done differently: the byline in the page's body
(`_byline`, from the elements whose attributes can match) and categories and
tags (`_catstags`, skipped when no link could match). `AUTHOR_ATTRIBUTES` is
the one scan of the page's attribute values that the byline and `prefilter`
share.
"""

from __future__ import annotations

import contextlib
import copy
import re
from typing import Any, Final

from courlan import extract_domain
from htmldate import find_date
from lxml.etree import XPath
from trafilatura.htmlprocessing import prune_unwanted_nodes
from trafilatura.json_metadata import normalize_authors
from trafilatura.metadata import (
    META_URL,
    examine_meta,
    extract_author,
    extract_catstags,
    extract_meta_json,
    extract_sitename,
    extract_title,
    extract_url,
)
from trafilatura.settings import Document
from trafilatura.utils import (
    line_processing,
    trim,
)
from trafilatura.xpaths import AUTHOR_DISCARD_XPATHS

from monitor.errors import ExtractionError
from monitor.extract.parse import PARSE_ERROR

__all__ = ["AUTHOR_ATTRIBUTES", "metadata_of"]

# Trafilatura asks htmldate for the full timestamp; "%z" is empty when unknown.
_DATE_FORMAT: Final = "%Y-%m-%dT%H:%M:%S%z"
# Trafilatura's in-body author search (`trafilatura.metadata.extract_author`, 2.3) looks
# for elements by attributes only (trafilatura.xpaths.AUTHOR_XPATHS) in a deep copy of the
# page pruned of AUTHOR_DISCARD_XPATHS: 11.4 ms of a 31 ms page, mostly libxml2 testing a
# dozen predicates on every element. `_byline` gives the same answer from the few elements
# with an attribute value that any of those predicates needs (`_AUTHOR_HINT`): 0.4-1 ms.
# The same values (every @id and @class among them) answer `prefilter`'s question too.
AUTHOR_ATTRIBUTES: Final = XPath(
    "//@class|//@id|//@itemprop|//@rel|//@data-testid|//@data-component"
)
_AUTHOR_HINT: Final = re.compile(
    "[Aa]uthor|[Bb]yl|BBL|username|screenname|writer|zuozhe|bianji|xiaobian|channel-name"
    "|submitted-by|posted-by|journalist-name"
)

_AUTHOR_TAGS: Final = (  # the element names of AUTHOR_XPATHS' first and second expression
    frozenset({"a", "address", "div", "link", "p", "span", "strong"}),
    frozenset({"a", "div", "h3", "h4", "p", "span"}),
)
_AUTHOR_DISCARD_TAGS: Final = frozenset({"a", "div", "section", "span"})
_AUTHOR_DISCARD_ALWAYS: Final = frozenset({"time", "figure"})
_AUTHOR_MAX_CHARS: Final = 120
# `trafilatura.metadata.extract_catstags` keeps the links, under elements that its XPaths
# name, whose href has "/categor" ("/category/", "/categories/") or "/tag" in it: without
# such a link anywhere, its XPaths (2.6 ms on bench/backfill.py pages) cannot find any.
# One look at every link's href answers that for both kinds.
_LINK_TARGETS: Final = XPath("//a/@href", smart_strings=False)
_CATSTAGS_LINK_MARK: Final = {"category": "/categor", "tag": "/tag"}
_SECTION_METAS: Final = XPath(  # extract_catstags' fallback for categories
    './/head//meta[@property="article:section" or contains(@name, "subject")][@content]'
)


def metadata_of(tree: Any, url: str | None, attributes: list[Any]) -> Document:
    """`_metadata`, with Trafilatura's failures as one bounded reason."""
    try:
        return _metadata(tree, url, attributes)
    except Exception as exc:  # third-party code on hostile input: one bounded reason
        raise ExtractionError(PARSE_ERROR, f"Trafilatura failed: {exc!r}") from exc


def _metadata(tree: Any, url: str | None, attributes: list[Any] | None = None) -> Document:
    """What `trafilatura.extract_metadata(tree, url, date_config)` says, at a third of its cost.

    The same steps in the same order (meta tags, JSON-LD, title, author, URL,
    htmldate with Trafilatura's parameters, site name, categories, tags) with
    the same results: only the two expensive searches are done differently,
    the author in the page's body (`_byline`: 11.4 -> 0.5 ms per
    bench/backfill.py page) and categories/tags (`_catstags`: 2.6 -> 0.4 ms).
    The license, which nothing here reads, is not looked for (0.8 ms).
    tests/test_extract_metadata.py holds the result to Trafilatura's.
    """
    metadata = examine_meta(tree)
    if metadata.author and " " not in metadata.author:  # as Trafilatura: one word is no name
        metadata.author = None
    with contextlib.suppress(Exception):  # as Trafilatura: a JSON-LD bug costs the JSON-LD only
        metadata = extract_meta_json(tree, metadata)
    if not metadata.title:
        metadata.title = extract_title(tree)
    if not metadata.author:
        metadata.author = _byline(tree, attributes)
    if not metadata.url:
        metadata.url = extract_url(tree, url)
    if metadata.url:
        metadata.hostname = extract_domain(metadata.url, fast=True)
    metadata.date = find_date(  # Trafilatura's parameters, with the full timestamp
        tree,
        url=metadata.url,
        extensive_search=True,
        original_date=True,
        outputformat=_DATE_FORMAT,
    )
    if not metadata.sitename:
        metadata.sitename = extract_sitename(tree)
    if metadata.sitename:
        name = metadata.sitename.lstrip("@")  # a Twitter handle
        metadata.sitename = (
            name.title() if name and "." not in name and not name[0].isupper() else name
        )
    elif metadata.url and (match := META_URL.match(metadata.url)):
        metadata.sitename = match[1]
    if not metadata.categories or not metadata.tags:
        hrefs = _hrefs(tree)
        if not metadata.categories:
            metadata.categories = _catstags("category", tree, hrefs)
        if not metadata.tags:
            metadata.tags = _catstags("tag", tree, hrefs)
    metadata.clean_and_trim()
    return metadata


def _byline(tree: Any, attributes: list[Any] | None = None) -> str | None:
    """`trafilatura.metadata.extract_author(tree)`, without copying and pruning the page.

    Its three XPaths in turn, each over the candidates in document order; the
    first candidate outside discarded parts (comments, sidebars, dates,
    figures...) whose text, without discarded descendants, is 3 to 119
    characters long is the byline. A page with an <author> element, or a <rel>
    one (`rel='me'` in the first XPath), takes Trafilatura's own path.
    """
    if next(tree.iter("author", "rel"), None) is not None:
        found: str | None = extract_author(tree)
        return found
    if attributes is None:
        attributes = AUTHOR_ATTRIBUTES(tree)
    candidates = dict.fromkeys(
        value.getparent() for value in attributes if _AUTHOR_HINT.search(value)
    )
    root = tree.getroottree().getroot()
    for matches in (_author_1, _author_2, _author_3):
        for element in candidates:
            if not matches(element) or _author_discarded(element, root):
                continue
            content = trim(" ".join(_without_discarded(element).itertext()))
            if content and 2 < len(content) < _AUTHOR_MAX_CHARS:
                author: str | None = normalize_authors(None, content)
                return author
    return None


def _hrefs(tree: Any) -> str:
    """The targets of the page's links, one a line: a mark (no newline in it) is in
    one of them if it is in this text, one test instead of one per link."""
    return "\n".join(_LINK_TARGETS(tree))


def _catstags(metatype: str, tree: Any, hrefs: str) -> list[str]:
    """`trafilatura.metadata.extract_catstags(metatype, tree)`, skipping its link XPaths
    when none of the page's links (`hrefs`, one a line) could match them."""
    if _CATSTAGS_LINK_MARK[metatype] in hrefs:
        found: list[str] = extract_catstags(metatype, tree)
        return found
    if metatype != "category":
        return []
    sections = (element.attrib["content"] for element in _SECTION_METAS(tree))
    return [r for r in dict.fromkeys(line_processing(x) for x in sections if x) if r]


def _author_1(element: Any) -> bool:
    """AUTHOR_XPATHS[0] without //author and `rel='me'` (a <rel> child; see `_byline`)."""
    if element.tag not in _AUTHOR_TAGS[0]:
        return False
    get = element.get
    class_ = get("class") or ""
    return (
        get("rel") == "author"
        or get("id") == "author"
        or class_ == "author"
        or get("itemprop") == "author name"
        or get("data-testid") in ("AuthorCard", "AuthorURL")
        or any(name in class_ for name in ("author-name", "authorname", "AuthorName", "authorName"))
    )


def _author_2(element: Any) -> bool:
    """AUTHOR_XPATHS[1]."""
    if element.tag not in _AUTHOR_TAGS[1]:
        return False
    get = element.get
    class_, id_ = get("class") or "", get("id") or ""
    return (
        class_ in ("byline", "username", "byl", "BBL")
        or "author" in (get("itemprop") or "")
        or any(name in id_ for name in ("author", "zuozhe", "bianji", "xiaobian"))
        or any(
            name in class_
            for name in (
                *("author", "channel-name", "zuozhe", "bianji", "xiaobian"),
                *("submitted-by", "posted-by", "journalist-name"),
            )
        )
    )


def _author_3(element: Any) -> bool:
    """AUTHOR_XPATHS[2]: any element."""
    get = element.get
    class_, id_ = get("class") or "", get("id") or ""
    return (
        "Byline" in (get("data-component") or "")
        or "author" in (get("itemprop") or "")
        or "Author" in id_
        or "author" in id_
        or any(
            name in class_
            for name in ("Author", "author", "screenname", "writer", "Byline", "byline")
        )
    )


def _discarded_here(element: Any, root: Any) -> bool:
    """Whether AUTHOR_DISCARD_XPATHS select `element` (the first one, .//*, not the root)."""
    tag = element.tag
    if tag in _AUTHOR_DISCARD_ALWAYS:
        return True
    if tag not in _AUTHOR_DISCARD_TAGS or element is root:
        return False
    get = element.get
    class_, id_ = get("class") or "", get("id") or ""
    return (
        id_ == "comments"
        or class_ in ("comments", "title", "date")
        or id_.startswith("comments")
        or any(name in id_ for name in ("commentlist", "comment-list", "ProductReviews"))
        or class_.startswith(("Comments", "comments"))
        or any(
            name in class_
            for name in (
                *("commentlist", "comments-list", "sidebar", "is-hidden", "quote"),
                *("embedly-instagram", "article-share", "article-support", "print"),
                *("category", "meta-date", "meta-reviewer"),
            )
        )
        or "Figure" in (get("data-component") or "")
    )


def _author_discarded(element: Any, root: Any) -> bool:
    """Whether pruning removes `element`: it or an ancestor is discarded."""
    return _discarded_here(element, root) or any(
        _discarded_here(ancestor, root) for ancestor in element.iterancestors()
    )


def _without_discarded(element: Any) -> Any:
    """`element`, or a pruned copy when it holds discarded elements (Trafilatura's
    pruning joins their tails to the text before them, so the copy's text is its text)."""
    if not any(_discarded_here(child, None) for child in element.iterdescendants()):
        return element
    return prune_unwanted_nodes(copy.deepcopy(element), AUTHOR_DISCARD_XPATHS)
