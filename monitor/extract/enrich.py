"""Enrichment: what a statement's text says, beyond the text itself.

`enrich(title, text, watchlists)` is the pure function the extraction pool runs
on every statement version, whether its text came from the page or from the
feed: who said what (`quotes.py`) and which watchlist terms it mentions
(`watchlists.py`). Both are CPU work over a text that may be megabytes long, so
they run off the event loop, like Trafilatura.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from monitor.extract.quotes import find_quotes
from monitor.extract.watchlists import match_watchlists
from monitor.models import Quote, Speaker, Watchlist, WatchMatch

__all__ = ["Enrichment", "enrich"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Enrichment:
    quotes: tuple[Quote, ...] = ()
    speakers: tuple[Speaker, ...] = ()
    matches: tuple[WatchMatch, ...] = ()


def enrich(title: str | None, text: str, watchlists: Sequence[Watchlist] = ()) -> Enrichment:
    """Quotes with their speakers, and watchlist matches, of one statement version.

    `watchlists` are those that apply to the statement's source already.
    """
    quotes, speakers = find_quotes(text)
    return Enrichment(
        quotes=quotes, speakers=speakers, matches=match_watchlists(title, text, watchlists)
    )
