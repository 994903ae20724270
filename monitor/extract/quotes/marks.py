"""Quotation marks: pairing them into quotations, and telling speech from scare quotes.

This module owns pass 1 of `monitor.extract.quotes` (one scan over the marks
and blank lines pairs openers with their closers, nesting with a small capped
stack) and the test of pass 3 (an unattributed quotation is kept only when it
reads as a sentence, so “hot line” is no quotation).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.extract.quotes.lexicon import (
    _CLOSERS,
    _FUNCTION_WORDS,
    _MARK_OR_BLANK_LINE,
    _WHITESPACE,
    MAX_DEPTH,
    MAX_MARKS,
    _is_capitalised,
    _tokens,
)


@dataclass(slots=True)
class _Open:
    """An opening mark not yet closed, with the closed quotations directly inside it."""

    mark: str
    pos: int
    children: list[tuple[int, int]] = field(default_factory=list)


# --- pass 1: pair the marks --------------------------------------------------


def _pair_quote_marks(text: str) -> list[tuple[int, int]]:
    """Spans (mark to mark, inclusive) of the outermost quotations, in order."""
    spans: list[tuple[int, int]] = []
    stack: list[_Open] = []

    def abandon(entries: list[_Open]) -> None:
        # An opener that never closed was not a quotation; what it enclosed may be.
        for entry in entries:
            spans.extend(entry.children)

    for count, match in enumerate(_MARK_OR_BLANK_LINE.finditer(text)):
        if count >= MAX_MARKS:
            break
        mark = match.group()
        if mark[0] == "\n":
            abandon(stack)
            stack.clear()
            continue
        pos = match.start()
        if stack and mark in _CLOSERS[stack[-1].mark]:
            opened = stack.pop()
            span = (opened.pos, pos + 1)
            (stack[-1].children if stack else spans).append(span)
        elif mark in _CLOSERS:
            if len(stack) == MAX_DEPTH:
                abandon([stack.pop(0)])
            stack.append(_Open(mark, pos))
    abandon(stack)
    spans.sort()
    return spans


def _clean_quote_text(inner: str) -> str:
    """The quoted words: whitespace collapsed, the comma before an attribution dropped."""
    return _WHITESPACE.sub(" ", inner).strip().rstrip(",;:").rstrip()


# --- pass 3: scare quotes -------------------------------------------------------


def _is_sentence_like(quote: str) -> bool:
    """Whether an unattributed quotation reads as speech rather than a term or a name."""
    words = _tokens(quote)
    if not words or not _is_capitalised(words[0].text):
        return False
    ends_sentence = quote.rstrip("”»“\"'’ ").endswith((".", "!", "?", "…"))
    if ends_sentence and len(words) >= 3:
        return True
    # A long run of Title Case is the name of a thing ("Strategy for the Arctic Zone").
    content = [w.text for w in words if w.text.lower() not in _FUNCTION_WORDS]
    capitalised = sum(1 for w in content if _is_capitalised(w))
    return len(words) >= 6 and capitalised < 0.6 * len(content)
