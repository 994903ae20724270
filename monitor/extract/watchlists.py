"""Watchlists: which configured terms and patterns a statement mentions, and how often.

A consumer watches for words ("sanctions", "Hmeymim", "rate decision") and wants
alerts alone on a topic of its own. Matching here is pure (it runs in the
extraction pool, beside quote attribution) and answers `WatchMatch`es; the
pipeline routes an event with any to each matching watchlist's topic.

Rules of matching, over the title and the text together:

* A term matches as a whole word or phrase: "Iran" does not match "Iranian",
  and "rate decision" matches "rate  decision" across any run of whitespace.
  "Whole" is Unicode-aware: letters and digits of any script are word
  characters, so "Лавров" does not match inside "Лаврова".
* Case is ignored the Unicode way, by case folding, so "STRASSE" matches
  "Straße"; text and terms are compared in NFC, so a precomposed "é" matches
  a decomposed one.
* A `regex` entry is an RE2 regular expression (linear time: no
  backreferences or lookaround, see monitor/userregex.py) searched
  case-insensitively in the NFC text; it is reported under its own source text.
* `count` is the number of non-overlapping occurrences; a term with none is
  not reported. A watchlist with `sources` set applies to those sources only.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Collection, Iterable

from monitor.models import Watchlist, WatchMatch
from monitor.userregex import UserPattern, compile_user_regex

__all__ = ["alert_topics", "applies_to", "match_watchlists"]

# Bounds the work of a hostile or runaway pattern on a huge page: watchlists are
# about what a statement says, and a statement says it in its first megabytes.
MAX_MATCH_CHARS = 2_000_000


def applies_to(watchlist: Watchlist, source_id: str) -> bool:
    """Whether the watchlist watches this source (all sources when it names none)."""
    return not watchlist.sources or source_id in watchlist.sources


def match_watchlists(
    title: str | None, text: str, watchlists: Iterable[Watchlist]
) -> tuple[WatchMatch, ...]:
    """Every term and pattern of `watchlists` found in the title and text, with counts."""
    haystack = unicodedata.normalize("NFC", f"{title or ''}\n{text}")[:MAX_MATCH_CHARS]
    folded = haystack.casefold()
    matches: list[WatchMatch] = []
    for watchlist in watchlists:
        for term in dict.fromkeys(watchlist.terms):
            count = _count(_term_pattern(term), folded)
            if count:
                matches.append(WatchMatch(watchlist=watchlist.id, term=term, count=count))
        for pattern in dict.fromkeys(watchlist.regex):
            count = _count(_regex_pattern(pattern), haystack)
            if count:
                matches.append(WatchMatch(watchlist=watchlist.id, term=pattern, count=count))
    return tuple(matches)


def alert_topics(
    hit: Collection[str], watchlists: Iterable[Watchlist], *, exclude: str
) -> tuple[str, ...]:
    """The topics of the watchlists `hit` (ids), once each, but not `exclude`: the
    statement topic the event is published to anyway."""
    topics = (w.topic for w in watchlists if w.id in hit and w.topic != exclude)
    return tuple(dict.fromkeys(topics))


def _count(pattern: re.Pattern[str] | UserPattern, haystack: str) -> int:
    # Empty matches are not mentions: a pattern like `x*` matches everywhere.
    return sum(1 for match in pattern.finditer(haystack) if match.end() > match.start())


@functools.lru_cache(maxsize=1024)
def _term_pattern(term: str) -> re.Pattern[str]:
    """A whole-word, whitespace-tolerant pattern for a case-folded term.

    `(?<!\\w)` and `(?!\\w)` rather than `\\b`: a term may start or end with a
    non-word character ("U.S.", "#tag"), where `\\b` would demand a word next to it.
    """
    words = unicodedata.normalize("NFC", term).casefold().split()
    body = r"\s+".join(re.escape(word) for word in words)
    return re.compile(rf"(?<!\w){body}(?!\w)")


def _regex_pattern(pattern: str) -> UserPattern:
    # RE2, never `re`: a user's pattern must not backtrack for ever (monitor/userregex.py).
    return compile_user_regex(pattern, ignore_case=True)
