"""Hostile statement pages (issue 13): each is valid-looking HTML that costs an
extractor far more than its size suggests. Used by tests and bench/pathological.py."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["PAGES", "deep_nesting", "huge_text", "many_attributes", "many_links"]

_HEAD = '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{t}</title></head>'


def _page(title: str, body: str) -> bytes:
    return (_HEAD.format(t=title) + "<body>" + body + "</body></html>").encode()


def many_attributes(count: int = 1_000_000) -> bytes:
    """`count` attributes: on elements of 1,000 attributes each, and in one article."""
    per = 1_000
    attrs = " ".join(f"data-a{i}=x" for i in range(per))
    elements = "".join(f"<div {attrs}>cell</div>" for _ in range(count // per))
    return _page("Attributes", f"<article><h1>Attributes</h1><p>Some text.</p>{elements}</article>")


def many_links(count: int = 200_000) -> bytes:
    """`count` links in one article."""
    links = "".join(f'<a href="/l/{i}">link {i}</a> ' for i in range(count))
    return _page("Links", f"<article><h1>Links</h1><p>{links}</p></article>")


def deep_nesting(depth: int = 100_000) -> bytes:
    """`depth` nested elements around the statement's paragraph."""
    return _page(
        "Nesting", "<div>" * depth + "<p>The statement, deep down.</p>" + "</div>" * depth
    )


def huge_text(megabytes: int = 15) -> bytes:
    """One article of `megabytes` MB of paragraphs (fetch caps pages at 20 MB)."""
    paragraph = "<p>" + "The ministry states its position once more, at length. " * 20 + "</p>"
    count = megabytes * 1_000_000 // len(paragraph)
    return _page("Text", "<article><h1>Text</h1>" + paragraph * count + "</article>")


PAGES: dict[str, Callable[[], bytes]] = {
    "attributes": many_attributes,
    "links": many_links,
    "nesting": deep_nesting,
    "text": huge_text,
}
