"""`monitor.extract.metadata`'s metadata pass gives what `trafilatura.extract_metadata` gives.

`_metadata` replaces Trafilatura's metadata pass for speed (`_byline` for its
in-body author search, `_catstags` for its category and tag search); these
tests hold it to Trafilatura's answers on the official pages, a backfill
benchmark page and hand-made bylines that exercise the pruning rules, so that
a Trafilatura upgrade that changes them shows up here.
"""

from __future__ import annotations

from typing import Any

import pytest
import trafilatura
from lxml import etree
from lxml.html import HtmlElement
from trafilatura.metadata import extract_author, extract_catstags
from trafilatura.utils import repair_faulty_html

from monitor.errors import ExtractionError
from monitor.extract import metadata, parse
from tests.sites.benchpages import backfill_pages, official_pages

_FIELDS = ("title", "author", "url", "description", "sitename", "date", "categories", "tags")
_PARAGRAPH = "<p>" + "The ministry published its statement on the matter today. " * 6 + "</p>"


def _page(body: str, head: str = "") -> str:
    return (
        f"<html><head><title>A statement</title>{head}</head><body>{body}{_PARAGRAPH}</body></html>"
    )


BYLINES = {
    "class author": '<span class="author">Jane Doe</span>',
    "date inside the byline": '<div class="byline">By <span class="date">1 May</span> Jane Doe</div>',
    "time inside the byline": '<p class="author-name">Jane <time>2024</time>Doe, minister</p>',
    "figure inside the byline": '<div class="byline">Jane <figure>x</figure>Doe</div>',
    "byline in a sidebar": (
        '<div class="sidebar"><span class="author">Side Bar</span></div>'
        '<span class="byline">Jane Doe</span>'
    ),
    "byline in a figure": '<figure><a rel="author">Fig Ure</a></figure><p class="byl">Jane Doe</p>',
    "byline in comments": '<section id="comments-1"><span class="author">Com Ment</span></section>',
    "too short, then the next": '<span class="author">Al</span><span id="AuthorBox">Jane Doe</span>',
    "itemprop": '<div itemprop="author"><span itemprop="name">Jane Doe</span></div>',
    "data-component": '<div data-component="Byline">Jane Doe and John Roe</div>',
    "writer": '<h4 class="writer">Jane Doe</h4>',
    "author element": "<author>Jane Doe</author>",
    "rel element": '<div><rel>me</rel><span class="x">Jane Doe</span></div>',
    "no byline": "<p>Nothing here.</p>",
    "one-word meta author": "<span class='author'>Jane Doe</span>",
    "json-ld author": '<span class="author">Not Used</span>',
    "catstags": (
        '<div class="entry-meta"><a href="/category/politics/">Politics</a></div>'
        '<div class="tags"><a href="/tag/eu/">EU</a><a href="/tags/trade/">Trade</a></div>'
    ),
    "category links elsewhere": '<nav><a href="/categories/x/">X</a><a href="/tag/y/">Y</a></nav>',
}
HEADS = {
    "one-word meta author": '<meta name="author" content="Admin">',
    "json-ld author": (
        '<script type="application/ld+json">'
        '{"@type": "NewsArticle", "author": {"@type": "Person", "name": "Jason Ld"}}</script>'
    ),
    "category links elsewhere": '<meta property="article:section" content="Economy">',
}


def _pages() -> list[tuple[str, str | bytes]]:
    pages: list[tuple[str, str | bytes]] = [
        (name, _page(body, HEADS.get(name, ""))) for name, body in BYLINES.items()
    ]
    pages += official_pages()
    pages += backfill_pages(3, seed=1)
    return pages


PAGES = _pages()
TREES = [(name, trafilatura.load_html(markup)) for name, markup in PAGES]
ODD_MARKUP = {
    "xml declaration with an encoding": (
        '<?xml version="1.0" encoding="iso-8859-1"?><html><body><p>Text</p></body></html>'
    ),
    "self-closing html": "<!DOCTYPE html>\n<html/>\n<body><p>Text</p></body></html>",
    "fragment": "<p>One</p><p>Two</p>",
    "no html, one block": "<div>Only a div</div>",
    "no html, blocks": "<title>T</title><div>One</div><div>Two</div>",
    "invalid xml characters": "<html><body><p>A\x0bB\x1fC</p></body></html>",
    "form elements": "<html><body><form><input value='1'><select><option>o</option></select>"
    "</form><p>Text</p></body></html>",
}


@pytest.mark.parametrize(
    "markup",
    [*(m for _, m in PAGES), *ODD_MARKUP.values(), *(m.encode() for m in ODD_MARKUP.values())],
    ids=[*(name for name, _ in PAGES), *ODD_MARKUP, *(f"{name}, UTF-8" for name in ODD_MARKUP)],
)
def test_parse_builds_trafilaturas_tree(markup: str | bytes) -> None:
    """`_parse` (its own parser, for a cheaper element lookup) builds what `load_html` builds,
    from text and from bytes (whose repairs skip the search for XML's forbidden characters
    when the bytes show there are none)."""
    text, _ = parse._decode(markup)
    expected = trafilatura.load_html(text)
    if expected is None:
        with pytest.raises(ExtractionError):
            parse.parse_page(markup)
        return
    tree = parse.parse_page(markup)
    assert etree.tostring(tree) == etree.tostring(expected)
    assert all(isinstance(element, HtmlElement) for element in tree.iter(etree.Element))


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        ("<p>tab\t, line feed\n, carriage return\r</p>", True),
        ("<p>a full-width comma \uff0c, a BOM \ufeff, \ufffd</p>", True),
        ("<p>a vertical tab \x0b</p>", False),
        ("<p>a NUL \x00</p>", False),
        ("<p>a unit separator \x1f</p>", False),
        ("<p>U+FFFE \ufffe</p>", False),
        ("<p>U+FFFF \uffff</p>", False),
    ],
)
def test_the_bytes_tell_whether_the_text_needs_xml_repairs(text: str, clean: bool) -> None:
    assert parse._xml_clean_utf8(text.encode()) is clean
    assert (repair_faulty_html(text, text[:50]) == text) is clean


@pytest.mark.parametrize(
    "markup",
    [
        "<!DOCTYPE html/>\n<html><body><p>x</p></body></html>",
        "< !DOCTYPE html PUBLIC '-//W3C//DTD XHTML 1.0//EN'/>\n<html/>\n<p>x</p>",
        "<!doctype html>\n<html lang='en' />\n<body><p>x</p></body>",
        "\n\n\n\n<html/>",
        "<html><body><p>no repair</p></body></html>",
        "",
    ],
)
def test_repairs_of_a_clean_text_are_trafilaturas(markup: str) -> None:
    beginning = markup[:50].lower()
    assert parse._repair_clean(markup, beginning) == repair_faulty_html(markup, beginning)


@pytest.mark.parametrize(("name", "tree"), TREES, ids=[name for name, _ in TREES])
def test_byline_is_trafilaturas_author(name: str, tree: Any) -> None:
    assert metadata._byline(tree) == extract_author(tree)


@pytest.mark.parametrize(("name", "tree"), TREES, ids=[name for name, _ in TREES])
def test_catstags_are_trafilaturas(name: str, tree: Any) -> None:
    for metatype in ("category", "tag"):
        hrefs = metadata._hrefs(tree)
        assert metadata._catstags(metatype, tree, hrefs) == extract_catstags(metatype, tree)


@pytest.mark.parametrize(("name", "tree"), TREES, ids=[name for name, _ in TREES])
def test_metadata_is_trafilaturas(name: str, tree: Any) -> None:
    url = "https://www.example.org/news/statement"
    expected = trafilatura.extract_metadata(
        tree,
        default_url=url,
        date_config={
            "extensive_search": True,
            "original_date": True,
            "outputformat": "%Y-%m-%dT%H:%M:%S%z",
        },
    )
    ours = metadata._metadata(tree, url)
    for field in _FIELDS:
        assert getattr(ours, field) == getattr(expected, field), field


def test_hand_made_bylines_are_found() -> None:
    """The cases above do exercise the byline search, not just agree on None."""
    found = {name: metadata._byline(tree) for name, tree in TREES if name in BYLINES}
    assert found["date inside the byline"] == "Jane Doe"
    assert found["too short, then the next"] == "Jane Doe"
    assert found["byline in a sidebar"] == "Jane Doe"
    assert found["byline in comments"] is None
    assert found["author element"] == "Jane Doe"
