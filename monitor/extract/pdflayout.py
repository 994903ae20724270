"""A PDF's positioned lines made text: running lines dropped, paragraphs rebuilt.

This module owns the layout step of `monitor.extract.pdf`: `Line` (a line's
text, height on the page and font size), dropping running headers, footers
and page numbers (the edge lines that repeat, digits aside, at the same
height on most pages), grouping lines into paragraphs by the vertical gap
and font size, joining a paragraph cut by a page break, and words hyphenated
at a line's end.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from dataclasses import dataclass
from typing import Final

from monitor.extract.text import normalize_whitespace

__all__ = ["HEADING_SCALE", "Line", "join_lines", "layout_paragraphs", "without_running_lines"]

_EDGE_LINES: Final = 3  # lines at a page's top and bottom that may be running headers/footers
_REPEAT_SHARE: Final = 0.6  # "on most pages": an edge line this share of pages repeats
_PARAGRAPH_GAP: Final = 1.4  # a line gap this many times the usual pitch starts a paragraph
_SHORT_LINE: Final = 0.8  # a line ending a sentence this short of the longest ends a paragraph
HEADING_SCALE: Final = 1.15  # a line this much larger than the body text is heading-like

_DIGITS = re.compile(r"\d+")
_PAGE_NUMBER = re.compile(
    r"^(?:page|p\.|seite|página|pagina)?\s*[-–—(]?\s*\d{1,4}\s*[-–—)]?"
    r"(?:\s*(?:/|of|de|von|sur)\s*\d{1,4})?$",
    re.IGNORECASE,
)
_ROMAN_PAGE = re.compile(r"^[ivxlc]{1,6}$", re.IGNORECASE)
_HYPHEN_END = re.compile(r"(?<=[^\W\d_])[-\u00ad\u2010]$")
_SENTENCE_END = re.compile(r"[.!?:;\"'”’»)]$")


@dataclass(frozen=True, slots=True)
class Line:
    text: str
    y: float  # the baseline's height on the page (PDF space: larger is higher)
    size: float  # the font size as set on the page


def _edge_key(line: Line) -> tuple[str, int]:
    """A running line's identity: its text, digits aside, and its height on the page
    (a header is printed at the same place on every page; body text that happens to
    repeat is not)."""
    return _DIGITS.sub("#", line.text.casefold()), round(line.y / 4)


def _is_page_number(text: str) -> bool:
    return bool(_PAGE_NUMBER.match(text) or _ROMAN_PAGE.match(text))


def without_running_lines(pages: list[list[Line]]) -> list[list[Line]]:
    """The pages without running headers, footers and page numbers.

    A line among a page's first or last `_EDGE_LINES` is dropped when the same
    text, digits aside ("Page 3" is "Page 4"), is at the same height at the
    edges of most pages;
    a lone page number ("3", "Page 3 of 9", "- 3 -") at an edge always goes.
    """
    counts: Counter[tuple[str, int]] = Counter()
    for lines in pages:
        counts.update({_edge_key(line) for line in _edges(lines)})
    needed = max(2, int(len(pages) * _REPEAT_SHARE + 0.5))
    running = {key for key, seen in counts.items() if seen >= needed and len(pages) > 1}
    cleaned = []
    for lines in pages:
        edges = {id(line) for line in _edges(lines)}
        cleaned.append(
            [
                line
                for line in lines
                if id(line) not in edges
                or not (_edge_key(line) in running or _is_page_number(line.text))
            ]
        )
    return cleaned


def _edges(lines: list[Line]) -> list[Line]:
    if len(lines) <= 2 * _EDGE_LINES:
        return lines
    return lines[:_EDGE_LINES] + lines[-_EDGE_LINES:]


def layout_paragraphs(pages: list[list[Line]]) -> list[str]:
    """Paragraphs in reading order, a paragraph cut by a page break joined again."""
    paragraphs: list[list[str]] = []
    for lines in pages:
        blocks = _blocks(lines)
        if blocks and paragraphs and _continues(paragraphs[-1], blocks[0]):
            paragraphs[-1].extend(blocks.pop(0))
        paragraphs.extend(blocks)
    return [text for block in paragraphs if (text := join_lines(block))]


def _blocks(lines: list[Line]) -> list[list[str]]:
    """A page's lines grouped into paragraphs.

    A paragraph starts after a gap well above the page's line pitch (the lower
    quartile of the gaps between lines of one size: most gaps are within
    paragraphs, or, on a page of short paragraphs, the lower ones are), at a
    change of font size, or after a line that ends a sentence well short of
    the page's full line length (the last line of a paragraph).
    """
    if not lines:
        return []
    gaps = sorted(
        a.y - b.y
        for a, b in itertools.pairwise(lines)
        if a.y - b.y > 0 and not _size_changed(a.size, b.size)
    )
    pitch = gaps[len(gaps) // 4] if gaps else 0.0
    full = max(len(line.text) for line in lines)
    blocks: list[list[str]] = [[lines[0].text]]
    for previous, line in itertools.pairwise(lines):
        gap = previous.y - line.y
        new_block = (
            gap <= 0  # a jump up: the next column, or a box placed apart
            or (pitch > 0 and gap > pitch * _PARAGRAPH_GAP)
            or _size_changed(previous.size, line.size)
            or (
                len(previous.text) < full * _SHORT_LINE
                and bool(_SENTENCE_END.search(previous.text))
            )
        )
        if new_block:
            blocks.append([line.text])
        else:
            blocks[-1].append(line.text)
    return blocks


def _size_changed(a: float, b: float) -> bool:
    return bool(a and b and max(a, b) / min(a, b) > HEADING_SCALE)


def _continues(previous: list[str], following: list[str]) -> bool:
    """Whether a page's first block goes on with the last one of the page before."""
    last, first = previous[-1], following[0]
    if _SENTENCE_END.search(last):
        return False
    return first[:1].islower() or bool(_HYPHEN_END.search(last))


def join_lines(lines: list[str]) -> str:
    """One paragraph from its lines, words hyphenated at a line's end made whole."""
    text = ""
    for line in lines:
        if not text:
            text = line
        elif _HYPHEN_END.search(text) and line[:1].islower():
            text = text[:-1] + line
        else:
            text = f"{text} {line}"
    return normalize_whitespace(text)
