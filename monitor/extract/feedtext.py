"""Plain text from the HTML a feed carries, for statements whose page cannot be had."""

from __future__ import annotations

import html
import re

import lxml.html
from lxml import etree

__all__ = ["html_to_text"]

_BLOCKS = {
    "p",
    "div",
    "br",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "tr",
    "section",
}
_SPACE = re.compile(r"[ \t\r\f\v\u00a0]+")


def html_to_text(markup: str) -> str:
    """Paragraphs of an HTML fragment, separated by one blank line; scripts dropped."""
    if "<" not in markup:
        return _paragraphs(html.unescape(markup))
    try:
        root = lxml.html.fragment_fromstring(markup, create_parent="div")
    except (etree.ParserError, ValueError):
        return _paragraphs(re.sub(r"<[^>]+>", " ", markup))
    for element in root.iter("script", "style", "noscript"):
        element.drop_tree()
    for element in root.iter(*_BLOCKS):
        element.tail = "\n\n" + (element.tail or "")
    return _paragraphs(root.text_content())


def _paragraphs(text: str) -> str:
    lines = (_SPACE.sub(" ", line).strip() for line in text.split("\n\n"))
    return "\n\n".join(" ".join(line.split()) for line in lines if line.strip())
