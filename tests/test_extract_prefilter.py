"""`monitor.extract.prefilter`: Trafilatura's regex prunes give the same answers, cheaper."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from lxml.etree import XPath
from trafilatura import xpaths

from monitor.errors import ExtractionError
from monitor.extract import article, parse, prefilter
from tests.shared import READABILITY_PAGES, corpus_dir, requires_shared
from tests.sites.benchpages import backfill_pages, official_pages

# In ../shared (MONITOR_SHARED_DIR): absent on a fresh clone, where the pages
# below are the handmade, bench and backfill ones only.
READABILITY = corpus_dir().joinpath(*READABILITY_PAGES[1:])
HANDMADE = {
    "comments section": '<div id="comments"><p>A reader wrote this.</p></div>',
    "comment class": '<section class="Comment-list"><p>A reader wrote this.</p></section>',
    "commentary is content": '<div class="commentary"><p>The minister said so.</p></div>',
    "post comments": '<div class="wrap post-comments"><p>A reader wrote this.</p></div>',
    "disqus": '<div id="disqus_thread"><p>A reader wrote this.</p></div>',
    "list of comments": '<ul id="comment-list"><li>A reader wrote this.</li></ul>',
    "infinite scroll": '<div class="infinite-scroll"><p>The next article.</p></div>',
    "infinite scroll with the headline": '<div id="infinitescroll"><h1>T</h1><p>Text.</p></div>',
    "zox theme": '<aside class="mvp-post-add-box"><p>Another article.</p></aside>',
    "needle in an unrelated attribute": '<p class="no-comments-here">Text.</p>',
}


def _pages() -> list[tuple[str, str | bytes]]:
    pages: list[tuple[str, str | bytes]] = [
        (name, f"<html><body><article><p>Statement.</p></article>{body}</body></html>")
        for name, body in HANDMADE.items()
    ]
    pages += [(p.parent.name, p.read_bytes()) for p in sorted(READABILITY.glob("*/source.html"))]
    pages += official_pages()
    pages += backfill_pages(10, seed=2)
    return pages


PAGES = _pages()


@requires_shared(*READABILITY_PAGES)
def test_the_readability_pages_are_among_the_pages() -> None:
    readability = {p.parent.name for p in READABILITY.glob("*/source.html")}
    assert len(readability) > 100
    assert readability <= {name for name, _ in PAGES}


def _tree(markup: str | bytes) -> Any:
    return parse.parse_page(markup)


def _shipped(known: prefilter._Known) -> XPath:
    """The XPath Trafilatura ships for `known`, compiled as its module compiles it."""
    return XPath(known.path, namespaces={"re": "http://exslt.org/regular-expressions"})


def test_both_known_xpaths_are_prefiltered_in_trafilatura() -> None:
    """Fails after a Trafilatura upgrade changes them: re-read the needles then."""
    assert prefilter.install() == len(prefilter.PREFILTERS) == 2
    for known in prefilter.PREFILTERS:
        assert any(isinstance(x, prefilter.Prefiltered) for x in getattr(xpaths, known.list_name))


@pytest.mark.parametrize("markup", [m for _, m in PAGES], ids=[name for name, _ in PAGES])
def test_a_prefiltered_xpath_selects_what_the_xpath_selects(markup: str | bytes) -> None:
    tree = _tree(markup)
    for known in prefilter.PREFILTERS:
        shipped = _shipped(known)
        assert prefilter.Prefiltered(shipped, known.needles)(tree) == shipped(tree)


def test_the_handmade_pages_reach_the_xpaths() -> None:
    """The needles let through what the XPaths select (else the test above proves little)."""
    selected = {
        name: any(
            prefilter.Prefiltered(_shipped(k), k.needles)(_tree(markup))
            for k in prefilter.PREFILTERS
        )
        for name, markup in PAGES[: len(HANDMADE)]
    }
    assert selected == {
        **dict.fromkeys(HANDMADE, True),
        "commentary is content": False,
        "infinite scroll with the headline": False,  # no "-scroll"... and an <h1>
        "needle in an unrelated attribute": False,  # a <p> is no candidate
    }


def test_an_expression_it_does_not_know_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    other = XPath(".//*[@id='comments']")
    monkeypatch.setattr(xpaths, "RAW_TREE_PRUNE_XPATH", [other])
    monkeypatch.setattr(xpaths, "REMOVE_COMMENTS_AND_LISTS_XPATH", [])
    assert prefilter.install() == 0
    assert [other] == xpaths.RAW_TREE_PRUNE_XPATH


def test_page_attributes_stand_in_for_the_trees() -> None:
    tree = _tree(PAGES[0][1])  # "comments section"
    known = prefilter.PREFILTERS[1]
    shipped = _shipped(known)
    filtered = prefilter.Prefiltered(shipped, known.needles)
    assert filtered(tree) == shipped(tree) != []
    with prefilter.page_attributes(["main", "no-needle-here"]):
        assert filtered(tree) == []  # the caller's values are taken on trust
    with prefilter.page_attributes(["main", "comments"]):
        assert filtered(tree) == shipped(tree)
    assert filtered(tree) == shipped(tree)  # and only within


def _outcome(markup: str) -> object:
    try:
        return article.extract_article(markup)
    except ExtractionError as exc:
        return exc.reason


@contextlib.contextmanager
def _shipped_xpaths() -> Iterator[None]:
    """Trafilatura's own XPaths back in its lists (the very lists its modules hold)."""
    lists = [getattr(xpaths, known.list_name) for known in prefilter.PREFILTERS]
    saved = [list(expressions) for expressions in lists]
    for known, expressions in zip(prefilter.PREFILTERS, lists, strict=True):
        expressions[:] = [
            _shipped(known) if isinstance(x, prefilter.Prefiltered) else x for x in expressions
        ]
    try:
        yield
    finally:
        for expressions, before in zip(lists, saved, strict=True):
            expressions[:] = before


@pytest.mark.parametrize("body", HANDMADE.values(), ids=list(HANDMADE))
def test_articles_are_those_of_the_shipped_xpaths(
    body: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end, with the page's attribute values shared from `extract_article`."""
    statement = "<p>" + "The ministry announced the measures in full today. " * 8 + "</p>"
    markup = f"<html><body><article>{statement}</article>{body}</body></html>"
    with monkeypatch.context() as patch:  # extract_article shares its own look at the page
        patch.setattr(prefilter, "_ID_AND_CLASS", None)
        ours = _outcome(markup)
    with _shipped_xpaths():
        assert _outcome(markup) == ours
    assert prefilter.install() == len(prefilter.PREFILTERS)
