"""The same answers, cheaper, for two of Trafilatura's pruning XPaths.

Trafilatura prunes every page, before it extracts, with XPaths that test @id
and @class against EXSLT regular expressions (`re:test`). lxml evaluates
those by calling back into Python for each candidate element: 1.9 ms of a
12 ms extraction on bench/backfill.py pages, spent on nearly every page to
find nothing.

Each of these XPaths can only select an element whose @id or @class contains
one of a few literal strings, its `needles`, read off its regular expressions
(`[Cc]omment(?!ary)` needs "omment", `infinite-?scroll` needs "infinite"...).
One look at the values of every @id and @class in the tree (0.17 ms) tells
whether any holds a needle. If none does, the XPath's answer is known:
nothing. Otherwise it runs as shipped. `page_attributes` shares a look the
caller already took at the page (article.py scans those attributes for the
byline anyway), instead of one look per XPath.

`install()` puts the prefiltered XPaths in Trafilatura's lists, in place, only
where a list holds exactly the expression its needles were read off: after an
upgrade that changes an expression, that one runs as shipped.
tests/test_extract_prefilter.py holds each to the shipped XPath's answers on
the corpora and pins that both are installed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final

from lxml.etree import XPath
from trafilatura import xpaths

__all__ = ["PREFILTERS", "Prefiltered", "install", "page_attributes"]

_ID_AND_CLASS: Final = XPath(".//@id|.//@class", smart_strings=False)
_PAGE_VALUES: Final[ContextVar[str | None]] = ContextVar("prefilter_page_values", default=None)


@contextlib.contextmanager
def page_attributes(values: Iterable[str]) -> Iterator[None]:
    """Within: the prefiltered XPaths take `values` for the attribute values of their tree.

    For a caller that already has them: `values` must hold at least every @id
    and @class value of the page whose trees the XPaths are then asked about.
    Trafilatura runs them on its copy of the page, first thing, before it
    changes anything but by pruning, so the page's values are a superset of
    the tree's: a needle found that is no longer there only costs running the
    XPath as shipped.
    """
    token = _PAGE_VALUES.set("\n".join(values))
    try:
        yield
    finally:
        _PAGE_VALUES.reset(token)


@dataclass(frozen=True, slots=True)
class Prefiltered:
    """`xpath`, run only when some @id or @class in the tree holds one of `needles`."""

    xpath: XPath
    needles: tuple[str, ...]

    @property
    def path(self) -> str:  # as an XPath has
        return str(self.xpath.path)

    def __call__(self, tree: Any) -> list[Any]:
        values = _PAGE_VALUES.get()
        if values is None:
            values = "\n".join(_ID_AND_CLASS(tree))
        if any(needle in values for needle in self.needles):
            found: list[Any] = self.xpath(tree)
            return found
        return []


@dataclass(frozen=True, slots=True)
class _Known:
    """An XPath of Trafilatura's (whitespace-normalised) and what it needs to match."""

    list_name: str  # in trafilatura.xpaths
    path: str
    needles: tuple[str, ...]


PREFILTERS: Final = (
    _Known(
        "RAW_TREE_PRUNE_XPATH",
        ".//*[self::div or self::section or self::aside][ "
        "re:test(@id, 'mvp-post-add-(?:box|wrap)|infinite-?scroll') or "
        "re:test(@class, 'mvp-post-add-(?:box|wrap)|infinite-?scroll')][ "
        "not(.//h1) or re:test(@id, 'mvp-post-add-(?:box|wrap)') or "
        "re:test(@class, 'mvp-post-add-(?:box|wrap)')]",
        ("mvp-post-add-", "infinite"),
    ),
    _Known(
        "REMOVE_COMMENTS_AND_LISTS_XPATH",
        ".//*[self::div or self::list or self::section or self::details or self::ol or "
        "self::ul][ re:test(@id, '^(?:[Cc]omment(?!ary)|comol|disqus_thread|dsq-comments)') "
        "or re:test(@class, '^[Cc]omment(?!ary)|(?:article|post)-comments')][ "
        "not(self::ol or self::ul) or re:test(@id, '^(?:[Cc]omment(?!ary)|comol)') or "
        "re:test(@class, '^[Cc]omment(?!ary)|(?:article|post)-comments')]",
        ("omment", "comol", "disqus_thread"),  # "dsq-comments" holds "omment"
    ),
)


def install() -> int:
    """Prefilter the known XPaths in Trafilatura's lists; the number now prefiltered."""
    installed = 0
    for known in PREFILTERS:
        expressions: list[Any] = getattr(xpaths, known.list_name)
        for index, expression in enumerate(expressions):
            if isinstance(expression, Prefiltered):
                installed += 1
            elif " ".join(str(expression.path).split()) == known.path:
                expressions[index] = Prefiltered(expression, known.needles)
                installed += 1
    return installed
