"""Names and roles inside a phrase, and the full name a short one stands for.

This module owns how `monitor.extract.quotes` reads who a phrase designates
(`_Who`: a named person with the title words before the name, a pronoun, a
job description or an organisation) and pass 4, which maps a short or
inflected name ("Kartapolov", "Лаврова") to the one full name it stands for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from monitor.extract.quotes.lexicon import (
    _ADVERBS,
    _ARTICLES,
    _CLAUSE_BREAK,
    _CLAUSE_WORDS,
    _COMPLEMENT_WORDS,
    _CONNECTORS,
    _HONORIFICS,
    _NOT_NAMES,
    _OBJECT_PRONOUNS,
    _PLACE_PREPOSITIONS,
    _PRONOUNS,
    _RANKS,
    _TITLE_MODIFIERS,
    _WHITESPACE,
    _is_capitalised,
    _is_name_word,
    _is_org_word,
    _is_particle,
    _is_title,
    _is_uncounted_name_part,
    _mentions,
    _sentence_ends,
    _Token,
    _tokens,
)


@dataclass(frozen=True, slots=True)
class _Who:
    """Who a phrase designates: a named person, a pronoun, a job description, or an
    organisation (which is no named speaker, but still attributes the quotation)."""

    kind: Literal["name", "pronoun", "description", "organisation"]
    name: str | None = None
    role: str | None = None
    inflected: bool = False  # a Russian name in an oblique case: "по словам Лаврова"
    titles: frozenset[str] = frozenset()  # title words of a description, lower case
    capitals: frozenset[str] = frozenset()  # capitalised words of a description


# --- names and roles inside a phrase -----------------------------------------


def _adjacent(text: str, left: _Token, right: _Token) -> bool:
    """Whether two tokens are separated only by spaces (or an initial's dot)."""
    gap = text[left.end : right.start]
    if not gap.strip():
        return True
    return gap.strip() == "." and len(left.text) <= 3 and _is_capitalised(left.text)


def _capitalised_runs(text: str, tokens: list[_Token]) -> list[tuple[int, int]]:
    """Index ranges of adjacent capitalised words (particles allowed inside)."""
    runs: list[tuple[int, int]] = []
    start: int | None = None
    for i, token in enumerate(tokens):
        joined = start is not None and _adjacent(text, tokens[i - 1], token)
        inside = joined and _is_particle(token.text)
        if _is_capitalised(token.text) or inside:
            if start is None or not joined:
                if start is not None:
                    runs.append((start, i))
                start = i
        elif start is not None:
            runs.append((start, i))
            start = None
    if start is not None:
        runs.append((start, len(tokens)))
    # A run never ends on a particle: "Scholz und der" -> "Scholz".
    trimmed = []
    for a, b in runs:
        while (
            b > a and _is_particle(tokens[b - 1].text) and not _is_capitalised(tokens[b - 1].text)
        ):
            b -= 1
        trimmed.append((a, b))
    return trimmed


def _trailing_name(tokens: list[_Token], a: int, b: int) -> tuple[int, int] | None:
    """The person name closing tokens[a:b]: at most two counted words, particles inside."""
    if b <= a or not _is_name_word(tokens[b - 1].text):
        return None
    counted = 0
    i = b
    while i > a:
        word = tokens[i - 1].text
        if _is_particle(word) and i - 1 > a and i < b:
            i -= 1
            continue
        initial = len(word) == 1 and i - 1 > a and _is_name_word(tokens[i - 2].text)
        if initial:  # "Robert M. Danin": "M" here is an initial, not "Monsieur"
            i -= 1
            continue
        if not _is_name_word(word):
            break
        if not _is_uncounted_name_part(word):
            if counted == 2:
                break
            counted += 1
        i -= 1
    while i < b and _is_particle(tokens[i].text):
        i += 1
    # "said Von": a capitalised particle counts as a name word but is dropped from the
    # name's start, and may leave nothing of it.
    return (i, b) if counted and i < b else None


def _find_name(
    text: str, tokens: list[_Token], pick: Literal["first", "last"]
) -> tuple[int, int] | None:
    runs = _capitalised_runs(text, tokens)
    for a, b in runs if pick == "first" else reversed(runs):
        found = _trailing_name(tokens, a, b)
        if found is None:
            continue
        # "the ambassador of Russia": a lone run after "of" is a place, not a person.
        if found[0] == a and a > 0 and tokens[a - 1].text.lower() in _PLACE_PREPOSITIONS:
            continue
        return found
    return None


def _span_text(text: str, tokens: list[_Token], a: int, b: int) -> str:
    """The text of tokens[a:b], whitespace collapsed ("" for an empty range)."""
    if not 0 <= a < b <= len(tokens):
        return ""
    return _WHITESPACE.sub(" ", text[tokens[a].start : tokens[b - 1].end]).strip()


def _role_from(text: str, tokens: list[_Token]) -> str | None:
    """A role phrase from the words before a name, if they name a title."""
    a, b = 0, len(tokens)
    while a < b and (
        tokens[a].text.lower() in _CONNECTORS
        or tokens[a].text.lower() in _NOT_NAMES
        or not (_is_capitalised(tokens[a].text) or _is_title(tokens[a].text))
    ):
        a += 1
    while b > a and tokens[b - 1].text.lower() in _CONNECTORS:
        b -= 1
    if a == b or not _names_a_role(tokens[a:b]):
        return None
    if all(t.text.lower() in _HONORIFICS for t in tokens[a:b]):
        return None  # "Mr", "M.": a form of address, not a role
    return _punctuate_rank(text, tokens[a:b])


def _punctuate_rank(text: str, tokens: list[_Token]) -> str:
    """The role text, with a comma before a closing military rank: "…Forces, Colonel General"."""
    role = _span_text(text, tokens, 0, len(tokens))
    i = len(tokens)
    while i > 0 and tokens[i - 1].text.lower() in _RANKS:
        i -= 1
    if 0 < i < len(tokens) and tokens[i - 1].text.lower() not in _CONNECTORS:
        if _is_title(tokens[i - 1].text):
            return role
        head = _span_text(text, tokens, 0, i)
        return f"{head}, {_span_text(text, tokens, i, len(tokens))}"
    return role


def _is_cyrillic(word: str) -> bool:
    return any("\u0400" <= c <= "\u04ff" for c in word)


def _head_words(tokens: list[_Token]) -> list[_Token]:
    """The words a description is about, before its complement ("the representative"
    of "the representative of the General Staff")."""
    a = 0
    while a < len(tokens) and tokens[a].text.lower() in _ARTICLES:
        a += 1
    b = a
    while b < len(tokens) and tokens[b].text.lower() not in _COMPLEMENT_WORDS:
        b += 1
    return tokens[a:b]


def _description(tokens: list[_Token]) -> _Who | None:
    """A job description ("the minister", "ein Sprecher des Ministeriums") or an
    organisation ("the State Department"); None for anything else."""
    head = _head_words(tokens)
    if not head:
        return None
    if any(_is_cyrillic(t.text) for t in head):
        # Russian puts the title first and its complement after, without "of".
        titles = [t for t in head if _is_title(t.text)][:1]
    else:
        titles = [t for t in head if _is_title(t.text)] if _is_title(head[-1].text) else []
    if titles:
        capitals = frozenset(
            t.text for t in tokens if _is_capitalised(t.text) and not _is_title(t.text)
        )
        return _Who(
            "description", titles=frozenset(t.text.lower() for t in titles), capitals=capitals
        )
    if _is_org_word(head[-1].text) and len(tokens) <= 8:
        return _Who("organisation")
    return None


def _first_clause(text: str) -> str:
    """`text` up to its first comma, bracket, line break or sentence end ("U.S." is none)."""
    clause_break = _CLAUSE_BREAK.search(text)
    end = clause_break.start() if clause_break else len(text)
    ends = _sentence_ends(text[:end])
    return text[: ends[0] - 1] if ends else text[:end]


def _appositive_role(segment: str) -> str | None:
    """A role in an appositive: "spokeswoman of the Foreign Ministry"."""
    tokens = _tokens(segment)
    # "professor at Purdue, whose research…": the role ends where a relative clause starts.
    for i, token in enumerate(tokens):
        if token.text.lower() in _CLAUSE_WORDS:
            tokens = tokens[:i]
            break
    if not tokens or len(tokens) > 20 or not _names_a_role(tokens):
        return None
    a = 1 if tokens[0].text.lower() in _ARTICLES else 0
    if a >= len(tokens):
        return None
    return _span_text(segment, tokens, a, len(tokens))


def _names_a_role(tokens: list[_Token]) -> bool:
    """Whether the words hold a title proper, not only a modifier like "first" or "vice"."""
    return any(_is_title(t.text) and t.text.lower() not in _TITLE_MODIFIERS for t in tokens)


def _join_roles(*roles: str | None) -> str | None:
    present = [r for r in roles if r]
    return ", ".join(present) if present else None


def _parse_segment(
    segment: str, pick: Literal["first", "last"], *, closing: bool = False
) -> _Who | None:
    """A name with the role words before it, a pronoun, or a description.

    `closing`: the name must be the segment's last words.
    """
    tokens = _tokens(segment)
    while tokens and tokens[-1].text.lower() in _ADVERBS:
        tokens.pop()
    if not tokens:
        return None
    first = tokens[0].text.lower()
    if len(tokens) == 1 and (first in _PRONOUNS or first in _OBJECT_PRONOUNS):
        return _Who("pronoun")
    if pick == "first" and first in _PRONOUNS:
        return _Who("pronoun")
    found = _find_name(segment, tokens, pick)
    if closing and (found is None or found[1] != len(tokens)):
        return None
    if found is None:
        return _description(tokens)
    a, b = found
    name = _span_text(segment, tokens, a, b)
    return _Who("name", name=name, role=_role_from(segment, tokens[:a]))


# --- pass 4: names ------------------------------------------------------------------


def _stem(word: str) -> str:
    """A Russian word without its case ending, so "Лаврова" matches "Лавров"."""
    if not any("а" <= c.lower() <= "я" or c in "ёЁ" for c in word):
        return word
    stripped = word.rstrip("аяуюеиоыйьм")
    return stripped if len(stripped) >= max(3, len(word) - 2) else word[: len(word) - 2]


def _same_words(short: list[str], full: list[str]) -> bool:
    """Whether `short` names the tail of `full` ("Kartapolov" of "Andrei Kartapolov")."""
    if len(short) > len(full):
        return False
    return all(
        _stem(s) == _stem(f) for s, f in zip(short, full[len(full) - len(short) :], strict=True)
    )


class _NameResolver:
    """Maps each short or inflected name to the one full name it stands for.

    Full names come from the speakers themselves, else from the text; a name
    in an oblique case ("Марии Захаровой") is never a target, only a source.
    """

    def __init__(self, text: str, names: dict[str, bool]) -> None:
        """`names` maps each name to whether it was ever seen in the nominative."""
        self.text = text
        self.full = {
            n: _name_words(n)
            for n, nominative in names.items()
            if nominative and len(_name_words(n)) >= 2
        }

    def resolve(self, name: str) -> str:
        words = _name_words(name)
        candidates = [f for f, fw in self.full.items() if f != name and _same_words(words, fw)]
        if not candidates and len(words) == 1:
            candidates = self._full_forms_in_text(name)
        distinct = list(dict.fromkeys(candidates))
        if len(distinct) == 1:
            return distinct[0]
        return name

    def _full_forms_in_text(self, surname: str) -> list[str]:
        """Full forms ("First Surname") wherever the surname closes a capitalised run."""
        found: list[str] = []
        for start, end in _mentions(self.text, surname):
            window = self.text[max(0, start - 80) : end]
            tokens = _tokens(window)
            runs = _capitalised_runs(window, tokens)
            if not runs or runs[-1][1] != len(tokens):
                continue
            span = _trailing_name(tokens, runs[-1][0], len(tokens))
            if span is not None and span[1] - span[0] >= 2:
                found.append(_span_text(window, tokens, *span))
        return found


def _name_words(name: str) -> list[str]:
    return [t.text for t in _tokens(name) if not _is_particle(t.text)]
