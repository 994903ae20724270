"""`monitor.extract.chrome`'s cheaper measures give what the plain ones give."""

from __future__ import annotations

from typing import Any

import lxml.html
import pytest

from monitor.extract import chrome, parse
from tests.sites.benchpages import backfill_pages, official_pages

HANDMADE = {
    "text, children, tails and a comment": "<div><p>a<b>bc</b>d<!-- x --></p>tail<p>ef</p></div>",
    "a paragraph in a paragraph": "<div><p>one<span><p>two</p></span>three</p></div>",
    "paragraphs in nested tables": (
        "<div><table><tr><td><p>x<table><tr><td><p>yy</p></td></tr></table>z</p>"
        "</td></tr></table></div>"
    ),
    "the element is the paragraph": "<p>alone <i>here</i></p>",
    "no paragraph": "<div>no p</div>",
    "empty paragraphs": "<div><p></p><p><br></p></div>",
}


def _plain_size(element: Any) -> int:
    """What `_paragraph_text_size` stands for: every <p>'s `text_content()`, summed."""
    return sum(len(p.text_content()) for p in element.iter("p"))


def _trees() -> list[tuple[str, Any]]:
    pages = official_pages() + backfill_pages(5, seed=11)
    trees = [(name, parse.parse_page(body)) for name, body in pages]
    trees += [(name, lxml.html.fromstring(markup)) for name, markup in HANDMADE.items()]
    return trees


TREES = _trees()


@pytest.mark.parametrize(("name", "tree"), TREES, ids=[name for name, _ in TREES])
def test_paragraph_text_size_is_the_sum_of_text_contents(name: str, tree: Any) -> None:
    assert chrome._paragraph_text_size(tree) == _plain_size(tree)
    for element in tree.iter("div", "footer", "aside", "nav", "section"):
        assert chrome._paragraph_text_size(element) == _plain_size(element)


def test_a_nested_paragraph_is_counted_in_both() -> None:
    tree = lxml.html.fromstring(HANDMADE["a paragraph in a paragraph"])
    assert chrome._paragraph_text_size(tree) == len("onetwothree") + len("two")
